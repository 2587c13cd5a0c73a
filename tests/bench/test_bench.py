"""The benchmarks run end to end at toy sizes and report numbers for both implementations."""
import json

import pytest
import torch

from gat_pyg.bench import layer
from gat_pyg.bench.common import measure, ratio
from gat_pyg.cli import main as cli_main


def test_measure_reports_each_repeat_and_the_memory_a_step_allocates():
    import torch
    held = []
    report = measure(lambda: held.append(torch.ones(64 * 1024 * 1024 // 4)), repeats=2,
                     warmup=0)
    assert len(report['times_ms']) == 2 and all(t > 0 for t in report['times_ms'])
    assert report['peak_mib'] >= 2 * 64 * 0.9        # two 64 MiB tensors stay alive
    assert ratio(2.0, 6.0) == '3.00x' and ratio(None, 1.0) == '-'


@pytest.mark.slow
@pytest.mark.parametrize('workload', ['new-graph', 'model'])
def test_layer_benchmark_workloads(workload, capsys):
    results = layer.main(['--workload', workload, '--edges', '2000', '--nodes', '300',
                          '--layers', 'gatv2', '--rounds', '1', '--repeats', '2',
                          '--threads', '1'])
    assert [r.impl for r in results] == ['ours', 'pyg']
    assert all(r.error is None and r.median_ms > 0 for r in results)
    assert f'workload: {workload}' in capsys.readouterr().out


@pytest.mark.slow
def test_layer_benchmark_times_both_implementations(tmp_path):
    out = tmp_path / 'layer.json'
    results = layer.main(['--edges', '3000', '--layers', 'gat', '--rounds', '1',
                          '--repeats', '2', '--threads', '1', '--json', str(out)])
    assert [r.impl for r in results] == ['ours', 'pyg']
    assert all(len(r.times_ms) == 2 and r.median_ms > 0 and r.peak_mib is not None
               for r in results)
    assert len(json.loads(out.read_text())) == 2


@pytest.mark.slow
def test_epoch_benchmark_through_the_cli(tmp_path, monkeypatch, capsys, mirror):
    monkeypatch.setenv('GAT_PYG_PLANETOID_MIRROR', str(mirror))
    monkeypatch.setenv('GAT_PYG_DATA', str(tmp_path / 'data'))
    assert cli_main(['bench', 'epoch', '--datasets', 'cora', '--models', 'gat', '--epochs',
                     '2', '--rounds', '1', '--threads', '1']) == 0
    table = capsys.readouterr().out
    row = next(line for line in table.splitlines() if line.startswith('| cora'))
    cells = [c.strip() for c in row.strip('|').split('|')]
    assert cells[:2] == ['cora', 'gat']
    assert all(c.endswith('ms') or c.endswith(' s') for c in cells[2:5] + [cells[6]]), cells
    assert cells[5].endswith('x') and cells[7].endswith('x')


@pytest.mark.slow
def test_minibatch_benchmark_times_both_implementations_and_the_sampler(capsys):
    from gat_pyg.bench import minibatch
    results = minibatch.main(['--nodes', '500', '--edges', '5000', '--batch-size', '64',
                              '--batches', '2', '--epochs', '1', '--rounds', '1',
                              '--threads', '1'])
    assert [r.impl for r in results] == ['ours', 'pyg']
    assert all(r.error is None and r.median_ms > 0 for r in results)
    assert all(r.extra['sampling_ms'] > 0 for r in results)     # sampled before timing
    assert 'sampling (excluded)' in capsys.readouterr().out


@pytest.mark.slow
def test_ddp_benchmark_runs_one_and_two_processes(tmp_path, capsys):
    out = tmp_path / 'ddp.json'
    assert cli_main(['bench', 'ddp', '--nodes', '400', '--edges', '3000', '--batch-size', '32',
                     '--steps', '2', '--warmup', '1', '--json', str(out)]) == 0
    results = json.loads(out.read_text())
    assert [r['processes'] for r in results] == [1, 2]
    # Both jobs trained the same number of seeds: 2 steps of 32 (16 per rank at 2 processes).
    assert all(r['reports'][0]['seeds'] == 64 for r in results)
    assert all(r['seeds_per_s'] > 0 and r['held_mib'] > 0 for r in results)
    assert results[0]['speedup'] == 1.0
    assert '| processes | seed nodes / s |' in capsys.readouterr().out


def test_a_loaded_machine_is_named_before_the_first_child(monkeypatch, caplog):
    """Issue 23: on a busy machine with default threads the epoch benchmark read 0.36x (5.7x
    with --threads 1): a load average above the cores is said before anything is timed."""
    import argparse
    import logging

    from gat_pyg.bench import common

    monkeypatch.setattr(common.os, 'getloadavg', lambda: (5.5, 5.0, 4.0))
    monkeypatch.setattr(common.os, 'sched_getaffinity', lambda pid: {0, 1})
    assert common.machine_load() == (5.5, 2)
    children = []
    monkeypatch.setattr(common, 'run_child', lambda module, args, cap: (
        children.append(args), {'times_ms': [1.0], 'peak_mib': 1.0})[1])
    args = argparse.Namespace(threads=None, rounds=2, memory_cap_gib=1.0)
    with caplog.at_level(logging.WARNING, logger='gat_pyg.bench'):
        common.run_alternating('m', 'case a', {'ours': [], 'pyg': []}, args)
        common.run_alternating('m', 'case b', {'ours': [], 'pyg': []}, args)
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and len(children) == 8            # once per benchmark run
    assert warnings[0].startswith('the machine is loaded: load average 5.5 over the last minute '
                                  'on 2 cores')
    assert 'with --threads 1 (OMP_NUM_THREADS=1)' in warnings[0]
    caplog.clear()
    monkeypatch.setattr(common.os, 'getloadavg', lambda: (1.9, 1.0, 1.0))
    with caplog.at_level(logging.WARNING, logger='gat_pyg.bench'):
        assert not common.warn_if_loaded()
    assert not caplog.records


def test_a_floor_slower_than_the_model_is_called_noise(caplog):
    import logging

    from gat_pyg.bench.epoch import warn_if_floor_slower

    with caplog.at_level(logging.WARNING, logger='gat_pyg.bench'):
        assert not warn_if_floor_slower('cora gat', 4.8, 8.1)
        assert not warn_if_floor_slower('cora gat', None, 8.1)
        assert warn_if_floor_slower('cora gat', 9.0, 8.1)
    (record, ) = caplog.records
    assert record.getMessage().startswith('cora gat: the floor (no attention) took 9.0 ms per '
                                          'epoch, longer than the full model (8.1 ms)')
    assert 'OMP_NUM_THREADS=1' in record.getMessage()


def test_the_epoch_benchmark_builds_the_papers_model_from_the_config(mirror, monkeypatch,
                                                                     tmp_path):
    from gat_pyg.bench.epoch import build

    monkeypatch.setenv('GAT_PYG_PLANETOID_MIRROR', str(mirror))
    monkeypatch.setenv('GAT_PYG_DATA', str(tmp_path))
    net, data, config = build('cora', 'gat', 'ours', 'sparse')
    hidden, output = net.convs
    assert (hidden.heads, hidden.out_channels, hidden.dropout, output.heads) == (8, 8, 0.6, 1)
    assert hidden.message_dropout == 0.0 and isinstance(net.act, torch.nn.ELU)
    assert (net.dropout, config.lr, config.weight_decay) == (0.6, 0.005, 5e-4)

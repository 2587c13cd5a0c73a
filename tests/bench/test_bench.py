"""The benchmarks run end to end at toy sizes and report numbers for both implementations."""
import json

import pytest

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

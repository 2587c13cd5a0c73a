"""Multi-process training: the shares of the training nodes, and two gloo processes launched by
torchrun (loopback only) that must end with identical parameters, the single-process gradient,
and one run folder written by rank 0."""
import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from gat_pyg.cli import main
from gat_pyg.train import TrainConfig, run_dir, train_run
from gat_pyg.train.distributed import shard_train_mask
from gat_pyg.train.loop import NodeTask, build_model, fit

import ddp_worker

REPO_ROOT = Path(__file__).resolve().parents[2]
TORCHRUN = Path(sys.executable).with_name('torchrun')


def _torchrun(args, tmp_path, timeout=120):
    # Loopback only: --standalone rendezvous on localhost, gloo's sockets on the lo interface.
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), GLOO_SOCKET_IFNAME='lo',
               OMP_NUM_THREADS='1')
    return subprocess.run([str(TORCHRUN), '--standalone', '--nproc-per-node', '2', *args],
                          cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout, check=True)


def test_shares_are_disjoint_cover_and_follow_the_seed():
    mask = torch.zeros(20, dtype=torch.bool)
    mask[[1, 2, 3, 5, 8, 13, 17]] = True
    shares = [shard_train_mask(mask, rank, 3, seed=0) for rank in range(3)]
    assert [int(s.sum()) for s in shares] == [3, 2, 2]
    assert torch.equal(torch.stack(shares).sum(0), mask.long())   # disjoint, and cover
    assert torch.equal(shard_train_mask(mask, 0, 3, seed=0), shares[0])
    other = [shard_train_mask(mask, rank, 3, seed=1) for rank in range(3)]
    assert any(not torch.equal(a, b) for a, b in zip(shares, other))


def test_more_processes_than_training_nodes_is_refused():
    mask = torch.tensor([True, False, True])
    with pytest.raises(ValueError, match='world size 3 is larger than the number of training '
                                         'nodes 2'):
        shard_train_mask(mask, 0, 3, seed=0)


def test_ppi_under_torchrun_is_refused(monkeypatch, caplog):
    monkeypatch.setenv('WORLD_SIZE', '2')
    assert main(['train', '--config', 'configs/ppi_gat.yaml', '--no-progress']) == 1
    assert 'multi-process training (torchrun) supports the Planetoid datasets' in caplog.text


@pytest.mark.slow
def test_two_gloo_processes_match_each_other_and_one_process(tmp_path):
    _torchrun([str(Path(ddp_worker.__file__)), str(tmp_path)], tmp_path)
    config = TrainConfig.from_dict(ddp_worker.CONFIG)
    data = ddp_worker.small_graph()

    # One step: the shares split the 11 training nodes 6 / 5, and the DDP-averaged gradient is
    # the single-process full-batch gradient (same initial parameters, same dropout masks).
    steps = [torch.load(tmp_path / f'grad_rank{r}.pt', weights_only=True) for r in (0, 1)]
    shares = [set(s['share'].tolist()) for s in steps]
    assert sorted(map(len, shares)) == [5, 6] and not shares[0] & shares[1]
    assert shares[0] | shares[1] == set(data.train_mask.nonzero().view(-1).tolist())
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        model = build_model(config, data.num_features, 3)
        NodeTask(data).train_epoch(model, torch.optim.SGD(model.parameters(), lr=0.0))
    assert steps[0]['grads'].keys() == dict(model.named_parameters()).keys()
    for name, param in model.named_parameters():
        assert param.grad.abs().sum() > 0, name
        assert torch.equal(steps[0]['grads'][name], steps[1]['grads'][name]), name
        torch.testing.assert_close(steps[0]['grads'][name], param.grad, rtol=1e-5, atol=1e-6)

    # Training: both ranks end with the same parameters and result, and the single process
    # trains the same model (float sums in another order: close, not equal).
    final = [torch.load(tmp_path / f'final_rank{r}.pt', weights_only=True) for r in (0, 1)]
    untimed = [{k: v for k, v in f['result'].items() if k != 'seconds'} for f in final]
    assert untimed[0] == untimed[1]
    assert all(torch.equal(final[0]['state'][k], final[1]['state'][k]) for k in final[0]['state'])
    single, single_model = fit(config, NodeTask(data))
    for key, value in single_model.state_dict().items():
        torch.testing.assert_close(final[0]['state'][key], value, rtol=1e-4, atol=1e-5)
    ddp = final[0]['result']
    assert (ddp['best_epoch'], ddp['epochs']) == (single.best_epoch, single.epochs)
    assert ddp['val_loss'] == pytest.approx(single.val_loss, rel=1e-5)

    # Rank 0 wrote the run folder, once; nothing else was written.
    written = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob('*')
                     if p.is_file())
    assert written == ['final_rank0.pt', 'final_rank1.pt', 'grad_rank0.pt', 'grad_rank1.pt',
                       'run/checkpoint.pt', 'run/config.yaml', 'run/metrics.csv',
                       'run/result.json']
    stored = json.loads((tmp_path / 'run' / 'result.json').read_text())['result']
    assert stored == ddp
    with open(tmp_path / 'run' / 'metrics.csv') as f:
        assert len(list(csv.DictReader(f))) == ddp['epochs']


@pytest.mark.slow
def test_python_m_gat_pyg_train_under_torchrun(tmp_path, cora, data_root, mirror):
    overrides = dict(epochs=4, patience=2, hidden_channels=4, heads=2, seed=1)
    args = [f'--{k}={v}' for k, v in overrides.items()]
    done = _torchrun(['-m', 'gat_pyg.train', '--config', 'configs/cora_gat.yaml', *args,
                      '--out', str(tmp_path / 'out'), '--data-root', str(data_root),
                      '--mirror', str(mirror), '--no-progress'], tmp_path)
    assert done.stdout.count('| Dataset | Model | Seed |') == 1     # rank 0 prints, alone
    config = TrainConfig.from_dict(overrides)
    folder = run_dir(tmp_path / 'out', config)
    assert sorted(p.name for p in (tmp_path / 'out').rglob('*') if p.is_file()) == \
        ['checkpoint.pt', 'config.yaml', 'metrics.csv', 'result.json']
    ddp = json.loads((folder / 'result.json').read_text())['result']
    single = train_run(config, cora)
    assert ddp['epochs'] == single.epochs and ddp['best_epoch'] == single.best_epoch
    assert ddp['val_loss'] == pytest.approx(single.val_loss, rel=1e-5)
    assert ddp['test_acc'] == pytest.approx(single.test_acc, abs=1e-3)   # 1000 test nodes


def test_readme_torchrun_commands_parse():
    from torch.distributed.run import get_args_parser

    from gat_pyg.cli import build_parser

    readme = (REPO_ROOT / 'README.md').read_text()
    section = readme.split('## Multi-process and multi-machine training')[1].split('\n## ')[0]
    blocks = [b.split('```')[0] for b in section.split('```bash\n')[1:]]
    commands = [b.replace('\\\n', ' ').split('torchrun', 1)[1].split() for b in blocks]
    assert len(commands) == 3
    flags = set()
    for words in commands:
        args = get_args_parser().parse_args(words)
        assert args.module and args.training_script == 'gat_pyg.train'
        train = build_parser().parse_args(['train', *args.training_script_args])
        assert train.config == Path('configs/cora_gat.yaml')
        flags |= {w for w in words if w.startswith('--')}
    assert {'--standalone', '--nnodes', '--node-rank', '--rdzv-backend', '--rdzv-endpoint',
            '--rdzv-id'} <= flags

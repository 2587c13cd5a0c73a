"""Multi-process training: the shares of the training nodes, and two processes launched by
torchrun (gloo on the CPU, loopback only; NCCL when two GPUs are there) that must end with
identical parameters, the single-process gradient (full-batch and mini-batch), one run folder
written by rank 0, and, through the command line, mini-batch training with one optimizer step
per batch of the rank's share."""
import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from gat_pyg.cli import main
from gat_pyg.train import TrainConfig, run_dir, train_run
from gat_pyg.train.distributed import shard_train_mask
from gat_pyg.train import NodeTask, build_model, fit

import ddp_worker

pytestmark = pytest.mark.filterwarnings('ignore:Using .NeighborSampler. without')
REPO_ROOT = Path(__file__).resolve().parents[2]
TORCHRUN = Path(sys.executable).with_name('torchrun')
TWO_GPUS = pytest.mark.skipif(torch.cuda.device_count() < 2,
                              reason='NCCL needs 2 CUDA devices (CUDA not available)'
                              if not torch.cuda.is_available() else 'NCCL needs 2 CUDA devices')


def _torchrun(args, tmp_path, timeout=180):
    # Loopback only: --standalone rendezvous on localhost, gloo's sockets on the lo interface.
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), GLOO_SOCKET_IFNAME='lo',
               OMP_NUM_THREADS='1')
    done = subprocess.run([str(TORCHRUN), '--standalone', '--nproc-per-node', '2', *args],
                          cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


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
    assert "config key 'dataset': 'ppi' is inductive" in caplog.text


@pytest.mark.slow
@pytest.mark.parametrize('device,backend', [('cpu', 'gloo'),
                                            pytest.param('cuda', 'nccl', marks=TWO_GPUS)])
def test_two_processes_match_each_other_and_one_process(tmp_path, device, backend):
    _torchrun([str(Path(ddp_worker.__file__)), str(tmp_path), device, backend], tmp_path)
    data = ddp_worker.small_graph()
    # CUDA kernels sum in other orders than the CPU reference below.
    tol = dict(rtol=1e-5, atol=1e-6) if device == 'cpu' else dict(rtol=1e-4, atol=1e-5)
    final = [torch.load(tmp_path / f'final_rank{r}.pt', weights_only=True) for r in (0, 1)]

    # Full-batch, one step: the shares split the 11 training nodes 6 / 5, and the DDP-averaged
    # gradient is the single-process full-batch gradient (same parameters, same dropout masks).
    config = TrainConfig.from_dict(ddp_worker.CONFIG)
    steps = [torch.load(tmp_path / f'full_grad_rank{r}.pt', weights_only=True) for r in (0, 1)]
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
        torch.testing.assert_close(steps[0]['grads'][name], param.grad, **tol)

    # Full-batch training: both ranks end with the same parameters and result, and the single
    # process trains the same model (float sums in another order: close, not equal).
    full = [f['full'] for f in final]
    untimed = [{k: v for k, v in f['result'].items() if k != 'seconds'} for f in full]
    assert untimed[0] == untimed[1] and untimed[0]['processes'] == 2
    assert all(torch.equal(full[0]['state'][k], full[1]['state'][k]) for k in full[0]['state'])
    single, single_model = fit(config, NodeTask(data))
    for key, value in single_model.state_dict().items():
        torch.testing.assert_close(full[0]['state'][key], value, rtol=1e-4, atol=1e-5)
    ddp = full[0]['result']
    assert (ddp['best_epoch'], ddp['epochs']) == (single.best_epoch, single.epochs)
    assert ddp['val_loss'] == pytest.approx(single.val_loss, rel=1e-5)

    # Mini-batch, one step: each rank's share of the epoch is 5 of the 11 training nodes
    # (disjoint, one node dropped), its first batch 3 targets, and the DDP-averaged gradient is
    # the gradient of the mean loss over the union of the two batches in one process.
    config = TrainConfig.from_dict(ddp_worker.MINIBATCH)
    steps = [torch.load(tmp_path / f'minibatch_grad_rank{r}.pt', weights_only=True)
             for r in (0, 1)]
    train_nodes = set(data.train_mask.nonzero().view(-1).tolist())
    epoch_shares = [set(s['epoch_share'].tolist()) for s in steps]
    assert [len(e) for e in epoch_shares] == [5, 5] and not epoch_shares[0] & epoch_shares[1]
    assert [s['batches'] for s in steps] == [2, 2]
    targets = [s['targets'] for s in steps]
    assert [t.numel() for t in targets] == [3, 3]
    union = torch.cat(targets)
    assert union.unique().numel() == 6 and set(union.tolist()) <= train_nodes
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        model = build_model(config, data.num_features, 3)
    F.cross_entropy(model(data.x, data.edge_index)[union], data.y[union]).backward()
    for name, param in model.named_parameters():
        assert param.grad.abs().sum() > 0, name
        assert torch.equal(steps[0]['grads'][name], steps[1]['grads'][name]), name
        torch.testing.assert_close(steps[0]['grads'][name], param.grad, **tol)

    # Mini-batch training: DDP keeps the ranks' parameters equal, and they agree on the result.
    mini = [f['minibatch'] for f in final]
    assert all(torch.equal(mini[0]['state'][k], mini[1]['state'][k]) for k in mini[0]['state'])
    untimed = [{k: v for k, v in f['result'].items() if k != 'seconds'} for f in mini]
    assert untimed[0] == untimed[1]

    # Rank 0 wrote the run folders, once each; nothing else was written.
    written = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob('*')
                     if p.is_file())
    runs = [f'{folder}/{name}' for folder in ('mb_run', 'run')
            for name in ('checkpoint.pt', 'config.yaml', 'metrics.csv', 'result.json')]
    assert written == sorted(['final_rank0.pt', 'final_rank1.pt', 'full_grad_rank0.pt',
                              'full_grad_rank1.pt', 'minibatch_grad_rank0.pt',
                              'minibatch_grad_rank1.pt', *runs])
    for folder, result in (('run', ddp), ('mb_run', mini[0]['result'])):
        stored = json.loads((tmp_path / folder / 'result.json').read_text())['result']
        assert stored == result
        with open(tmp_path / folder / 'metrics.csv') as f:
            assert len(list(csv.DictReader(f))) == result['epochs']


@pytest.mark.slow
def test_python_m_gat_pyg_train_under_torchrun(tmp_path, cora, data_root, mirror):
    overrides = dict(epochs=4, patience=2, hidden_channels=4, heads=2, seed=1, device='cpu')
    args = [f'--{k}={v}' for k, v in overrides.items()]
    done = _torchrun(['-m', 'gat_pyg.train', '--config', 'configs/cora_gat.yaml', *args,
                      '--out', str(tmp_path / 'out'), '--data-root', str(data_root),
                      '--mirror', str(mirror), '--no-progress'], tmp_path)
    assert done.stdout.count('| Dataset | Model | Seed |') == 1     # rank 0 prints, alone
    assert 'full-batch, the loss of 70 of the 140 training nodes per process; 2 processes ' \
           '(torchrun, gloo) on cpu' in done.stderr
    config = TrainConfig.from_dict(overrides)
    folder = run_dir(tmp_path / 'out', config)
    assert sorted(p.name for p in (tmp_path / 'out').rglob('*') if p.is_file()) == \
        ['checkpoint.pt', 'config.yaml', 'metrics.csv', 'result.json']
    ddp = json.loads((folder / 'result.json').read_text())['result']
    single = train_run(config, cora)
    assert ddp['epochs'] == single.epochs and ddp['best_epoch'] == single.best_epoch
    assert ddp['val_loss'] == pytest.approx(single.val_loss, rel=1e-5)
    assert ddp['test_acc'] == pytest.approx(single.test_acc, abs=1e-3)   # 1000 test nodes


MB_CORA = dict(batch_size=32, num_neighbors=[10, 10], epochs=80, patience=100, seed=0,
               device='cpu')


@pytest.mark.slow
def test_minibatch_under_torchrun_is_data_parallel_and_learns_cora(tmp_path, cora, data_root,
                                                                   mirror):
    """The reported bug: under torchrun, --batch-size was ignored (full-batch training on a
    split of the nodes) while config.yaml said batch_size 64. Now the log says mini-batch, each
    rank steps once per batch of its share, and two ranks learn Cora as one process does with
    the same seeds per step (2 x 32 = 64)."""
    args = [a for k, v in MB_CORA.items()
            for a in ([f"--{k.replace('_', '-')}", *map(str, v)] if isinstance(v, list)
                      else [f"--{k.replace('_', '-')}", str(v)])]
    done = _torchrun([str(Path(__file__).with_name('cli_steps_worker.py')), str(tmp_path), '--',
                      '--config', 'configs/cora_gat.yaml', *args, '--out', str(tmp_path / 'out'),
                      '--data-root', str(data_root), '--mirror', str(mirror), '--no-progress'],
                     tmp_path)
    # 140 training nodes: 70 per rank, in batches of 32, 32 and 6.
    found = re.findall(r'transductive training, mini-batch \(batch_size 32, num_neighbors '
                       r'\[10, 10\]; (\d+) training nodes and (\d+) batches per epoch per '
                       r'process\); 2 processes \(torchrun, gloo\) on cpu', done.stderr)
    assert found == [('70', '3')], done.stderr[-2000:]
    steps = [json.loads((tmp_path / f'steps_rank{r}.json').read_text()) for r in (0, 1)]
    config = TrainConfig.from_dict({**MB_CORA, 'num_neighbors': [10, 10]})
    folder = run_dir(tmp_path / 'out', config)
    stored = json.loads((folder / 'result.json').read_text())
    assert stored['config']['batch_size'] == 32 and stored['result']['processes'] == 2
    epochs = stored['result']['epochs']
    assert steps[0] == steps[1] == [3] * epochs
    single = train_run(TrainConfig.from_dict({**MB_CORA, 'batch_size': 64}), cora)
    ddp = stored['result']['test_acc']
    assert ddp > 0.7 and single.test_acc > 0.7
    # 80 epochs, so both have converged (at 40, seed 0 gave 74.5 % with two processes, still
    # improving at epoch 39). Seeds 0, 1: one process 81.6, 81.2 %; two processes 83.0, 81.3 %.
    assert abs(ddp - single.test_acc) < 0.05, (ddp, single.test_acc)


def test_readme_torchrun_commands_parse(readme_section):
    from torch.distributed.run import get_args_parser

    from gat_pyg.cli import build_parser

    section = readme_section('Several processes and machines')
    blocks = [b.split('```')[0] for b in section.split('```bash\n')[1:]]
    blocks = [b for b in blocks if 'torchrun' in b]              # not the benchmark's command
    commands = [b.replace('\\\n', ' ').split('torchrun', 1)[1].split() for b in blocks]
    assert len(commands) == 3
    flags = set()
    for words in commands:
        args = get_args_parser().parse_args(words)
        assert args.module and args.training_script == 'gat_pyg.train'
        train = build_parser().parse_args(['train', *args.training_script_args])
        assert train.config == Path('configs/cora_gat.yaml')
        assert train.override_batch_size == '32'          # the data-parallel mini-batch mode
        flags |= {w for w in words if w.startswith('--')}
    assert {'--standalone', '--nnodes', '--node-rank', '--rdzv-backend', '--rdzv-endpoint',
            '--rdzv-id'} <= flags

"""Devices, precision and determinism of training: the config keys, what is refused and how,
a training step and a one-seed reproduction on every device (CPU always; CUDA when available,
else reported as skipped), checkpoints that load anywhere, mixed precision with float32 master
weights, loss scaling for float16, and deterministic algorithms switched on for a run only."""
import json

import pytest
import torch
import yaml

from gat_pyg.train import (Precision, TrainConfig, load_checkpoint, load_config, reproduce,
                           resolve_device, train_run)
from gat_pyg.train import fullbatch
from gat_pyg.train.device import resolve_backend
from gat_pyg.train.tasks import launch

TINY = dict(model='gat', epochs=3, patience=2, hidden_channels=4, heads=2)
pytestmark = pytest.mark.filterwarnings('ignore:Using .NeighborSampler. without')


# --- the keys and their refusals -------------------------------------------------------------

@pytest.mark.parametrize('values,error,message', [
    ({'device': 'gpu'}, ValueError,
     "config key 'device': expected auto, cpu, cuda or cuda:N \\(N a GPU index\\), got 'gpu'"),
    ({'device': 'cuda:x'}, ValueError, "config key 'device': expected auto, cpu, cuda"),
    ({'device': 0}, TypeError, "config key 'device': expected str"),
    ({'precision': '16'}, ValueError,
     "config key 'precision': unknown precision '16'; expected one of 32, bf16-mixed, 16-mixed"),
    ({'precision': 'bf16'}, ValueError, "config key 'precision': unknown precision 'bf16'"),
    ({'backend': 'mpi'}, ValueError, "config key 'backend': unknown backend 'mpi'; expected one of auto, gloo, nccl"),
    ({'deterministic': 'yes'}, TypeError, "config key 'deterministic': expected bool"),
    ({'inference_batch_size': 0}, ValueError, "config key 'inference_batch_size': must be >= 1"),
])
def test_config_refuses_malformed_values_by_key(values, error, message):
    with pytest.raises(error, match=message):
        TrainConfig.from_dict(values)


def test_config_reads_the_keys_from_yaml_and_round_trips(tmp_path):
    path = tmp_path / 'c.yaml'
    path.write_text('device: cuda:1\nprecision: 32\ndeterministic: true\nbackend: gloo\n'
                    'inference_batch_size: 256\n')
    config = load_config(path)           # a GPU name loads anywhere: it is checked at run time
    assert (config.device, config.precision, config.deterministic, config.backend,
            config.inference_batch_size) == ('cuda:1', '32', True, 'gloo', 256)
    assert TrainConfig.from_dict(yaml.safe_load(config.to_yaml())) == config
    assert (TrainConfig().device, TrainConfig().precision) == ('auto', '32')


def _fake_gpus(monkeypatch, count):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: count > 0)
    monkeypatch.setattr(torch.cuda, 'device_count', lambda: count)


def test_device_resolution_follows_the_machine(monkeypatch):
    _fake_gpus(monkeypatch, 0)
    assert resolve_device('auto') == torch.device('cpu')
    assert resolve_device('auto', local_rank=1, local_processes=2) == torch.device('cpu')
    for name in ('cuda', 'cuda:0'):
        with pytest.raises(ValueError, match=f"'device': '{name}' needs CUDA, which is not "
                                             'available here'):
            resolve_device(name)
    _fake_gpus(monkeypatch, 2)
    assert resolve_device('auto') == torch.device('cuda', 0)
    assert resolve_device('cuda:1') == torch.device('cuda', 1)
    with pytest.raises(ValueError, match=r"'cuda:2' but only 2 GPU\(s\) are visible"):
        resolve_device('cuda:2')
    # torchrun: one GPU per local process, or the CPU for all of them ('auto').
    assert resolve_device('auto', local_rank=1, local_processes=2) == torch.device('cuda', 1)
    assert resolve_device('cuda', local_rank=1, local_processes=2) == torch.device('cuda', 1)
    assert resolve_device('auto', local_rank=0, local_processes=3) == torch.device('cpu')
    with pytest.raises(ValueError, match=r"needs one GPU per process on a machine, but 3 "
                                         r"processes share 2 visible GPU\(s\)"):
        resolve_device('cuda', local_rank=0, local_processes=3)
    with pytest.raises(ValueError, match="'cuda:1' names one GPU, but under torchrun"):
        resolve_device('cuda:1', local_rank=0, local_processes=2)


def test_backend_follows_the_device():
    cpu, gpu = torch.device('cpu'), torch.device('cuda', 0)
    assert (resolve_backend('auto', cpu), resolve_backend('auto', gpu)) == ('gloo', 'nccl')
    assert resolve_backend('gloo', gpu) == 'gloo'
    with pytest.raises(ValueError, match="config key 'backend': nccl communicates between "
                                         'GPUs, but this process trains on cpu'):
        resolve_backend('nccl', cpu)


@pytest.mark.skipif(torch.cuda.is_available(), reason='needs a machine without CUDA')
def test_cuda_without_cuda_is_refused_before_the_data_is_loaded():
    def load():
        raise AssertionError('the data was loaded before the refusal')

    with pytest.raises(ValueError, match="'device': 'cuda' needs CUDA"):
        launch(TrainConfig(device='cuda'), load)


# --- training on each device -----------------------------------------------------------------

def test_training_step_and_checkpoint_on_device(cora, tmp_path, device):
    config = TrainConfig.from_dict({**TINY, 'device': str(device)})
    result = train_run(config, cora, tmp_path)
    assert torch.device(result.device).type == device.type
    stored = json.loads((tmp_path / 'result.json').read_text())
    assert stored['result']['device'] == result.device            # the run folder says where
    assert yaml.safe_load((tmp_path / 'config.yaml').read_text())['device'] == str(device)
    checkpoint = torch.load(tmp_path / 'checkpoint.pt', weights_only=True)
    assert checkpoint['device'] == result.device
    assert all(v.device.type == 'cpu' for v in checkpoint['model_state'].values())
    # The checkpoint loads onto any device and predicts what was tested.
    for target in {torch.device('cpu'), device}:
        model, _ = load_checkpoint(tmp_path / 'checkpoint.pt', device=target)
        assert {p.device.type for p in model.parameters()} == {target.type}
        with torch.no_grad():
            pred = model(cora.x.to(target), cora.edge_index.to(target)).argmax(-1).cpu()
        acc = (pred[cora.test_mask] == cora.y[cora.test_mask]).float().mean().item()
        assert acc == pytest.approx(result.test_acc, abs=1e-3)


def test_minibatch_and_layerwise_evaluation_on_device(cora, device):
    config = TrainConfig.from_dict({**TINY, 'device': str(device), 'batch_size': 70,
                                    'num_neighbors': [5, 5], 'inference_batch_size': 1000})
    result = train_run(config, cora)
    full = train_run(TrainConfig.from_dict({**config.to_dict(), 'inference_batch_size': None}),
                     cora)
    # Layer-wise evaluation scores like the full forward pass, so the runs agree.
    assert (result.epochs, result.best_epoch) == (full.epochs, full.best_epoch)
    assert result.val_loss == pytest.approx(full.val_loss, rel=1e-5)
    assert result.test_acc == pytest.approx(full.test_acc, abs=1e-3)
    assert cora.x.device.type == 'cpu'                       # the caller's graph did not move


def test_reproduce_one_seed_on_device(tmp_path, data_root, mirror, device):
    rows = reproduce(['cora'], ['gat'], 1, tmp_path, root=data_root, mirror=str(mirror),
                     progress=False, overrides={'device': str(device), 'epochs': 3,
                                                'patience': 2})
    assert rows[0].runs == 1 and 0.0 < rows[0].mean <= 1.0
    stored = json.loads((tmp_path / 'runs' / 'cora_gat' / 'seed_0' / 'result.json').read_text())
    assert torch.device(stored['result']['device']).type == device.type


# --- precision -------------------------------------------------------------------------------

@pytest.mark.parametrize('model', ['gcn', 'mlp'])
def test_bf16_mixed_trains_with_float32_master_weights(cora, model):
    from torch_geometric.nn.dense.linear import Linear

    base = dict(model=model, epochs=3, early_stopping='none', device='cpu')
    products, parameters = [], []

    def recording(task, trained, optimizer):
        # The layers' products run in bfloat16; the parameters stay float32.
        hooks = [m.register_forward_hook(lambda m, i, out: products.append(out.dtype))
                 for m in trained.modules() if isinstance(m, Linear)]
        result = original(task, trained, optimizer)
        for hook in hooks:
            hook.remove()
        parameters.append({p.dtype for p in trained.parameters()})
        parameters.append({p.grad.dtype for p in trained.parameters()})
        return result

    original = fullbatch.NodeTask.train_epoch
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(fullbatch.NodeTask, 'train_epoch', recording)
        mixed = train_run(TrainConfig.from_dict({**base, 'precision': 'bf16-mixed'}), cora)
    assert products and set(products) == {torch.bfloat16}
    assert all(dtypes == {torch.float32} for dtypes in parameters)
    full = train_run(TrainConfig.from_dict(base), cora)
    assert mixed.val_loss != full.val_loss                      # it did compute in bfloat16
    assert mixed.val_loss == pytest.approx(full.val_loss, rel=0.05)


@pytest.mark.parametrize('model', ['gat', 'gatv2'])
def test_bf16_mixed_trains_the_attention_models(cora, model):
    """The layers' projections run in bfloat16 under autocast and the attention in a dtype its
    path supports (issue 11: the default path crashed in bfloat16)."""
    config = TrainConfig.from_dict({**TINY, 'model': model, 'precision': 'bf16-mixed',
                                    'device': 'cpu'})
    full = train_run(TrainConfig.from_dict({**TINY, 'model': model, 'device': 'cpu'}), cora)
    mixed = train_run(config, cora)
    assert mixed.val_loss == pytest.approx(full.val_loss, rel=0.05)


def test_16_mixed_scales_the_loss_and_skips_overflowing_steps():
    precision = Precision.resolve('16-mixed', torch.device('cpu'))
    assert precision.dtype == torch.float16 and precision.scaler is not None
    torch.manual_seed(0)
    layer = torch.nn.Linear(4, 2)
    optimizer = torch.optim.SGD(layer.parameters(), lr=0.1)
    x = torch.randn(8, 4)
    scale = precision.scaler.get_scale()
    with precision.autocast():
        out = layer(x)
    assert out.dtype == torch.float16 and layer.weight.dtype == torch.float32
    before = layer.weight.detach().clone()
    precision.step(out.float().pow(2).mean(), optimizer)
    assert not torch.equal(layer.weight, before)                 # a finite step is taken
    assert precision.scaler.get_scale() == scale
    # An overflowing loss gives inf gradients: the step is skipped and the scale halved.
    optimizer.zero_grad()
    before = layer.weight.detach().clone()
    with precision.autocast():
        out = layer(x)
    precision.step(out.float().sum() * float('inf'), optimizer)
    assert torch.equal(layer.weight, before)
    assert precision.scaler.get_scale() == scale / 2
    assert Precision.resolve('bf16-mixed', torch.device('cpu')).scaler is None


def test_16_mixed_trains_the_gcn_on_the_cpu(cora):
    config = TrainConfig.from_dict(dict(model='gcn', epochs=3, early_stopping='none',
                                        precision='16-mixed', device='cpu'))
    result = train_run(config, cora)
    assert 0.0 < result.test_acc <= 1.0 and result.val_loss == result.val_loss   # not NaN


# --- determinism -----------------------------------------------------------------------------

def test_deterministic_algorithms_are_on_for_the_run_only(cora):
    seen = []
    original = fullbatch.NodeTask.train_epoch

    def recording(task, trained, optimizer):
        seen.append(torch.are_deterministic_algorithms_enabled())
        return original(task, trained, optimizer)

    config = TrainConfig.from_dict({**TINY, 'deterministic': True, 'device': 'cpu'})
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(fullbatch.NodeTask, 'train_epoch', recording)
        a = train_run(config, cora)
    assert seen and all(seen)
    assert not torch.are_deterministic_algorithms_enabled()
    b = train_run(config, cora)
    assert (a.val_loss, a.test_acc, a.best_epoch) == (b.val_loss, b.test_acc, b.best_epoch)

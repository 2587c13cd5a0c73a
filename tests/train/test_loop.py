"""One training run on Cora: determinism, the run folder, the restored checkpoint."""
import csv

import pytest
import torch
import yaml

from gat_pyg.train import TrainConfig, load_checkpoint, run_dir, train_run
from gat_pyg.train import loop
from gat_pyg.train.early_stopping import make_stopping
from gat_pyg.models import GAT
from gat_pyg.train.optim import make_optimizer
from gat_pyg.train.results import metric_columns

# Few epochs keep the suite fast; early_stopping 'gat' with a short patience still exercises
# checkpoint selection.
GAT_TINY = dict(model='gat', epochs=4, patience=1, hidden_channels=4, heads=2)


def _metrics(folder):
    with open(folder / 'metrics.csv') as f:
        return [{k: v for k, v in row.items() if k != 'seconds'} for row in csv.DictReader(f)]


@pytest.mark.parametrize('model', ['gat', 'gcn'])
def test_same_seed_is_bit_identical(cora, tmp_path, model):
    config = TrainConfig.from_dict(GAT_TINY if model == 'gat' else
                                   dict(model='gcn', epochs=6, early_stopping='gcn',
                                        patience=2, weight_decay_first_layer_only=True))
    rng = torch.get_rng_state()
    a = train_run(config, cora, tmp_path / 'a')
    b = train_run(config, cora, tmp_path / 'b')
    assert torch.equal(torch.get_rng_state(), rng)       # the caller's RNG is untouched
    assert (a.test_acc, a.val_acc, a.val_loss, a.best_epoch) == \
        (b.test_acc, b.val_acc, b.val_loss, b.best_epoch)
    assert _metrics(tmp_path / 'a') == _metrics(tmp_path / 'b')
    state_a = torch.load(tmp_path / 'a' / 'checkpoint.pt', weights_only=True)['model_state']
    state_b = torch.load(tmp_path / 'b' / 'checkpoint.pt', weights_only=True)['model_state']
    assert state_a.keys() == state_b.keys()
    assert all(torch.equal(state_a[k], state_b[k]) for k in state_a)
    other = train_run(TrainConfig.from_dict({**config.to_dict(), 'seed': 1}), cora)
    assert other.val_loss != a.val_loss


def test_run_folder_and_checkpoint(cora, tmp_path):
    config = TrainConfig.from_dict(GAT_TINY)
    folder = run_dir(tmp_path, config)
    assert folder == tmp_path / 'runs' / 'cora_gat' / 'seed_0'
    result = train_run(config, cora, folder)
    assert TrainConfig.from_dict(yaml.safe_load((folder / 'config.yaml').read_text())) == config
    rows = _metrics(folder)
    assert list(rows[0]) == ['epoch', 'train_loss', 'train_acc', 'val_loss', 'val_acc',
                             'checkpoint']
    assert metric_columns('acc')[:-1] == tuple(rows[0]) and metric_columns('acc')[-1] == 'seconds'
    assert len(rows) == result.epochs
    # The tested model is the last epoch the rule saved.
    saved = [int(r['epoch']) for r in rows if r['checkpoint'] == '1']
    assert saved[-1] == result.best_epoch
    model, stored = load_checkpoint(folder / 'checkpoint.pt')
    assert stored == config
    with torch.no_grad():
        pred = model(cora.x, cora.edge_index).argmax(dim=-1)
    test_acc = (pred[cora.test_mask] == cora.y[cora.test_mask]).float().mean().item()
    assert test_acc == result.test_acc
    assert not list(folder.glob('.*'))                     # no temporary files left behind


def test_gcn_rule_tests_the_last_model(cora):
    config = TrainConfig.from_dict(dict(model='mlp', epochs=5, early_stopping='gcn',
                                        patience=10))
    result = train_run(config, cora)
    assert (result.epochs, result.best_epoch) == (5, 4)


@pytest.mark.parametrize('rule', ['gcn', 'gat'])
def test_stopping_rule_sees_the_loss_of_its_original_code(cora, tmp_path, monkeypatch, rule):
    # tkipf/gcn stops on its full loss (cross-entropy + weight_decay * l2_loss of the first
    # layer); the official GAT code on the cross-entropy alone.
    seen = []

    def recording(name, patience):
        stopping = make_stopping(name, patience)
        step = stopping.step
        stopping.step = lambda loss, acc: (seen.append(loss), step(loss, acc))[1]
        return stopping

    monkeypatch.setattr(loop, 'make_stopping', recording)
    config = TrainConfig.from_dict(dict(model='gcn', epochs=4, early_stopping=rule,
                                        patience=10, weight_decay=0.05,
                                        weight_decay_first_layer_only=True))
    result = train_run(config, cora, tmp_path)
    ce = [float(row['val_loss']) for row in _metrics(tmp_path)]
    assert len(seen) == len(ce) == 4
    if rule == 'gat':
        assert seen == ce
        return
    # The gcn rule tests the last model, so the checkpoint holds the last epoch's weights.
    state = torch.load(tmp_path / 'checkpoint.pt', weights_only=True)['model_state']
    first = [v for k, v in state.items() if k.startswith('convs.0.')]
    assert first
    penalty = 0.05 / 2 * sum(float((v.double() ** 2).sum()) for v in first)
    assert penalty > 1e-3
    assert seen[-1] == pytest.approx(ce[-1] + penalty, rel=1e-6)
    assert result.val_loss == pytest.approx(ce[-1], rel=1e-6)


def test_make_optimizer_is_fused_adam_with_the_plain_update():
    """The package's optimizer is torch's fused Adam where it applies, and its updates equal the
    default Adam's to rounding (weight decay included, per group)."""
    torch.manual_seed(0)
    no_dropout = dict(heads=2, dropout=0.0, attn_dropout=0.0, message_dropout=0.0)
    model = GAT(12, 4, 3, **no_dropout)
    twin = GAT(12, 4, 3, **no_dropout)
    twin.load_state_dict(model.state_dict())
    fused = make_optimizer(model.parameter_groups(5e-4, first_layer_only=True), lr=0.01)
    plain = torch.optim.Adam(twin.parameter_groups(5e-4, first_layer_only=True), lr=0.01)
    assert fused.defaults['fused'] and not plain.defaults['fused']
    x, edge_index = torch.randn(20, 12), torch.randint(0, 20, (2, 60))
    for _ in range(3):
        for net, optimizer in ((model, fused), (twin, plain)):
            optimizer.zero_grad()
            net(x, edge_index).square().mean().backward()
            optimizer.step()
    for a, b in zip(model.parameters(), twin.parameters()):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)


def test_make_optimizer_refuses_bad_settings_and_falls_back_for_lazy_parameters():
    model = GAT(12, 4, 3, heads=2)
    with pytest.raises(ValueError, match='lr: expected a positive learning rate'):
        make_optimizer(model.parameters(), lr=0.0)
    with pytest.raises(ValueError, match='weight_decay: expected a value >= 0'):
        make_optimizer(model.parameters(), lr=0.01, weight_decay=-1.0)
    with pytest.raises(ValueError, match='params: the model has no parameters'):
        make_optimizer([], lr=0.01)
    lazy = torch.nn.LazyLinear(3)
    assert not make_optimizer(lazy.parameters(), lr=0.01).defaults['fused']


def test_load_checkpoint_is_a_named_pair_and_says_so_when_called(cora, tmp_path):
    """Issue 23: ``model = load_checkpoint(p); model(...)`` failed with "'tuple' object is not
    callable"; the pair now says how to use it."""
    config = TrainConfig.from_dict(dict(GAT_TINY, epochs=2))
    folder = run_dir(tmp_path, config)
    train_run(config, cora, folder)
    loaded = load_checkpoint(folder / 'checkpoint.pt')
    model, stored = loaded                                  # unpacks as before
    assert loaded.model is model and loaded.config == stored == config
    assert not model.training and isinstance(model, GAT)
    with pytest.raises(TypeError, match=r"^load_checkpoint returns \(model, config\), not the "
                                        r"model: write 'model, config = load_checkpoint\(path\)'"):
        loaded(cora.x, cora.edge_index)


def test_a_checkpoint_saved_before_act_was_a_key_loads_with_the_models_activation(cora,
                                                                                tmp_path):
    config = TrainConfig.from_dict(dict(GAT_TINY, epochs=1))
    folder = run_dir(tmp_path, config)
    train_run(config, cora, folder)
    saved = torch.load(folder / 'checkpoint.pt', weights_only=True)
    del saved['config']['act']                              # as the older runs wrote it
    torch.save(saved, folder / 'old.pt')
    model, stored = load_checkpoint(folder / 'old.pt')
    assert stored.act == 'elu' and isinstance(model.act, torch.nn.ELU)


@pytest.mark.slow
def test_train_run_from_python_trains_a_gcn_with_the_gcn_settings(cora, tmp_path):
    """Issue 20: ``train_run(TrainConfig(model='gcn'), data)`` trained a GCN with the GAT's
    learning rate, dropout and 100,000 epochs."""
    from gat_pyg.models import GCN
    from gat_pyg.train import load_config

    result = train_run(TrainConfig(model='gcn'), cora, tmp_path)
    written = yaml.safe_load((tmp_path / 'config.yaml').read_text())
    assert written == load_config('configs/cora_gcn.yaml').to_dict()
    assert result.epochs <= 200 and result.model == 'gcn'
    model, _ = load_checkpoint(tmp_path / 'checkpoint.pt')
    assert type(model) is GCN and model.hidden_channels == 16 and model.dropout == 0.5
    assert model.convs[0].bias is None
    assert result.test_acc > 0.75                  # Kipf's GCN on Cora reaches ~81 %

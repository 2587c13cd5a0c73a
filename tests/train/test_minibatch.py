"""Mini-batch training: our layers on NeighborLoader batches, the training step, the harness
in mini-batch mode, and the errors of its two config keys."""
import csv
import re

import pytest
import torch
import torch_geometric.nn as pyg_nn
import yaml
from torch_geometric.data import Data
from torch_geometric.loader import NeighborLoader

from gat_pyg.cli import main
from gat_pyg.models import GAT
from gat_pyg.train import TrainConfig, parse_override, run_dir, train_run
from gat_pyg.train.minibatch import MiniBatchTask, make_loader, train_batch

pytestmark = pytest.mark.filterwarnings('ignore:Using .NeighborSampler. without')


class PyGGAT(GAT):
    """The same model on PyG's GATConv (as the benchmarks build it)."""
    conv_class = pyg_nn.GATConv


def _random_graph(num_nodes=120, num_edges=700, features=12, classes=3, seed=0):
    """A random graph with a learnable signal: labels are planted in the first ``classes``
    features, and each edge joins two nodes of the same class, so neighbours agree."""
    gen = torch.Generator().manual_seed(seed)
    y = torch.randint(0, classes, (num_nodes, ), generator=gen)
    x = 0.5 * torch.randn(num_nodes, features, generator=gen)
    x[torch.arange(num_nodes), y] += 1.0
    src = torch.randint(0, num_nodes, (num_edges, ), generator=gen)
    by_class = y.argsort()
    counts = torch.bincount(y, minlength=classes)
    starts = counts.cumsum(0) - counts
    offset = (torch.rand(num_edges, generator=gen) * counts[y[src]]).long()
    dst = by_class[starts[y[src]] + offset]
    train_mask = torch.rand(num_nodes, generator=gen) < 0.6
    return Data(x=x, edge_index=torch.stack([src, dst]), y=y, train_mask=train_mask,
                num_nodes=num_nodes)


def _batch(data, num_neighbors=(4, 3), batch_size=16):
    torch.manual_seed(1)            # neighbour sampling draws from the global generator
    loader = NeighborLoader(data, num_neighbors=list(num_neighbors), batch_size=batch_size,
                            input_nodes=data.train_mask, shuffle=True,
                            generator=torch.Generator().manual_seed(1))
    return next(iter(loader))


def _model(data, fast_path):
    torch.manual_seed(0)
    model = GAT(data.num_features, 4, 3, heads=2, dropout=0.0, attn_dropout=0.0,
                message_dropout=0.0).eval()
    for conv in model.convs:
        conv.fast_path = fast_path
    return model


@pytest.mark.parametrize('fast_path', [True, False], ids=['fast', 'plain'])
def test_batch_output_is_the_full_forward_on_the_sampled_subgraph(fast_path):
    data = _random_graph()
    batch = _batch(data)
    assert batch.batch_size == 16 and batch.num_nodes > 16       # neighbours were sampled
    model = _model(data, fast_path)
    with torch.no_grad():
        out = model(batch.x, batch.edge_index)
        # The same model, full-batch over every node but only the sampled edges (global ids):
        # the sampled nodes' rows see exactly the batch's graph.
        full = model(data.x, data.edge_index[:, batch.e_id])
    assert out.shape == (batch.num_nodes, 3)
    torch.testing.assert_close(out, full[batch.n_id], atol=1e-6, rtol=1e-5)
    # PyG's GATConv in the same model, with our weights.
    pyg = PyGGAT(data.num_features, 4, 3, heads=2, dropout=0.0, attn_dropout=0.0,
                message_dropout=0.0).eval()
    pyg.load_state_dict(model.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(out, pyg(batch.x, batch.edge_index), atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize('fast_path', [True, False], ids=['fast', 'plain'])
def test_bipartite_last_layer_gives_the_target_rows(fast_path):
    data = _random_graph()
    batch = _batch(data)
    n, bs = batch.num_nodes, batch.batch_size
    model = _model(data, fast_path)
    with torch.no_grad():
        out = model(batch.x, batch.edge_index)
        hidden = model.act(model.convs[0](batch.x, batch.edge_index))
        into_targets = batch.edge_index[:, batch.edge_index[1] < bs]
        last = model.convs[1]((hidden, hidden[:bs]), into_targets, size=(n, bs))
    assert last.shape == (bs, 3)
    torch.testing.assert_close(last, out[:bs], atol=1e-6, rtol=1e-5)


def test_sparse_features_stay_sparse_in_batches():
    data = _random_graph()
    dense = _batch(data)
    sparse_data = data.clone()
    sparse_data.x = data.x.to_sparse()
    batch = _batch(sparse_data)
    assert batch.x.layout == torch.sparse_coo
    assert torch.equal(batch.n_id, dense.n_id)                   # same seeded sampling
    assert torch.equal(batch.x.to_dense(), data.x[batch.n_id])
    model = _model(data, None)
    with torch.no_grad():
        torch.testing.assert_close(model(batch.x, batch.edge_index),
                                   model(dense.x, dense.edge_index), atol=1e-6, rtol=1e-5)


def test_minibatch_training_learns_the_planted_labels():
    data = _random_graph(num_nodes=200, num_edges=1000)
    config = TrainConfig(batch_size=40, num_neighbors=[5, 5])
    task = MiniBatchTask(config, data)
    torch.manual_seed(0)
    model = GAT(data.num_features, 4, 3, heads=2, dropout=0.0, attn_dropout=0.0,
                message_dropout=0.0)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    losses, accs = zip(*[task.train_epoch(model, optimizer) for _ in range(4)])
    assert all(b < a for a, b in zip(losses, losses[1:])), losses
    assert losses[-1] < 0.5 * losses[0], losses
    assert accs[0] < accs[-1] and accs[-1] > 0.95, accs


def test_an_epoch_visits_each_training_node_once_and_is_seeded():
    data = _random_graph()
    config = TrainConfig(batch_size=10, num_neighbors=[3, 3])
    targets = [b.n_id[:b.batch_size] for b in make_loader(config, data)]
    assert [len(t) for t in targets][:-1] == [10] * (len(targets) - 1)
    visited = torch.cat(targets)
    assert torch.equal(visited.sort().values, data.train_mask.nonzero().view(-1))
    again = torch.cat([b.n_id[:b.batch_size] for b in make_loader(config, data)])
    assert torch.equal(visited, again)                           # same seed, same order
    other = make_loader(TrainConfig(batch_size=10, num_neighbors=[3, 3], seed=1), data)
    assert not torch.equal(visited, torch.cat([b.n_id[:b.batch_size] for b in other]))


def test_train_batch_returns_loss_and_correct_count():
    data = _random_graph()
    batch = _batch(data)
    torch.manual_seed(0)
    model = GAT(data.num_features, 4, 3, heads=2, dropout=0.0, attn_dropout=0.0,
                message_dropout=0.0)
    with torch.no_grad():
        logits = model(batch.x, batch.edge_index)[:batch.batch_size]
    expected = torch.nn.functional.cross_entropy(logits, batch.y[:batch.batch_size]).item()
    correct = int((logits.argmax(-1) == batch.y[:batch.batch_size]).sum())
    loss, got = train_batch(model, torch.optim.SGD(model.parameters(), lr=0.1), batch)
    assert loss == pytest.approx(expected, rel=1e-6) and got == correct
    with torch.no_grad():                                        # the step changed the model
        assert not torch.equal(model(batch.x, batch.edge_index)[:batch.batch_size], logits)


MB_TINY = dict(model='gat', epochs=3, patience=1, hidden_channels=4, heads=2, batch_size=70,
               num_neighbors=[5, 5])


def _rows(folder):
    with open(folder / 'metrics.csv') as f:
        return [{k: v for k, v in r.items() if k != 'seconds'} for r in csv.DictReader(f)]


def test_train_run_in_minibatch_mode_is_reproducible(cora, tmp_path):
    config = TrainConfig.from_dict(MB_TINY)
    a = train_run(config, cora, tmp_path / 'a')
    b = train_run(config, cora, tmp_path / 'b')
    assert (a.test_acc, a.val_loss, a.best_epoch, a.epochs) == \
        (b.test_acc, b.val_loss, b.best_epoch, b.epochs)
    assert _rows(tmp_path / 'a') == _rows(tmp_path / 'b')
    rows = _rows(tmp_path / 'a')
    assert len(rows) == a.epochs and a.epochs >= 2
    assert [int(r['epoch']) for r in rows if r['checkpoint'] == '1'][-1] == a.best_epoch
    # Training differs from full-batch training: the step is the mini-batch one.
    full = train_run(TrainConfig.from_dict({**MB_TINY, 'batch_size': None,
                                            'num_neighbors': None}), cora)
    assert full.val_loss != a.val_loss


def test_cli_minibatch_train(tmp_path, data_root, mirror, capsys):
    status = main(['train', '--config', 'configs/cora_gat.yaml', '--batch-size', '64',
                   '--num-neighbors', '10', '10', '--epochs', '2', '--out', str(tmp_path),
                   '--data-root', str(data_root), '--mirror', str(mirror), '--no-progress'])
    assert status == 0
    assert '| cora | gat | 0 |' in capsys.readouterr().out
    folder = run_dir(tmp_path, TrainConfig())
    config = yaml.safe_load((folder / 'config.yaml').read_text())
    assert (config['batch_size'], config['num_neighbors'], config['epochs']) == (64, [10, 10], 2)


@pytest.mark.parametrize('args,message', [
    (['--num-neighbors', '10'], "'num_neighbors': expected one count per layer "
                                r"\(num_layers=2\), got 1: \[10\]"),
    (['--num-neighbors', '10', '10', '10'], "'num_neighbors': expected one count per layer"),
    (['--batch-size', '0'], "'batch_size': must be >= 1"),
    (['--batch-size', '-3'], "'batch_size': must be >= 1"),
])
def test_cli_minibatch_errors(args, message, tmp_path, caplog):
    extra = [] if '--batch-size' in args else ['--batch-size', '8']
    status = main(['train', '--config', 'configs/cora_gat.yaml', *args, *extra,
                   '--out', str(tmp_path), '--no-progress'])
    assert status == 1
    assert re.search(message, caplog.text), caplog.text
    assert not (tmp_path / 'runs').exists()


@pytest.mark.parametrize('values,error,message', [
    ({'batch_size': 0}, ValueError, "'batch_size': must be >= 1"),
    ({'batch_size': 8, 'num_neighbors': [10]}, ValueError,
     r"'num_neighbors': expected one count per layer \(num_layers=2\)"),
    ({'batch_size': 8, 'num_layers': 3, 'num_neighbors': [10, 10]}, ValueError,
     r"\(num_layers=3\), got 2"),
    ({'batch_size': 8, 'num_neighbors': [10, 0]}, ValueError, 'must be >= 1, or -1'),
    ({'num_neighbors': [10, 10]}, ValueError, "'num_neighbors': .* set batch_size too"),
    ({'batch_size': 8.0}, TypeError, "'batch_size': expected int or null"),
    ({'batch_size': 8, 'num_neighbors': 10}, TypeError,
     "'num_neighbors': expected list of int or null"),
    ({'batch_size': 8, 'num_neighbors': [10, True]}, TypeError, "'num_neighbors'"),
])
def test_config_errors_name_the_key(values, error, message):
    with pytest.raises(error, match=message):
        TrainConfig.from_dict(values)


def test_config_accepts_minibatch_keys_and_round_trips():
    config = TrainConfig.from_dict({'batch_size': 8, 'num_neighbors': [10, -1]})
    assert TrainConfig.from_dict(config.to_dict()) == config
    assert yaml.safe_load(config.to_yaml())['num_neighbors'] == [10, -1]
    assert TrainConfig.from_dict({'batch_size': 8}).num_neighbors is None    # all neighbours
    assert TrainConfig().batch_size is None                                  # full batch


def test_parse_override_reads_lists_and_null():
    assert parse_override('num_neighbors', ['10', '-1']) == [10, -1]
    assert parse_override('num_neighbors', '5 5') == [5, 5]
    assert parse_override('batch_size', '256') == 256
    assert parse_override('batch_size', 'null') is None
    assert parse_override('num_neighbors', ['none']) is None
    with pytest.raises(ValueError, match="'num_neighbors': expected list of int or null, "
                                         "got '10 ten'"):
        parse_override('num_neighbors', ['10', 'ten'])
    with pytest.raises(ValueError, match="'batch_size': expected int or null"):
        parse_override('batch_size', 'big')


# --- issue 23: the batch bar on a terminal, PyG's pyg-lib warning ----------------------------

class _Terminal:
    """stderr as a terminal: tqdm draws on it (its output is kept)."""

    def __init__(self):
        self.text = ''

    def write(self, text):
        self.text += text

    def flush(self):
        pass

    def isatty(self):
        return True


@pytest.mark.parametrize('slow', [False, True], ids=['fast-epochs', 'slow-epochs'])
def test_the_batch_bar_appears_only_for_epochs_worth_watching(slow, monkeypatch):
    """A fast epoch draws no batch bar (it used to flash '0/3' and vanish every epoch); an epoch
    slower than BATCH_BAR_DELAY shows its bar, and the bar advances."""
    import sys
    import time

    from gat_pyg.train import minibatch

    terminal = _Terminal()
    monkeypatch.setattr(sys, 'stderr', terminal)
    # Slow: 3 batches of 0.15 s against a 0.2 s delay. Fast: epochs far under the delay
    # (on a loaded machine a real epoch may take longer than a short delay).
    monkeypatch.setattr(minibatch, 'BATCH_BAR_DELAY', 0.2 if slow else 60.0)
    real_batch = minibatch.train_batch
    if slow:
        monkeypatch.setattr(minibatch, 'train_batch', lambda *args: (time.sleep(0.15),
                                                                     real_batch(*args))[1])
    config = TrainConfig(batch_size=24, num_neighbors=[3, 3], device='cpu', epochs=2,
                         early_stopping='none', hidden_channels=4, heads=2)
    data = _random_graph()
    data.val_mask = data.test_mask = ~data.train_mask
    train_run(config, data, progress=True)
    batch_bars = re.findall(r'epoch (\d+): +(\d+)%\|[^|]*\| (\d+)/(\d+)', terminal.text)
    if not slow:
        assert batch_bars == [], terminal.text
        assert 'cora/gat seed 0:' in terminal.text      # the epoch bar was drawn
    else:
        shown = {(int(e), int(done)) for e, _, done, total in batch_bars if int(done) > 0}
        assert {epoch for epoch, _ in shown} == {0, 1}, terminal.text
        assert max(done for _, done in shown) >= 2        # 3 batches: it advanced


def test_the_pyg_lib_warning_becomes_one_line_that_says_what_it_means(caplog, recwarn):
    from torch_geometric.typing import WITH_PYG_LIB

    from gat_pyg.train import minibatch

    if WITH_PYG_LIB:
        pytest.skip('pyg-lib is installed: PyG has nothing to warn about')
    minibatch.explain_missing_pyg_lib.cache_clear()
    config = TrainConfig(batch_size=8, device='cpu')
    data = _random_graph()
    with caplog.at_level('WARNING', logger='gat_pyg'):
        for _ in range(3):                          # three runs, one process
            make_loader(config, data)
    explained = [r for r in caplog.records if 'pyg-lib is not installed' in r.getMessage()]
    assert len(explained) == 1 and explained[0].name == 'gat_pyg.train.minibatch'
    message = explained[0].getMessage()
    assert 'Training is unaffected' in message and 'no wheels on PyPI' in message
    assert not [w for w in recwarn if 'pyg-lib' in str(w.message)]     # PyG's own: gone

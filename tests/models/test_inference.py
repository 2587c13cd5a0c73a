"""Layer-wise inference: each layer for all nodes in node blocks equals the full forward pass."""
import pytest
import torch

from gat_pyg.models import MODELS, GAT
from gat_pyg.models.inference import NodeBlocks


def _graph(num_nodes=43, num_edges=160, features=9, seed=0):
    """A random directed graph with duplicate edges, self-loops and isolated nodes (the last
    three nodes have no edge at all); sparse-ish non-negative features, as bag-of-words."""
    gen = torch.Generator().manual_seed(seed)
    edge_index = torch.randint(0, num_nodes - 3, (2, num_edges), generator=gen)
    edge_index = torch.cat([edge_index, edge_index[:, :10], torch.tensor([[4, 7], [4, 7]])], 1)
    x = torch.rand(num_nodes, features, generator=gen)
    x = x * (torch.rand(num_nodes, features, generator=gen) < 0.3)
    return x, edge_index


def _model(name, features=9, **kwargs):
    torch.manual_seed(0)
    return MODELS[name](features, 4, 5, **kwargs).eval()


# The paper's heads, activation and (for GCN / MLP) bias, passed explicitly: the classes'
# own defaults are PyG's (one head, ReLU, a bias).
PAPER_GAT = dict(heads=8, act='elu')


@pytest.mark.parametrize('sparse', [False, True], ids=['dense', 'sparse'])
@pytest.mark.parametrize('name,kwargs', [
    ('gat', PAPER_GAT), ('gat', dict(PAPER_GAT, num_layers=3, residual=True, out_heads=2)),
    ('gatv2', PAPER_GAT), ('gcn', dict(bias=False)), ('gcn', dict(num_layers=3, bias=True)),
    ('mlp', dict(bias=False))],
    ids=['gat', 'gat-3-layers-residual', 'gatv2', 'gcn', 'gcn-3-layers-bias', 'mlp'])
@pytest.mark.parametrize('batch_size', [1, 8, 1000])
def test_inference_equals_the_full_forward(name, kwargs, sparse, batch_size):
    x, edge_index = _graph()
    model = _model(name, **kwargs)
    with torch.no_grad():
        full = model(x, edge_index)
    got = model.inference(x.to_sparse() if sparse else x, edge_index, batch_size=batch_size)
    assert got.shape == full.shape == (43, 5)
    torch.testing.assert_close(got, full, atol=1e-5, rtol=1e-5)


def test_inference_takes_a_data_object_and_shows_progress(capsys):
    from torch_geometric.data import Data

    x, edge_index = _graph()
    model = _model('gat')
    with torch.no_grad():
        full = model(x, edge_index)
    got = model.inference(Data(x=x, edge_index=edge_index), batch_size=10, progress=True)
    torch.testing.assert_close(got, full, atol=1e-5, rtol=1e-5)
    drawn = ' '.join(capsys.readouterr().err.split())      # tqdm draws on stderr
    assert 'GAT inference: 0%| | 0/10' in drawn              # 2 layers x 5 blocks


def test_inference_on_cora_equals_the_full_forward(cora):
    model = _model('gat', features=cora.num_features, **PAPER_GAT)
    with torch.no_grad():
        full = model(cora.x, cora.edge_index)
    got = model.inference(cora.x, cora.edge_index, batch_size=500)
    torch.testing.assert_close(got, full, atol=1e-5, rtol=1e-5)


def test_inference_on_a_device_returns_on_the_input_device(device):
    x, edge_index = _graph()
    model = _model('gat', **PAPER_GAT).to(device)
    with torch.no_grad():
        full = model(x.to(device), edge_index.to(device)).cpu()
    got = model.inference(x, edge_index, batch_size=16)      # blocks travel to the model's device
    assert got.device == x.device
    torch.testing.assert_close(got, full, atol=1e-5, rtol=1e-5)


def test_blocks_cover_every_edge_once_with_targets_first():
    x, edge_index = _graph()
    blocks = list(NodeBlocks(edge_index, 43, 10))
    assert [(b.start, b.end) for b in blocks] == [(0, 10), (10, 20), (20, 30), (30, 40),
                                                  (40, 43)]
    seen = []
    for b in blocks:
        assert torch.equal(b.n_id[:b.end - b.start], torch.arange(b.start, b.end))
        assert b.n_id.unique().numel() == b.n_id.numel()
        src, dst = b.edge_index
        assert int(src.max()) < b.n_id.numel() and int(dst.max()) < b.end - b.start \
            if src.numel() else True
        seen.append(torch.stack([b.n_id[src], dst + b.start]))
    seen = torch.cat(seen, 1)
    key = lambda e: (e[0] * 1000 + e[1]).sort().values            # noqa: E731
    assert torch.equal(key(seen), key(edge_index))
    assert len(NodeBlocks(edge_index[:, :0], 0, 4)) == 1          # an empty graph: one block


def test_inference_errors_name_the_argument():
    x, edge_index = _graph()
    model = _model('gat')
    with pytest.raises(ValueError, match='batch_size must be an int >= 1, got 0'):
        model.inference(x, edge_index, batch_size=0)
    with pytest.raises(ValueError, match=r'edge_index must have shape \[2, E\], got \[3, 4\]'):
        model.inference(x, torch.zeros(3, 4, dtype=torch.long))
    with pytest.raises(ValueError, match=r'ids outside \[0, 43\)'):
        model.inference(x, torch.tensor([[0], [43]]))
    with pytest.raises(TypeError, match='edge_index must be a'):
        model.inference(x)
    with pytest.raises(RuntimeError, match=r'call model.eval\(\) first'):
        GAT(9, 4, 5).inference(x, edge_index)

"""gat_pyg.nn.models.GAT: PyG's BasicGNN GAT with our layers, held to PyG's own model with
copied weights (structure, state_dicts both ways, outputs, gradients, trim_to_layer,
layer-wise inference)."""
import inspect

import pytest
import torch
import torch_geometric
from torch_geometric.data import Data
from torch_geometric.nn.models import GAT as PyGGAT

import gat_pyg
from gat_pyg.nn.models import GAT

SETTINGS = [
    dict(),
    dict(v2=True),
    dict(heads=4),
    dict(heads=4, v2=True, out_channels=5),
    dict(heads=2, jk='cat'),
    dict(heads=2, jk='max', v2=True),
    dict(jk='last', out_channels=3),
    dict(heads=2, jk='lstm', out_channels=3),
    dict(heads=2, out_channels=3, norm='batch_norm'),
    dict(heads=2, edge_dim=3, out_channels=3),
    dict(heads=2, v2=True, edge_dim=3, share_weights=True),
    dict(heads=2, residual=True, concat=True, act='elu', act_first=True),
]
IDS = ['-'.join(f'{k}={v}' for k, v in s.items()) or 'defaults' for s in SETTINGS]


def _graph(num_nodes=40, num_edges=160, features=12, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return (torch.randn(num_nodes, features, generator=gen),
            torch.randint(0, num_nodes, (2, num_edges), generator=gen),
            torch.randn(num_edges, 3, generator=gen))


def _pair(settings, in_channels=12, hidden=16, layers=3, seed=0):
    torch.manual_seed(seed)
    theirs = PyGGAT(in_channels, hidden, layers, **settings)
    ours = GAT(in_channels, hidden, layers, **settings)
    ours.load_state_dict(theirs.state_dict())
    return ours, theirs


def _call(model, x, edge_index, edge_attr, settings, **kwargs):
    if 'edge_dim' in settings:
        kwargs['edge_attr'] = edge_attr
    return model(x, edge_index, **kwargs)


def test_the_signature_is_pygs():
    assert issubclass(GAT, PyGGAT)
    assert inspect.signature(GAT) == inspect.signature(PyGGAT)
    assert GAT.supports_edge_attr and not GAT.supports_edge_weight


@pytest.mark.parametrize('settings', SETTINGS, ids=IDS)
def test_the_same_model_on_our_layers(settings):
    ours, theirs = _pair(settings)
    conv = gat_pyg.GATv2Conv if settings.get('v2') else gat_pyg.GATConv
    assert all(type(c) is conv for c in ours.convs)
    assert [repr(c) for c in ours.convs] == [repr(c) for c in theirs.convs]
    assert repr(ours) == repr(theirs)
    # state_dicts load both ways, strictly: the same names and shapes
    assert {k: v.shape for k, v in ours.state_dict().items()} == \
        {k: v.shape for k, v in theirs.state_dict().items()}
    theirs.load_state_dict(ours.state_dict())


@pytest.mark.parametrize('settings', SETTINGS, ids=IDS)
def test_outputs_and_gradients_equal_pygs(settings):
    ours, theirs = _pair(settings)
    x, edge_index, edge_attr = _graph()
    ours.eval(), theirs.eval()
    with torch.no_grad():
        torch.testing.assert_close(_call(ours, x, edge_index, edge_attr, settings),
                                   _call(theirs, x, edge_index, edge_attr, settings),
                                   atol=1e-6, rtol=1e-5)
    # training mode without dropout: the same outputs, and the same gradients
    ours.train(), theirs.train()
    for model in (ours, theirs):
        _call(model, x, edge_index, edge_attr, settings).square().sum().backward()
    # Parameters are registered in another order: compared by name. (Gradients are sums over
    # 160 edges of terms up to ~50; a bias ahead of a batch norm has a gradient of exactly zero
    # in exact arithmetic, rounding noise of a few 1e-6 in float32 on either side.)
    theirs_by_name = dict(theirs.named_parameters())
    for name, a in ours.named_parameters():
        torch.testing.assert_close(a.grad, theirs_by_name[name].grad, atol=5e-5, rtol=1e-4,
                                   msg=name)


def test_dropout_reaches_our_layers_attention():
    model = GAT(12, 16, 2, dropout=0.3, heads=2)
    assert model.dropout.p == 0.3 and all(c.dropout == 0.3 for c in model.convs)
    assert isinstance(model.convs[0], gat_pyg.GATConv)


def test_message_dropout_and_fast_path_are_our_layers_extras():
    model = GAT(12, 16, 2, heads=2, message_dropout=0.5, fast_path=False)
    assert all(c.message_dropout == 0.5 and c.fast_path is False for c in model.convs)
    with pytest.raises(TypeError):                 # PyG's layer has neither
        PyGGAT(12, 16, 2, heads=2, message_dropout=0.5)


def test_hidden_width_must_divide_into_heads_as_in_pyg():
    with pytest.raises(ValueError, match="output channels of 'GATConv' \\(got '16'\\) is "
                                         "divisible by the number of heads \\(got '3'\\)"):
        GAT(12, 16, 2, heads=3)
    with pytest.raises(ValueError, match='divisible by the number of heads'):
        PyGGAT(12, 16, 2, heads=3)
    averaged = GAT(12, 15, 2, heads=3, out_channels=4).convs[-1]       # 4 is not divisible:
    assert (averaged.heads, averaged.concat, averaged.out_channels) == (3, False, 4)  # averaged


def test_a_lazy_model_initialises_like_pygs():
    ours, theirs = GAT(-1, 16, 2, heads=2), PyGGAT(-1, 16, 2, heads=2)
    x, edge_index, _ = _graph()
    with torch.no_grad():
        ours(x, edge_index), theirs(x, edge_index)
    ours.load_state_dict(theirs.state_dict())
    ours.eval(), theirs.eval()
    with torch.no_grad():
        torch.testing.assert_close(ours(x, edge_index), theirs(x, edge_index), atol=1e-6,
                                   rtol=1e-5)


def _sampler_available():
    return torch_geometric.typing.WITH_PYG_LIB or torch_geometric.typing.WITH_TORCH_SPARSE


needs_sampler = pytest.mark.skipif(not _sampler_available(),
                                   reason='NeighborLoader needs pyg-lib or torch_sparse')


def _data(num_nodes=200, num_edges=1200):
    x, edge_index, _ = _graph(num_nodes, num_edges, seed=1)
    return Data(x=x, edge_index=edge_index, num_nodes=num_nodes)


def _hop_ordered_subgraph(edge_index, seeds, hops):
    """The full ``hops``-hop in-neighbourhood of ``seeds`` laid out as PyG's ``NeighborLoader``
    lays out a mini-batch (the layout ``trim_to_layer`` reads): nodes hop by hop, the seeds
    first; edges grouped by the hop of their target. Returns ``(n_id, local edge_index,
    num_sampled_nodes, num_sampled_edges)``. (Built by hand: without pyg-lib, PyG's sampler
    does not report the per-hop counts.)"""
    src, dst = edge_index
    layers, seen = [seeds], set(seeds.tolist())
    for _ in range(hops):
        into = torch.isin(dst, layers[-1])
        new = [n for n in dict.fromkeys(src[into].tolist()) if n not in seen]
        seen.update(new)
        layers.append(torch.tensor(new, dtype=torch.long))
    n_id = torch.cat(layers)
    local = torch.full((int(edge_index.max()) + 1, ), -1, dtype=torch.long)
    local[n_id] = torch.arange(n_id.numel())
    groups = []
    for k in range(hops):          # edges into hop k from hops 0..k+1: sampled at hop k+1
        keep = torch.isin(dst, layers[k]) & torch.isin(src, n_id[:sum(map(len, layers[:k + 2]))])
        groups.append(torch.stack([local[src[keep]], local[dst[keep]]]))
    return (n_id, torch.cat(groups, 1), [len(layer) for layer in layers],
            [g.size(1) for g in groups])


@pytest.mark.parametrize('v2', [False, True], ids=['gat', 'gatv2'])
def test_a_mini_batch_with_trim_to_layer(v2):
    """PyG's trim_to_layer: each layer runs only on the nodes and edges the later layers still
    need. On a batch holding the seeds' full 3-hop neighbourhood, the seeds' outputs equal the
    whole-graph forward's, the untrimmed forward's and PyG's model's."""
    settings = dict(v2=v2, heads=2, out_channels=4)
    ours, theirs = _pair(settings, layers=3)
    ours.eval(), theirs.eval()
    x, edge_index, _ = _graph(200, 700, seed=1)
    seeds = torch.arange(0, 200, 25)
    n_id, batch_edges, nodes_per_hop, edges_per_hop = _hop_ordered_subgraph(edge_index, seeds, 3)
    assert nodes_per_hop[0] == len(seeds) and all(n > 0 for n in nodes_per_hop)
    hops = dict(num_sampled_nodes_per_hop=nodes_per_hop, num_sampled_edges_per_hop=edges_per_hop)
    with torch.no_grad():
        whole = ours(x, edge_index)[seeds]
        trimmed = ours(x[n_id], batch_edges, **hops)[:len(seeds)]
        untrimmed = ours(x[n_id], batch_edges)[:len(seeds)]
        pyg = theirs(x[n_id], batch_edges, **hops)[:len(seeds)]
    assert trimmed.shape == (len(seeds), 4)
    torch.testing.assert_close(trimmed, whole, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(trimmed, untrimmed, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(trimmed, pyg, atol=1e-6, rtol=1e-5)


@needs_sampler
@pytest.mark.filterwarnings("ignore:Using 'NeighborSampler' without")
def test_layer_wise_inference_over_a_loader():
    from torch_geometric.loader import NeighborLoader

    data = _data()
    ours, theirs = _pair(dict(heads=2, out_channels=4), layers=2)
    ours.eval(), theirs.eval()
    loader = NeighborLoader(data, num_neighbors=[-1], batch_size=32)
    with torch.no_grad():
        full = ours(data.x, data.edge_index)
    layer_wise = ours.inference(loader)
    torch.testing.assert_close(layer_wise, full, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(layer_wise, theirs.inference(loader), atol=1e-6, rtol=1e-5)

"""The masked layers, sparse (MaskedGATConv, MaskedGATv2Conv) and batched (DenseMaskedGATConv,
DenseMaskedGATv2Conv): equal to GATConv / GATv2Conv on the adjacency, to each other graph by graph,
to PyG's DenseGATConv, and finite on empty rows."""
import copy
import pickle
import re

import numpy as np
import pytest
import torch
import torch_geometric
from torch_geometric.utils import coalesce, remove_self_loops, to_dense_adj, to_dense_batch

from gat_pyg import (DenseMaskedGATConv, DenseMaskedGATv2Conv, GATConv, GATv2Conv, MaskedGATConv,
                     MaskedGATv2Conv, edge_index_to_mask, masked_softmax)

VARIANT = {'gat': GATConv, 'gatv2': GATv2Conv}
SPARSE = {'gat': MaskedGATConv, 'gatv2': MaskedGATv2Conv}
DENSE = {'gat': DenseMaskedGATConv, 'gatv2': DenseMaskedGATv2Conv}
PATHS = {'sparse': SPARSE, 'dense': DENSE}


def random_graph(num_nodes: int, num_edges: int, seed: int):
    """Coalesced edge_index without self-loops, and its mask with the diagonal added."""
    gen = torch.Generator().manual_seed(seed)
    edge_index = torch.randint(0, num_nodes, (2, num_edges), generator=gen)
    edge_index = coalesce(remove_self_loops(edge_index)[0], num_nodes=num_nodes)
    mask = edge_index_to_mask(edge_index, num_nodes)
    mask.fill_diagonal_(True)
    return edge_index, mask


def randomize_bias(module: torch.nn.Module, seed: int = 0):
    """Biases start at zero; a non-zero one makes 'plus the bias' checks meaningful."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if name.endswith('bias'):
                p.copy_(torch.randn(p.shape, generator=gen))


def dense_attention(edge_index, alpha, num_nodes):
    """[N_dst, N_src, H] from per-edge weights."""
    return to_dense_adj(edge_index.flip(0), edge_attr=alpha, max_num_nodes=num_nodes)[0]


# --- sparse path ------------------------------------------------------------------------------

MASK_FORMS = {
    'bool': lambda mask, ei: mask,
    'float01': lambda mask, ei: mask.float(),
    'sparse_coo': lambda mask, ei: mask.float().to_sparse(),
    'sparse_csr': lambda mask, ei: mask.to_sparse_csr(),
    'edge_index': lambda mask, ei: ei,
}


@pytest.mark.parametrize('score', ['gat', 'gatv2'])
@pytest.mark.parametrize('concat', [True, False])
@pytest.mark.parametrize('form', list(MASK_FORMS))
def test_sparse_equals_variant_when_mask_is_the_adjacency(score, concat, form):
    edge_index, mask = random_graph(9, 30, seed=1)
    x = torch.randn(9, 5)
    ref = VARIANT[score](5, 3, heads=2, concat=concat)   # adds the self-loops itself
    randomize_bias(ref)
    layer = SPARSE[score](5, 3, heads=2, concat=concat)
    layer.load_state_dict(ref.state_dict())      # the variant's parameter names, strictly
    looped = mask.nonzero().flip(1).t()                   # the mask's edges, loops included
    given = MASK_FORMS[form](mask, looped)

    out, (ei, alpha) = layer(x, given, return_attention_weights=True)
    ref_out, (ref_ei, ref_alpha) = ref(x, edge_index, return_attention_weights=True)
    torch.testing.assert_close(out, ref_out, atol=1e-6, rtol=0)
    torch.testing.assert_close(dense_attention(ei, alpha, 9),
                               dense_attention(ref_ei, ref_alpha, 9), atol=1e-6, rtol=0)


def test_sparse_attention_is_a_distribution_over_allowed_sources_only():
    _, mask = random_graph(8, 20, seed=2)
    mask[5] = False                                        # node 5 attends to nothing
    layer = MaskedGATv2Conv(4, 2, heads=3)
    x = torch.randn(8, 4)
    _, (ei, alpha) = layer(x, mask, return_attention_weights=True)
    weights = dense_attention(ei, alpha, 8)                # [N, N, H]
    assert torch.equal(edge_index_to_mask(ei, 8), mask)
    assert (weights[~mask] == 0).all()
    sums = weights.sum(dim=1)                              # over sources
    torch.testing.assert_close(sums[mask.any(dim=1)], torch.ones(7, 3))
    assert (sums[5] == 0).all()


def test_sparse_mask_conversion_is_cached_and_follows_in_place_edits():
    _, mask = random_graph(6, 12, seed=3)
    layer = MaskedGATConv(4, 2)
    x = torch.randn(6, 4)
    first = layer.mask_graph(mask, 6)
    assert layer.mask_graph(mask, 6) is first              # same contents: the cache hits
    assert layer.mask_graph(mask.clone(), 6) is first
    for edit in (lambda m: m.__setitem__(0, ~m[0]),        # in place
                 lambda m: m.numpy().__setitem__((1, 2), ~m.numpy()[1, 2]),   # no version bump
                 lambda m: m.data[3].fill_(True),
                 lambda m: m[4:5].fill_(False)):           # through a view
        edit(mask)
        torch.testing.assert_close(layer(x, mask), layer(x, mask.clone()), atol=0, rtol=0)
        assert torch.equal(edge_index_to_mask(layer.mask_graph(mask, 6).edge_index, 6), mask)
        fresh = MaskedGATConv(4, 2)
        fresh.load_state_dict(layer.state_dict())
        torch.testing.assert_close(layer(x, mask), fresh(x, mask), atol=0, rtol=0)


# --- dense path -------------------------------------------------------------------------------

def batch_masks(num_graphs: int, num_nodes: int, seed: int):
    gen = torch.Generator().manual_seed(seed)
    mask = torch.rand(num_graphs, num_nodes, num_nodes, generator=gen) < 0.35
    mask[0, 2] = False                                      # a row with no allowed pair
    mask[1, :, 1] = False                                   # a node nobody attends to
    return mask


@pytest.mark.parametrize('score', ['gat', 'gatv2'])
@pytest.mark.parametrize('concat', [True, False])
def test_dense_equals_sparse_graph_by_graph(score, concat):
    torch.manual_seed(4)
    sizes = [7, 5, 3]
    x = torch.randn(3, 7, 5)
    mask = batch_masks(3, 7, seed=4)
    node_mask = torch.arange(7).unsqueeze(0) < torch.tensor(sizes).unsqueeze(1)
    kwargs = dict(heads=2, concat=concat, beta=0.5, learn_beta=True, act='sigmoid')
    sparse = SPARSE[score](5, 3, **kwargs)
    randomize_bias(sparse)
    with torch.no_grad():
        sparse.beta.fill_(0.8)
    dense = DENSE[score](5, 3, **kwargs)
    dense.load_state_dict(sparse.state_dict())
    assert sparse.res.weight.shape == (6 if concat else 3, 5)      # widths differ: projection

    out = dense(x, mask, node_mask)
    for b, n in enumerate(sizes):
        expected = sparse(x[b, :n], mask[b, :n, :n])
        torch.testing.assert_close(out[b, :n], expected, atol=1e-6, rtol=0)
        assert (out[b, n:] == 0).all()                      # padding rows, despite sigmoid(0)

    # a shared [N, N] mask is the [B, N, N] one broadcast
    shared = dense(x, mask[0])
    torch.testing.assert_close(shared, dense(x, mask[0].expand(3, 7, 7)), atol=0, rtol=0)
    torch.testing.assert_close(shared[1], sparse(x[1], mask[0]), atol=1e-6, rtol=0)


def test_dense_padding_nodes_neither_attend_nor_are_attended():
    torch.manual_seed(5)
    x = torch.randn(2, 6, 4)
    mask = torch.ones(6, 6, dtype=torch.bool)
    node_mask = torch.tensor([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]], dtype=torch.bool)
    layer = DenseMaskedGATv2Conv(4, 3, heads=2)
    out, alpha = layer(x, mask, node_mask, return_attention_weights=True)
    changed = x.clone()
    changed[0, 4:] = 100.0                                  # padding features must not leak
    torch.testing.assert_close(layer(changed, mask, node_mask), out, atol=0, rtol=0)
    assert (alpha[0, :, 4:] == 0).all() and (alpha[0, 4:] == 0).all()
    torch.testing.assert_close(alpha[0, :4].sum(dim=1), torch.ones(4, 2))


@pytest.mark.parametrize('concat', [True, False])
@pytest.mark.parametrize('shared_adj', [False, True])
def test_dense_equals_pyg_dense_gat_conv(concat, shared_adj):
    torch.manual_seed(6)
    ref = torch_geometric.nn.DenseGATConv(5, 4, heads=3, concat=concat)
    randomize_bias(ref)
    layer = DenseMaskedGATConv(5, 4, heads=3, concat=concat)
    with torch.no_grad():
        layer.lin.weight.copy_(ref.lin.weight)
        layer.att_src.copy_(ref.att_src.view(1, 3, 4))
        layer.att_dst.copy_(ref.att_dst.view(1, 3, 4))
        layer.bias.copy_(ref.bias)
    if shared_adj:
        x = torch.randn(2, 8, 5)
        _, adj = random_graph(8, 20, seed=6)
        adj = adj.float()
        adj.fill_diagonal_(0.0)
        node_mask = None
    else:
        # A PyG mini-batch padded to dense form: graphs of 8, 5 and 2 nodes.
        batch = torch.tensor([0] * 8 + [1] * 5 + [2] * 2)
        edge_index = torch.cat([random_graph(8, 20, 7)[0], random_graph(5, 8, 8)[0] + 8,
                                torch.tensor([[13], [14]])], dim=1)
        x, node_mask = to_dense_batch(torch.randn(15, 5), batch)
        adj = to_dense_adj(edge_index, batch)               # adj[b, j, i]: edge j -> i
    expected = ref(x, adj, node_mask, add_loop=True)
    # DenseGATConv reads adj[b, i, j] as "i attends to j" too; it adds the loops itself.
    mask = adj.bool() | torch.eye(adj.size(-1), dtype=torch.bool)
    torch.testing.assert_close(layer(x, mask, node_mask), expected, atol=1e-6, rtol=0)


def test_dense_matches_a_numpy_implementation_of_the_formula():
    torch.manual_seed(7)
    layer = DenseMaskedGATConv(3, 2, heads=2, beta=0.3, act='relu').double()
    randomize_bias(layer)
    x = torch.randn(1, 4, 3, dtype=torch.float64)
    mask = torch.tensor([[1, 1, 0, 0],
                         [0, 1, 1, 1],
                         [0, 0, 0, 0],              # empty row: bias + residual only
                         [1, 0, 0, 1]], dtype=torch.bool)
    out = layer(x, mask)[0].detach().numpy()

    X = x[0].numpy()
    W = layer.lin.weight.detach().numpy()
    a_s = layer.att_src.detach().numpy()[0]   # [H, C]
    a_t = layer.att_dst.detach().numpy()[0]
    R = layer.res.weight.detach().numpy()
    b = layer.bias.detach().numpy()
    M = mask.numpy()
    h = (X @ W.T).reshape(4, 2, 2)                  # [N, H, C]
    expected = np.zeros((4, 4))
    for i in range(4):
        for k in range(2):
            allowed = np.flatnonzero(M[i])
            e = np.array([(h[j, k] @ a_s[k]) + (h[i, k] @ a_t[k]) for j in allowed])
            e = np.where(e > 0, e, 0.2 * e)
            w = np.exp(e - e.max()) / np.exp(e - e.max()).sum() if len(allowed) else e
            expected[i, 2 * k:2 * k + 2] = (w[:, None] * h[allowed, k]).sum(0)
    expected = np.maximum(expected + b + 0.3 * X @ R.T, 0.0)
    np.testing.assert_allclose(out, expected, atol=1e-12)


# --- rows with no allowed pair: zeros (+ bias, residual), finite gradients ----------------------

def test_masked_softmax_zero_mass_outside_the_mask_and_finite_gradients():
    scores = torch.tensor([[0.3, 5e4, -1.0],
                           [2.0, 1.0, 7e4],
                           [9e4, -9e4, 1.0]], dtype=torch.float64, requires_grad=True)
    mask = torch.tensor([[1, 0, 1], [0, 0, 0], [0, 0, 1]], dtype=torch.bool)
    alpha = masked_softmax(scores, mask, dim=1)
    expected = torch.softmax(scores.detach()[0, [0, 2]], dim=0)
    assert alpha[0, 1] == 0 and torch.allclose(alpha[0, [0, 2]], expected)
    assert (alpha[1] == 0).all() and alpha[2].tolist() == [0.0, 0.0, 1.0]
    # a 0/1 product before the softmax would have given the masked pair exp(0) of mass
    assert torch.softmax(scores.detach()[0] * mask[0], dim=0)[1] > 0
    assert torch.autograd.gradcheck(lambda s: masked_softmax(s, mask, dim=1), (scores, ))
    (alpha * torch.randn(3, 3, dtype=torch.float64)).sum().backward()
    assert torch.isfinite(scores.grad).all() and (scores.grad[~mask] == 0).all()


@pytest.mark.parametrize('fast_path', [None, False])
def test_sparse_node_without_incoming_edge_gets_bias_plus_residual(fast_path):
    layer = MaskedGATConv(4, 4, heads=1, beta=0.25, fast_path=fast_path)
    randomize_bias(layer)
    x = torch.randn(5, 4)
    edge_index = torch.tensor([[0, 1, 2, 3, 4, 0], [0, 1, 2, 3, 4, 1]])
    edge_index = edge_index[:, edge_index[1] != 3]          # node 3: no incoming edge at all
    out = layer(x, edge_index)
    torch.testing.assert_close(out[3], layer.bias + 0.25 * x[3], atol=1e-7, rtol=0)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize('score', ['gat', 'gatv2'])
@pytest.mark.parametrize('path', list(PATHS))
def test_empty_rows_give_finite_values_and_gradients(path, score):
    torch.manual_seed(8)
    layer = PATHS[path][score](3, 2, heads=2, beta=0.5, learn_beta=True).double()
    randomize_bias(layer)
    mask = torch.tensor([[1, 1, 0, 0],
                         [0, 0, 0, 0],                      # node 1 attends to nothing
                         [1, 0, 1, 1],
                         [0, 1, 0, 1]], dtype=torch.bool)
    x = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    if path == 'sparse':
        def run(x_):
            return layer(x_, mask)
    else:
        def run(x_):
            return layer(x_.unsqueeze(0), mask)[0]
    out = run(x)
    empty_row = layer.bias + 0.5 * layer.res(x[1])
    torch.testing.assert_close(out[1], empty_row, atol=1e-12, rtol=0)
    assert torch.autograd.gradcheck(run, (x, ))
    out.pow(2).sum().backward()
    for name, p in layer.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    attention = layer.att_src if score == 'gat' else layer.att
    assert attention.grad.abs().sum() > 0


# --- residual, activation, dropout ------------------------------------------------------------

@pytest.mark.parametrize('layer_cls', [MaskedGATConv, DenseMaskedGATConv])
def test_residual_and_activation(layer_cls):
    torch.manual_seed(9)
    _, mask = random_graph(6, 15, seed=9)
    x = torch.randn(6, 8)

    def run(layer, x_):
        return layer(x_, mask) if layer_cls is MaskedGATConv else layer(x_[None], mask)[0]

    plain = layer_cls(8, 4, heads=2)
    # equal widths (2 heads x 4 = 8): the skip is the identity, scaled by a fixed beta
    fixed = layer_cls(8, 4, heads=2, beta=0.7, act='relu')
    fixed.load_state_dict(plain.state_dict(), strict=False)   # all but beta
    assert fixed.res is None and 'beta' not in dict(fixed.named_parameters())
    assert fixed.state_dict()['beta'] == pytest.approx(0.7)
    torch.testing.assert_close(run(fixed, x), torch.relu(run(plain, x) + 0.7 * x),
                               atol=1e-6, rtol=0)
    # different widths: a learnt projection; a learnable beta gets a gradient
    learnt = layer_cls(8, 3, heads=2, beta=0.2, learn_beta=True)
    plain3 = layer_cls(8, 3, heads=2)
    learnt.load_state_dict(plain3.state_dict(), strict=False)   # all but beta and res
    assert learnt.res.weight.shape == (6, 8)
    torch.testing.assert_close(run(learnt, x) - run(plain3, x),
                               0.2 * x @ learnt.res.weight.t(), atol=1e-6, rtol=0)
    run(learnt, x).sum().backward()
    assert learnt.beta.grad is not None and learnt.beta.grad != 0
    learnt.reset_parameters()
    assert learnt.beta.item() == pytest.approx(0.2)


def test_attention_dropout_in_both_paths():
    torch.manual_seed(10)
    _, mask = random_graph(7, 20, seed=10)
    x = torch.randn(7, 4)
    dense = DenseMaskedGATConv(4, 2, heads=2, dropout=0.5)
    sparse = MaskedGATConv(4, 2, heads=2, dropout=0.5)
    sparse.load_state_dict(dense.state_dict())
    dense.eval()
    _, clean = dense(x[None], mask, return_attention_weights=True)
    dense.train()
    _, dropped = dense(x[None], mask, return_attention_weights=True)
    kept = dropped != 0
    assert 0 < kept[0][mask].float().mean() < 1
    torch.testing.assert_close(dropped[kept], 2 * clean[kept])
    sparse.train()
    _, (ei, alpha) = sparse(x, mask, return_attention_weights=True)
    train_weights = dense_attention(ei, alpha, 7)
    assert ((train_weights == 0) | torch.isclose(train_weights, 2 * clean[0])).all()
    assert (train_weights[mask] == 0).any()


@pytest.mark.parametrize('score', ['gat', 'gatv2'])
def test_message_dropout_means_the_same_in_both_paths(score):
    """Issue: DenseMaskedGATConv ignored message_dropout. Both paths drop the projected values
    with the same function after the scores are taken, so one seed gives one output."""
    _, mask = random_graph(7, 20, seed=11)
    x = torch.randn(7, 4)
    dense = DENSE[score](4, 3, heads=2, message_dropout=0.9)
    # PyG's route on the sparse side (the same dropout_features call); the kernels draw the same
    # mask inside the aggregation (tested in tests/nn/test_attention.py for every AttentionConv).
    sparse = SPARSE[score](4, 3, heads=2, message_dropout=0.9, fast_path=False)
    sparse.load_state_dict(dense.state_dict())
    torch.manual_seed(12)
    first = dense(x[None], mask)[0]
    second = dense(x[None], mask)[0]
    assert not torch.allclose(first, second)                # dropped values differ per call
    torch.manual_seed(12)
    torch.testing.assert_close(sparse(x, mask), first, atol=1e-6, rtol=0)
    dense.eval()
    sparse.eval()
    torch.testing.assert_close(dense(x[None], mask)[0], sparse(x, mask), atol=1e-6, rtol=0)
    assert not torch.allclose(dense(x[None], mask)[0], first)


@pytest.mark.parametrize('path', list(PATHS))
@pytest.mark.parametrize('score', ['gat', 'gatv2'])
def test_masked_layers_are_attention_message_passing_layers(path, score):
    from torch_geometric.nn.conv import MessagePassing
    from gat_pyg import AttentionConv
    layer_cls = PATHS[path][score]
    layer = layer_cls(4, 2, heads=2, beta=0.5)
    assert isinstance(layer, (MessagePassing, AttentionConv, layer_cls, VARIANT[score]))
    assert isinstance(layer, MessagePassing) and isinstance(layer, VARIANT[score])
    assert [m for m in layer.modules() if isinstance(m, MessagePassing)] == [layer]
    # Copies and pickles rebuild the same class.
    for clone in (copy.deepcopy(layer), pickle.loads(pickle.dumps(layer))):
        assert type(clone) is type(layer)
        assert repr(clone) == repr(layer)
        for (name, a), b in zip(layer.state_dict().items(), clone.state_dict().values()):
            assert torch.equal(a, b), name


@pytest.mark.parametrize('score', ['gat', 'gatv2'])
def test_checkpoints_with_the_held_conv_names_still_load(score):
    """Before the masked layers were MessagePassing subclasses they held their variant as
    ``conv``: a state_dict of that time has ``conv.lin.weight`` etc."""
    torch.manual_seed(13)
    layer = SPARSE[score](4, 3, heads=2, beta=0.5, learn_beta=True)
    randomize_bias(layer)
    old = {(k if k in ('res.weight', 'beta') else f'conv.{k}'): v.clone()
           for k, v in layer.state_dict().items()}
    assert 'conv.bias' in old and 'res.weight' in old
    for cls in (SPARSE[score], DENSE[score]):
        other = cls(4, 3, heads=2, beta=0.1, learn_beta=True)
        other.load_state_dict(old, strict=True)
        for key, value in layer.state_dict().items():
            assert torch.equal(other.state_dict()[key], value), key
    # Inside a bigger model, under a prefix, too.
    wrapper = torch.nn.Sequential(SPARSE[score](4, 3, heads=2, beta=0.1, learn_beta=True))
    wrapper.load_state_dict({f'0.{k}': v for k, v in old.items()}, strict=True)
    x, mask = torch.randn(5, 4), torch.rand(5, 5) > 0.4
    torch.testing.assert_close(wrapper[0](x, mask), layer(x, mask), atol=0, rtol=0)


# --- errors -----------------------------------------------------------------------------------

def test_constructor_errors():
    with pytest.raises(TypeError, match="score: MaskedGATConv computes GAT's score; "
                                        "MaskedGATv2Conv computes the other one"):
        MaskedGATConv(4, 2, score='gatv2')
    with pytest.raises(ValueError, match='add_self_loops: not an argument of MaskedGATConv'):
        MaskedGATConv(4, 2, add_self_loops=True)
    with pytest.raises(ValueError, match='learn_beta: a learnable residual weight needs'):
        DenseMaskedGATConv(4, 2, learn_beta=True)
    with pytest.raises(ValueError, match='beta: expected None or a finite real number'):
        DenseMaskedGATConv(4, 2, beta=float('inf'))
    with pytest.raises(ValueError, match='in_channels: a mask is square'):
        MaskedGATConv((4, 3), 2)
    with pytest.raises(ValueError, match='in_channels: the residual'):
        MaskedGATConv(-1, 2, beta=1.0)
    assert repr(DenseMaskedGATv2Conv(4, 2, heads=3)) == 'DenseMaskedGATv2Conv(4, 2, heads=3)'
    # the variant's own arguments pass through
    assert MaskedGATv2Conv(4, 2, share_weights=True).lin_r is not None


def test_sparse_forward_errors():
    layer = MaskedGATConv(4, 2)
    x = torch.randn(5, 4)
    with pytest.raises(ValueError, match=r'x: MaskedGATConv takes .* use DenseMaskedGATConv'):
        layer(torch.randn(2, 5, 4), torch.ones(5, 5, dtype=torch.bool))
    with pytest.raises(ValueError, match=r'mask: expected a \[N, N\] = \[5, 5\] mask for x '
                                         r'with 5 nodes'):
        layer(x, torch.ones(4, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match='mask: MaskedGATConv takes one graph.*'
                                         'DenseMaskedGATConv'):
        layer(x, torch.ones(2, 5, 5, dtype=torch.bool))
    with pytest.raises(ValueError, match='mask: a non-boolean mask must hold only 0 and 1'):
        layer(x, torch.full((5, 5), 0.3))
    with pytest.raises(ValueError, match='edge_index: source index 7 is out of range'):
        layer(x, torch.tensor([[7], [0]]))
    with pytest.raises(ValueError, match=r'mask: an integer \[2, 2\] tensor with 2 nodes'):
        layer(torch.randn(2, 4), torch.tensor([[0, 1], [1, 0]]))
    with pytest.raises(TypeError, match='mask: expected'):
        layer(x, [[1]])
    with pytest.raises(TypeError, match=r'x: MaskedGATConv takes node features \[N, F\]'):
        layer((x, x), torch.ones(5, 5, dtype=torch.bool))
    with pytest.raises(ValueError, match=r'x: expected node features of shape'):
        layer(torch.randn(5), torch.ones(5, 5, dtype=torch.bool))
    # an integer 0/1 mask is fine when it cannot be an edge_index
    torch.testing.assert_close(layer(x, torch.ones(5, 5, dtype=torch.int64)),
                               layer(x, torch.ones(5, 5, dtype=torch.bool)))


def test_dense_forward_errors():
    layer = DenseMaskedGATConv(4, 2)
    x = torch.randn(3, 5, 4)
    mask = torch.ones(5, 5, dtype=torch.bool)
    with pytest.raises(ValueError, match=r'x: DenseMaskedGATConv takes a batch .* use '
                                         r'MaskedGATConv'):
        layer(torch.randn(5, 4), mask)
    with pytest.raises(ValueError, match=r'x: the layer was built for 4 input features'):
        layer(torch.randn(3, 5, 6), mask)
    with pytest.raises(ValueError, match=r'mask: expected \[N, N\] = \[5, 5\] \(shared\) or '
                                         r'\[B, N, N\] = \[3, 5, 5\]'):
        layer(x, torch.ones(4, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match=r'mask: expected .* got shape \[2, 5, 5\]'):
        layer(x, torch.ones(2, 5, 5, dtype=torch.bool))
    with pytest.raises(ValueError, match='mask: a non-boolean mask must hold only 0 and 1, '
                                         'found 2'):
        layer(x, torch.full((5, 5), 2))
    with pytest.raises(ValueError, match=r'node_mask: expected \[B, N\] = \[3, 5\]'):
        layer(x, mask, torch.ones(3, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match='node_mask: a non-boolean mask'):
        layer(x, mask, torch.full((3, 5), 0.5))
    # 0/1 float masks, and a torch.sparse one, are accepted and equal to the boolean one
    expected = layer(x, mask.tril())
    torch.testing.assert_close(layer(x, mask.tril().float()), expected, atol=0, rtol=0)
    torch.testing.assert_close(layer(x, mask.tril().float().to_sparse()), expected,
                               atol=0, rtol=0)


# --- the README example -----------------------------------------------------------------------

def test_readme_masked_attention_example_runs(readme_section):
    section = readme_section('Masked attention')
    blocks = re.findall(r'```python\n(.*?)```', section, flags=re.S)
    assert len(blocks) == 1
    namespace = {}
    exec(compile(blocks[0], 'README.md#masked-attention', 'exec'), namespace)
    out = namespace['out']
    assert torch.isfinite(out).all() and out.shape == (namespace['B'], namespace['N'], 16)


def test_return_attention_weights_false_returns_the_output_alone():
    torch.manual_seed(0)
    conv = MaskedGATConv(4, 3, heads=2)
    x, mask = torch.randn(5, 4), torch.rand(5, 5) > 0.5
    out = conv(x, mask, return_attention_weights=False)
    assert isinstance(out, torch.Tensor)
    torch.testing.assert_close(out, conv(x, mask))

"""gat_pyg's GATConv / GATv2Conv against torch_geometric's, with the same weights (float32).

Outputs and attention weights agree to 1e-6, parameter and input gradients to atol 1e-6 /
rtol 1e-5, over the constructor flags, ``fill_value`` variants, bipartite inputs and PyG's
adjacency forms, on the plain (``propagate``) path and on the fused path; weights are copied
PyG -> ours and ours -> PyG (``load_state_dict(strict=True)`` both ways).
"""
import io

import pytest
import torch
from torch_geometric import EdgeIndex
from torch_geometric.utils import is_torch_sparse_tensor, to_edge_index

from reference import (FAST, GRAD_TOL, KINDS, OUT_TOL, OURS, THEIRS, as_input_form,
                       assert_same_grads, clone_inputs, features, layer_pair, loss_of,
                       random_graph, randomize_parameters, require_torch_sparse, split_returned)

SOURCE = pytest.mark.parametrize('source', ['theirs', 'ours'])


def compare(ours, theirs, x, edge_index, edge_attr=None, size=None):
    """Runs both layers with ``return_attention_weights=True`` and compares everything: the
    output, the returned adjacency and attention, and the gradients of parameters and inputs
    (of a loss that reads both the output and the attention)."""
    is_pair = isinstance(x, tuple)
    xs = x if is_pair else (x, )
    results = []
    for layer in (ours, theirs):
        layer.zero_grad()
        inputs = clone_inputs(*xs, edge_attr)
        layer_x = tuple(inputs[:len(xs)]) if is_pair else inputs[0]
        kwargs = {} if size is None else dict(size=size)
        out, returned = layer(layer_x, edge_index, edge_attr=inputs[-1],
                              return_attention_weights=True, **kwargs)
        adj, alpha = split_returned(returned)
        (loss_of(out) + loss_of(alpha, seed=2)).backward()
        results.append((out, adj, alpha, inputs))

    (out_o, adj_o, alpha_o, in_o), (out_t, adj_t, alpha_t, in_t) = results
    torch.testing.assert_close(out_o, out_t, **OUT_TOL)
    assert_same_adjacency(adj_o, adj_t)
    torch.testing.assert_close(alpha_o, alpha_t, **OUT_TOL)
    assert_same_grads(ours, theirs)
    for a, b in zip(in_o, in_t):
        if a is not None:
            torch.testing.assert_close(a.grad, b.grad, **GRAD_TOL)
    return out_o, alpha_o


def assert_same_adjacency(a, b):
    assert type(a) is type(b)
    if is_torch_sparse_tensor(a):
        assert a.layout == b.layout and a.shape == b.shape
        assert torch.equal(to_edge_index(a)[0], to_edge_index(b)[0])
    elif isinstance(a, torch.Tensor):
        assert torch.equal(a, b)
    else:  # SparseTensor
        assert a.sparse_sizes() == b.sparse_sizes()
        assert torch.equal(a.storage.row(), b.storage.row())
        assert torch.equal(a.storage.col(), b.storage.col())


FLAG_SETS = [
    dict(heads=1, concat=True, residual=False, add_self_loops=True, bias=True),
    dict(heads=3, concat=True, residual=True, add_self_loops=False, bias=True,
         negative_slope=0.1, edge_dim=4),
    dict(heads=3, concat=False, residual=True, add_self_loops=True, bias=False, edge_dim=4),
    dict(heads=1, concat=False, residual=False, add_self_loops=False, bias=False,
         negative_slope=0.5),
    dict(heads=3, concat=True, residual=True, add_self_loops=True, bias=True,
         negative_slope=0.0),
]


@FAST
@SOURCE
@pytest.mark.parametrize('flags', FLAG_SETS, ids=lambda f: '-'.join(f'{k}={v}'
                                                                     for k, v in f.items()))
@pytest.mark.parametrize('kind', KINDS)
def test_flags(kind, flags, source, fast_path):
    # Self-loops, duplicate edges and an isolated node (5) in one graph.
    edge_index = random_graph(8, 8, 20, seed=3, isolated=[5])
    x = features(8, 6, seed=4)
    edge_attr = features(edge_index.size(1), 4, seed=5) if flags.get('edge_dim') else None
    ours, theirs = layer_pair(kind, 6, 5, source=source, fast_path=fast_path, **flags)
    compare(ours, theirs, x, edge_index, edge_attr)


@FAST
@pytest.mark.parametrize('share_weights', [False, True])
def test_gatv2_share_weights(share_weights, fast_path):
    edge_index = random_graph(7, 7, 16, seed=6)
    x = features(7, 5, seed=7)
    ours, theirs = layer_pair('gatv2', 5, 3, heads=2, share_weights=share_weights,
                              fast_path=fast_path)
    assert (ours.lin_l is ours.lin_r) == share_weights
    compare(ours, theirs, x, edge_index)


FILL_VALUES = ['mean', 'add', 'min', 'max', 'mul', 0.5, torch.tensor([1.0, -2.0, 0.5, 3.0])]


@FAST
@pytest.mark.parametrize('fill_value', FILL_VALUES, ids=lambda v: 'tensor' if isinstance(
    v, torch.Tensor) else str(v))
@pytest.mark.parametrize('kind', KINDS)
def test_fill_value(kind, fill_value, fast_path):
    edge_index = random_graph(8, 8, 20, seed=8, isolated=[2])
    x = features(8, 6, seed=9)
    edge_attr = features(edge_index.size(1), 4, seed=10)
    ours, theirs = layer_pair(kind, 6, 4, heads=2, edge_dim=4, fill_value=fill_value,
                              fast_path=fast_path)
    compare(ours, theirs, x, edge_index, edge_attr)


def test_fill_value_changes_the_output():
    """The fill_value tests above would pass if both libraries ignored it: make sure the
    self-loop features reach the scores."""
    edge_index = random_graph(8, 8, 20, seed=8)
    x, edge_attr = features(8, 6, seed=9), features(edge_index.size(1), 4, seed=10)
    outs = []
    for fill_value in ('mean', 'max', 0.5):
        layer, _ = layer_pair('gat', 6, 4, heads=2, edge_dim=4, fill_value=fill_value)
        outs.append(layer(x, edge_index, edge_attr))
    assert not torch.allclose(outs[0], outs[1], atol=1e-3)
    assert not torch.allclose(outs[0], outs[2], atol=1e-3)


def _form_params():
    for form in ('edge_index', 'csr', 'coo', 'sparse_tensor'):
        for loops in (True, False):
            for edge_dim in (None, 4):
                if form != 'edge_index' and loops and edge_dim:
                    # PyG refuses edge features with self-loops on sparse adjacencies.
                    continue
                yield pytest.param(form, loops, edge_dim,
                                   id=f'{form}-loops={loops}-edge_dim={edge_dim}')


@FAST
@pytest.mark.parametrize('form,add_self_loops,edge_dim', list(_form_params()))
@pytest.mark.parametrize('kind', KINDS)
def test_input_forms(kind, form, add_self_loops, edge_dim, fast_path):
    if form == 'sparse_tensor':
        require_torch_sparse()
    edge_index = random_graph(8, 8, 20, seed=11, duplicates=False, isolated=[6])
    adj = as_input_form(edge_index, form, 8, 8)
    x = features(8, 6, seed=12)
    edge_attr = None if edge_dim is None else features(edge_index.size(1), 4, seed=13)
    ours, theirs = layer_pair(kind, 6, 4, heads=2, add_self_loops=add_self_loops,
                              edge_dim=edge_dim, fast_path=fast_path)
    out, _ = compare(ours, theirs, x, adj, edge_attr)
    if form != 'edge_index' and edge_dim is None:
        # Every form describes the same graph, so the output is the same as from edge_index.
        torch.testing.assert_close(out, ours(x, edge_index), **OUT_TOL)


@pytest.mark.parametrize('kind', KINDS)
def test_csc_adjacency(kind):
    """PyG's layers cannot take a CSC adjacency (its edge_updater and its self-loop utilities
    reject the layout). Ours take one without self-loops, on every route (propagate runs on the
    prepared graph's edge list), and give the numbers of the equivalent CSR input; with
    self-loops they refuse it, naming the layout."""
    edge_index = random_graph(7, 7, 16, seed=33, duplicates=False)
    csc, csr = (as_input_form(edge_index, form, 7, 7) for form in ('csc', 'csr'))
    x = features(7, 5, seed=34)
    for add_self_loops in (True, False):
        ours, theirs = layer_pair(kind, 5, 3, heads=2, add_self_loops=add_self_loops,
                                  fast_path=False)
        with pytest.raises(ValueError, match='layout'):
            theirs(x, csc)
        for fast_path in (False, True):
            ours.fast_path = fast_path
            if add_self_loops:
                with pytest.raises(ValueError, match='layout'):
                    ours(x, csc)
                continue
            out, (adj, alpha) = ours(x, csc, return_attention_weights=True)
            out_t, (adj_t, _) = theirs(x, csr, return_attention_weights=True)
            torch.testing.assert_close(out, out_t, **OUT_TOL)
            assert adj.layout == torch.sparse_csc and adj.shape == (7, 7, 2)
            torch.testing.assert_close(adj.values(), alpha)
            torch.testing.assert_close(adj.to_dense(), adj_t.to_dense(), **OUT_TOL)


@FAST
@SOURCE
@pytest.mark.parametrize('add_self_loops', [True, False])
@pytest.mark.parametrize('form', ['edge_index', 'csr', 'sparse_tensor'])
@pytest.mark.parametrize('x_dst', ['given', 'none', 'none+size'])
def test_gat_bipartite(x_dst, form, add_self_loops, source, fast_path):
    if form == 'sparse_tensor':
        require_torch_sparse()
    num_src, num_dst = 9, 5
    edge_index = random_graph(num_src, num_dst, 16, seed=14, duplicates=False, isolated=[3])
    adj = as_input_form(edge_index, form, num_src, num_dst)
    x_src, x_dst_ = features(num_src, 6, seed=15), features(num_dst, 4, seed=16)
    size = None
    if x_dst == 'given':
        x, in_channels = (x_src, x_dst_), (6, 4)
    else:
        # Without target features the layer scores edges with the source side only.
        x, in_channels = (x_src, None), (6, 4)
        if x_dst == 'none+size':
            size = (num_src, num_dst)
    ours, theirs = layer_pair('gat', in_channels, 3, heads=2, residual=x_dst == 'given',
                              add_self_loops=add_self_loops, source=source,
                              fast_path=fast_path)
    out, _ = compare(ours, theirs, x, adj, size=size)
    if x_dst == 'given' or size is not None:
        assert out.shape == (num_dst, 6)


@FAST
@pytest.mark.parametrize('kind', KINDS)
def test_pair_input_with_shared_projection(kind, fast_path):
    """An int in_channels layer takes (x_src, x_dst) of that width, as in mini-batches."""
    edge_index = random_graph(9, 4, 14, seed=17)
    x = (features(9, 5, seed=18), features(4, 5, seed=19))
    ours, theirs = layer_pair(kind, 5, 3, heads=2, residual=True, fast_path=fast_path)
    out, _ = compare(ours, theirs, x, edge_index)
    assert out.shape == (4, 6)


@FAST
@pytest.mark.parametrize('kind', KINDS)
def test_less_common_inputs(kind, fast_path):
    """A pair in_channels of equal widths given one tensor, PyG's EdgeIndex, and 1-D edge
    features with edge_dim=1."""
    edge_index = random_graph(8, 8, 20, seed=34, duplicates=False)
    x = features(8, 5, seed=35)
    ours, theirs = layer_pair(kind, (5, 5), 3, heads=2, residual=True, fast_path=fast_path)
    compare(ours, theirs, x, edge_index)

    ours, theirs = layer_pair(kind, 5, 3, heads=2, fast_path=fast_path)
    adj = EdgeIndex(edge_index, sparse_size=(8, 8)).sort_by('col')[0]
    compare(ours, theirs, x, adj)

    ours, theirs = layer_pair(kind, 5, 3, heads=2, edge_dim=1, fast_path=fast_path)
    compare(ours, theirs, x, edge_index, features(edge_index.size(1), 1, seed=36).view(-1))


@FAST
@SOURCE
@pytest.mark.parametrize('form', ['edge_index', 'csr'])
def test_gatv2_bipartite(form, source, fast_path):
    num_src, num_dst = 9, 5
    edge_index = random_graph(num_src, num_dst, 16, seed=20, duplicates=False)
    adj = as_input_form(edge_index, form, num_src, num_dst)
    x = (features(num_src, 6, seed=21), features(num_dst, 4, seed=22))
    ours, theirs = layer_pair('gatv2', (6, 4), 3, heads=2, residual=True, source=source,
                              edge_dim=2, fast_path=fast_path)
    edge_attr = features(edge_index.size(1), 2, seed=23) if form == 'edge_index' else None
    out, _ = compare(ours, theirs, x, adj, edge_attr)
    assert out.shape == (num_dst, 6)


@FAST
@pytest.mark.parametrize('kind', KINDS)
def test_message_passing_kwargs(kind, fast_path):
    """``flow`` and ``aggr`` are MessagePassing arguments PyG's layers accept; the automatic
    choice must leave such layers on the plain path, and insisting on the fused one fails."""
    edge_index = random_graph(7, 7, 15, seed=24)
    x = features(7, 5, seed=25)
    for kwargs in (dict(flow='target_to_source'), dict(aggr='mean')):
        ours, theirs = layer_pair(kind, 5, 3, heads=2, fast_path=None, **kwargs)
        compare(ours, theirs, x, edge_index)
        ours.fast_path = fast_path
        if fast_path:
            with pytest.raises(ValueError, match='fast_path'):
                ours(x, edge_index)


@pytest.mark.parametrize('kind', KINDS)
@pytest.mark.parametrize('form', ['edge_index', 'csr', 'coo', 'sparse_tensor'])
def test_return_attention_weights_formats(kind, form):
    """PyG's three return formats, with the attention placed on the right entries."""
    if form == 'sparse_tensor':
        require_torch_sparse()
    edge_index = random_graph(6, 6, 12, seed=26, duplicates=False)
    adj = as_input_form(edge_index, form, 6, 6)
    x = features(6, 4, seed=27)
    for fast_path in (False, True):
        ours, theirs = layer_pair(kind, 4, 2, heads=3, fast_path=fast_path)
        out, returned = ours(x, adj, return_attention_weights=True)
        out_t, returned_t = theirs(x, adj, return_attention_weights=True)
        torch.testing.assert_close(out, out_t, **OUT_TOL)
        if form == 'edge_index':
            (ei, alpha), (ei_t, alpha_t) = returned, returned_t
            assert torch.equal(ei, ei_t)
            assert ei.size(1) == edge_index.size(1) - int(
                (edge_index[0] == edge_index[1]).sum()) + 6
            torch.testing.assert_close(alpha, alpha_t, **OUT_TOL)
        elif form == 'sparse_tensor':
            assert type(returned) is type(returned_t)
            torch.testing.assert_close(returned.to_dense(), returned_t.to_dense(), **OUT_TOL)
            alpha = returned.storage.value()
        else:
            (adj_a, alpha), (adj_t, alpha_t) = returned, returned_t
            assert adj_a.layout == adj.layout == adj_t.layout
            assert adj_a.shape == (6, 6, 3)
            torch.testing.assert_close(adj_a.to_dense(), adj_t.to_dense(), **OUT_TOL)
            torch.testing.assert_close(alpha, alpha_t, **OUT_TOL)
            # The values sit in the returned adjacency's own entry order.
            torch.testing.assert_close(adj_a.values(), alpha)
        assert alpha.shape[-1] == 3
        # return_attention_weights=False behaves like PyG: no attention returned.
        plain = ours(x, adj, return_attention_weights=False)
        assert isinstance(plain, torch.Tensor)
        assert isinstance(theirs(x, adj, return_attention_weights=False), torch.Tensor)
        torch.testing.assert_close(plain, out_t, **OUT_TOL)


@pytest.mark.parametrize('kind', KINDS)
def test_state_dict_round_trip_through_a_file(kind):
    """A model saved with PyG's layers loads into the same model built from ours (strict) and
    back, giving the same outputs."""
    def model(layers):
        conv = layers[kind]
        torch.manual_seed(0)
        return torch.nn.ModuleList([conv(6, 4, heads=2, edge_dim=3, residual=True),
                                    conv(8, 3, heads=1, concat=False)])

    def forward(m, x, edge_index, edge_attr):
        return m[1](m[0](x, edge_index, edge_attr).relu(), edge_index)

    edge_index = random_graph(7, 7, 14, seed=28)
    x, edge_attr = features(7, 6, seed=29), features(edge_index.size(1), 3, seed=30)

    def saved_and_loaded(source, impl):
        """A new ``impl`` model holding ``source``'s state_dict, through torch.save / load."""
        buffer = io.BytesIO()
        torch.save(source.state_dict(), buffer)
        buffer.seek(0)
        target = model(impl)
        target.load_state_dict(torch.load(buffer), strict=True)
        return target

    theirs = model(THEIRS)
    randomize_parameters(theirs, seed=31)
    ours = saved_and_loaded(theirs, OURS)
    expected = forward(theirs, x, edge_index, edge_attr)
    torch.testing.assert_close(forward(ours, x, edge_index, edge_attr), expected, **OUT_TOL)

    randomize_parameters(ours, seed=32)
    back = saved_and_loaded(ours, THEIRS)
    torch.testing.assert_close(forward(back, x, edge_index, edge_attr),
                               forward(ours, x, edge_index, edge_attr), **OUT_TOL)
    assert not torch.allclose(forward(back, x, edge_index, edge_attr), expected, atol=1e-3)

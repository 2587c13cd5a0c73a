"""Misuse fails at the layer boundary with the right exception type and a message that names
the offending argument (both layers, both paths)."""
import pytest
import torch

from reference import (FAST, KINDS, OURS, as_input_form, features, random_graph,
                       require_torch_sparse)

EDGE_INDEX = torch.tensor([[0, 1, 2, 3], [1, 2, 3, 0]])


def layer(kind, *args, **kwargs):
    return OURS[kind](*args, **kwargs)


@pytest.mark.parametrize('kind', KINDS)
@pytest.mark.parametrize('kwargs,match', [
    (dict(heads=0), r'^heads: .*>= 1, got 0'),
    (dict(heads=-2), r'^heads: '),
    (dict(dropout=1.5), r'^dropout: .*\[0, 1\], got 1\.5'),
    (dict(dropout=-0.1), r'^dropout: '),
    (dict(edge_dim=0), r'^edge_dim: '),
    (dict(fill_value='median'), r'^fill_value: .*median'),
])
def test_bad_hyperparameters(kind, kwargs, match):
    with pytest.raises(ValueError, match=match):
        layer(kind, 4, 3, **kwargs)


@pytest.mark.parametrize('kind', KINDS)
@pytest.mark.parametrize('args,match', [
    ((0, 3), r'^in_channels: '),
    (((4, 3, 2), 3), r'^in_channels: .*pair'),
    ((4, 0), r'^out_channels: '),
])
def test_bad_channels(kind, args, match):
    with pytest.raises(ValueError, match=match):
        layer(kind, *args)


@FAST
@pytest.mark.parametrize('kind', KINDS)
@pytest.mark.parametrize('edge_index,error,match', [
    (torch.tensor([[0, 1, 2], [1, 2, 3], [2, 3, 0]]), ValueError,
     r'^edge_index: .*\[2, num_edges\]'),
    (torch.tensor([0, 1, 2, 3]), ValueError, r'^edge_index: .*\[2, num_edges\]'),
    (EDGE_INDEX.float(), TypeError, r'^edge_index: .*integer'),
    (torch.tensor([[0, -1], [1, 2]]), ValueError, r'^edge_index: .*non-negative, found -1'),
    (torch.tensor([[0, 4], [1, 2]]), ValueError, r'^edge_index: source index 4 .*4 source'),
    (torch.tensor([[0, 1], [1, 7]]), ValueError, r'^edge_index: target index 7 .*4 target'),
    ([[0, 1], [1, 2]], TypeError, r'^edge_index: '),
], ids=['3xE', '1-D', 'float', 'negative', 'source>=N', 'target>=N', 'list'])
def test_bad_edge_index(kind, edge_index, error, match, fast_path):
    conv = layer(kind, 3, 2, fast_path=fast_path)
    with pytest.raises(error, match=match):
        conv(features(4, 3, seed=0), edge_index)


@FAST
@pytest.mark.parametrize('kind', KINDS)
def test_bipartite_target_index_out_of_range(kind, fast_path):
    conv = layer(kind, (3, 2), 2, fast_path=fast_path, add_self_loops=False)
    x = (features(5, 3, seed=0), features(2, 2, seed=1))
    with pytest.raises(ValueError, match=r'^edge_index: target index 2 .*2 target'):
        conv(x, torch.tensor([[4, 0], [0, 2]]))
    with pytest.raises(ValueError, match=r'^edge_index: source index 5 .*5 source'):
        conv(x, torch.tensor([[5, 0], [0, 1]]))


@FAST
@pytest.mark.parametrize('kind', KINDS)
def test_wrong_feature_size(kind, fast_path):
    conv = layer(kind, 3, 2, fast_path=fast_path)
    with pytest.raises(ValueError, match=r'^x: .*built for 3 input features, got 5'):
        conv(features(4, 5, seed=0), EDGE_INDEX)
    with pytest.raises(ValueError, match=r'^x: .*shape'):
        conv(torch.zeros(4, 3, 1), EDGE_INDEX)
    with pytest.raises(TypeError, match=r'^x: .*floating point'):
        conv(torch.zeros(4, 3, dtype=torch.long), EDGE_INDEX)
    bipartite = layer(kind, (3, 2), 2, fast_path=fast_path)
    with pytest.raises(ValueError, match=r'^x\[1\] \(x_dst\): .*built for 2 input features'):
        bipartite((features(4, 3, seed=0), features(4, 3, seed=1)), EDGE_INDEX)


@FAST
@pytest.mark.parametrize('kind', KINDS)
def test_bad_edge_attr(kind, fast_path):
    x = features(4, 3, seed=0)
    without = layer(kind, 3, 2, fast_path=fast_path)
    with pytest.raises(ValueError, match=r'^edge_attr: .*edge_dim='):
        without(x, EDGE_INDEX, features(4, 2, seed=1))
    conv = layer(kind, 3, 2, edge_dim=2, fast_path=fast_path)
    with pytest.raises(ValueError, match=r'^edge_attr: expected shape \[num_edges, 2\]'):
        conv(x, EDGE_INDEX, features(4, 3, seed=1))
    with pytest.raises(ValueError, match=r'^edge_attr: expected one row per edge \(4\)'):
        conv(x, EDGE_INDEX, features(5, 2, seed=1))
    with pytest.raises(TypeError, match=r'^edge_attr: '):
        conv(x, EDGE_INDEX, [[1.0, 2.0]] * 4)


@FAST
@pytest.mark.parametrize('kind', KINDS)
def test_pair_versus_single_tensor(kind, fast_path):
    # An int in_channels layer shares its projection: a pair must have that width twice.
    shared = layer(kind, 3, 2, fast_path=fast_path)
    with pytest.raises(ValueError, match=r'^x\[1\] \(x_dst\): .*built for 3 input features'):
        shared((features(4, 3, seed=0), features(4, 2, seed=1)), EDGE_INDEX)
    with pytest.raises(ValueError, match=r'^x: .*a sequence of 3'):
        shared((features(4, 3, seed=0), ) * 3, EDGE_INDEX)
    # A layer built for a pair of different widths needs the pair.
    bipartite = layer(kind, (3, 2), 2, fast_path=fast_path)
    with pytest.raises(ValueError, match=r'^x: .*bipartite.*expects a pair'):
        bipartite(features(4, 3, seed=0), EDGE_INDEX)
    with pytest.raises(ValueError, match=r'^x: .*x_src .*must not be None'):
        bipartite((None, features(4, 2, seed=0)), EDGE_INDEX)


@FAST
@pytest.mark.parametrize('form', ['csr', 'coo', 'sparse_tensor'])
@pytest.mark.parametrize('kind', KINDS)
def test_sparse_adjacency_of_wrong_shape(kind, form, fast_path):
    if form == 'sparse_tensor':
        require_torch_sparse()
    conv = layer(kind, 3, 2, add_self_loops=False, fast_path=fast_path)
    x = features(4, 3, seed=0)
    adj = as_input_form(EDGE_INDEX, form, 5, 4)    # 5 sources, but x has 4 nodes
    with pytest.raises(ValueError, match=r'^edge_index: .*\[num_dst, num_src\].*expected '
                                         r'\[4, 4\], got \[4, 5\]'):
        conv(x, adj)


@FAST
@pytest.mark.parametrize('kind', KINDS)
def test_size_disagreeing_with_x(kind, fast_path):
    conv = layer(kind, 3, 2, fast_path=fast_path)
    x = features(4, 3, seed=0)
    with pytest.raises(ValueError, match=r'^size: \(5, 4\) disagrees'):
        conv(x, EDGE_INDEX, size=(5, 4))
    with pytest.raises(ValueError, match=r'^size: \(4, 3\) disagrees'):
        conv((x, x), EDGE_INDEX, size=(4, 3))
    with pytest.raises(ValueError, match=r'^size: expected None or a pair'):
        conv(x, EDGE_INDEX, size=4)
    # A consistent size is accepted and changes nothing.
    torch.testing.assert_close(conv(x, EDGE_INDEX, size=(4, 4)), conv(x, EDGE_INDEX))


@FAST
def test_gatv2_needs_target_features(fast_path):
    conv = layer('gatv2', (3, 2), 2, fast_path=fast_path)
    with pytest.raises(ValueError, match=r'^x: GATv2Conv .*x_dst'):
        conv((features(4, 3, seed=0), None), EDGE_INDEX, size=(4, 4))


@FAST
@pytest.mark.parametrize('form', ['csr', 'coo', 'sparse_tensor'])
@pytest.mark.parametrize('kind', KINDS)
def test_sparse_adjacency_edge_attr_with_self_loops(kind, form, fast_path):
    """Self-loops cannot carry edge features through a sparse adjacency (PyG's own layers
    fail there with a bare AssertionError or NotImplementedError); ours say what to pass."""
    if form == 'sparse_tensor':
        require_torch_sparse()
    conv = layer(kind, 3, 2, edge_dim=2, fast_path=fast_path)
    adj = as_input_form(EDGE_INDEX, form, 4, 4)
    with pytest.raises(ValueError, match=r'^edge_attr: .*add_self_loops=True need a \[2, E\] '
                       r'edge_index.*to_edge_index') as info:
        conv(features(4, 3, seed=0), adj, features(4, 2, seed=1))
    # What PyG raises there too, so code written for its layers still catches it.
    assert isinstance(info.value, NotImplementedError)


def test_valid_inputs_pass_the_checks():
    """The error tests above must fail for the stated reason only: the same calls with the
    offending argument fixed run."""
    x = features(4, 3, seed=0)
    for kind in KINDS:
        for fast_path in (False, True):
            conv = layer(kind, 3, 2, edge_dim=2, fast_path=fast_path)
            out = conv(x, EDGE_INDEX, features(4, 2, seed=1), size=(4, 4))
            assert torch.isfinite(out).all()
            bipartite = layer(kind, (3, 2), 2, add_self_loops=False, fast_path=fast_path)
            assert bipartite((x, features(2, 2, seed=2)),
                             torch.tensor([[3, 0], [0, 1]])).shape == (2, 2)
    edge_index = random_graph(4, 4, 6, seed=3, duplicates=False)
    conv = layer('gat', 3, 2, add_self_loops=False)
    conv(x, as_input_form(edge_index, 'csr', 4, 4))

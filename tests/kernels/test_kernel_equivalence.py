"""The native ops against the plain formula (and against PyG's layers): outputs, attention and
every gradient, over heads x channels x optional terms x graph shapes x index dtypes."""
import itertools

import pytest
import torch
import torch_geometric.nn as pyg_nn

from gat_pyg.kernels import gat_attention, gatv2_attention
from kernel_reference import GRAPHS, gat_reference, gatv2_reference, random_edges, sorted_graph

INDEX_DTYPES = {'int64': torch.int64, 'int32': torch.int32}
TOL = {torch.float64: dict(atol=1e-12, rtol=1e-10), torch.float32: dict(atol=1e-5, rtol=1e-5)}
EDGE_DIM = 3
SLOPE = 0.2


def randn(shape, dtype, seed, grad=True):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=gen, dtype=dtype).requires_grad_(grad)


def gat_inputs(graph, heads, channels, with_dst, with_edge, dtype):
    return (randn((graph.num_src, heads), dtype, 1),
            randn((graph.num_dst, heads), dtype, 2) if with_dst else None,
            randn((graph.num_edges, heads), dtype, 3) if with_edge else None,
            randn((graph.num_src, heads, channels), dtype, 4))


def gatv2_inputs(graph, heads, channels, with_edge, dtype):
    return (randn((graph.num_src, heads, channels), dtype, 1),
            randn((graph.num_dst, heads, channels), dtype, 2),
            randn((heads, channels), dtype, 3),
            randn((graph.num_edges, EDGE_DIM), dtype, 4) if with_edge else None,
            randn((heads * channels, EDGE_DIM), dtype, 5) if with_edge else None)


def assert_same_results(native, reference, inputs, tol):
    """Forward results and the gradients of a random linear function of (out, alpha)."""
    out, alpha = native(*inputs)
    ref_out, ref_alpha = reference(*inputs)
    torch.testing.assert_close(out, ref_out, **tol)
    torch.testing.assert_close(alpha, ref_alpha, **tol)
    assert torch.isfinite(out).all() and torch.isfinite(alpha).all()
    weights = randn(out.shape, out.dtype, 7, grad=False), randn(alpha.shape, out.dtype, 8, False)
    leaves = [t for t in inputs if t is not None]

    def grads(o, a):
        loss = (o * weights[0]).sum() + (a * weights[1]).sum()
        found = torch.autograd.grad(loss, leaves, allow_unused=True)
        return [torch.zeros_like(t) if g is None else g for g, t in zip(found, leaves)]

    for got, expected in zip(grads(out, alpha), grads(ref_out, ref_alpha)):
        torch.testing.assert_close(got, expected, **tol)


GRID = list(itertools.product(GRAPHS, INDEX_DTYPES, [1, 3], [1, 4, 7, 8], [True, False]))


@pytest.mark.parametrize('with_dst', [True, False])
@pytest.mark.parametrize('graph_name,index,heads,channels,with_edge', GRID)
def test_gat_matches_reference_float64(graph_name, index, heads, channels, with_edge, with_dst):
    graph = sorted_graph(*GRAPHS[graph_name], INDEX_DTYPES[index])
    inputs = gat_inputs(graph, heads, channels, with_dst, with_edge, torch.float64)
    assert_same_results(lambda *x: gat_attention(*graph.args(), *x, SLOPE),
                        lambda *x: gat_reference(graph, *x, SLOPE), inputs, TOL[torch.float64])


@pytest.mark.parametrize('graph_name,index,heads,channels,with_edge', GRID)
def test_gatv2_matches_reference_float64(graph_name, index, heads, channels, with_edge):
    graph = sorted_graph(*GRAPHS[graph_name], INDEX_DTYPES[index])
    inputs = gatv2_inputs(graph, heads, channels, with_edge, torch.float64)
    # h_src is x_l, as in PyG's GATv2Conv: its gradient sums both uses.
    assert_same_results(lambda *x: gatv2_attention(*graph.args(), *x, x[0], SLOPE),
                        lambda *x: gatv2_reference(graph, *x, x[0], SLOPE), inputs,
                        TOL[torch.float64])


@pytest.mark.parametrize('graph_name', GRAPHS)
@pytest.mark.parametrize('with_dst,with_edge', [(True, True), (False, False), (True, False)])
def test_gat_matches_reference_float32(graph_name, with_dst, with_edge):
    graph = sorted_graph(*GRAPHS[graph_name])
    inputs = gat_inputs(graph, 3, 8, with_dst, with_edge, torch.float32)
    assert_same_results(lambda *x: gat_attention(*graph.args(), *x, SLOPE),
                        lambda *x: gat_reference(graph, *x, SLOPE), inputs, TOL[torch.float32])


@pytest.mark.parametrize('graph_name', GRAPHS)
@pytest.mark.parametrize('with_edge', [True, False])
def test_gatv2_with_separate_h_src_matches_reference_float32(graph_name, with_edge):
    graph = sorted_graph(*GRAPHS[graph_name], torch.int32)
    inputs = gatv2_inputs(graph, 3, 7, with_edge, torch.float32) + \
        (randn((graph.num_src, 3, 7), torch.float32, 9), )
    assert_same_results(lambda *x: gatv2_attention(*graph.args(), *x, 0.1),
                        lambda *x: gatv2_reference(graph, *x, 0.1), inputs,
                        TOL[torch.float32])


# The kernels have vectorised paths for 8 heads x 8 channels and for one head of up to 8
# channels, for float32 and bfloat16 (float64 takes the general path, checked above). A 1x8
# row is read 8 floats at a time except near the end of its tensor: the larger graph has rows
# of both kinds.
VECTOR_SHAPES = [(8, 8), (1, 1), (1, 3), (1, 7), (1, 8), (2, 8)]
VECTOR_GRAPHS = dict(GRAPHS, larger=(random_edges(70, 60, 500, seed=4), 70, 60))


@pytest.mark.parametrize('graph_name', ['random', 'more_sources', 'isolated_duplicates',
                                        'no_edges', 'larger'])
@pytest.mark.parametrize('heads,channels', VECTOR_SHAPES)
@pytest.mark.parametrize('with_edge', [True, False])
def test_gat_vector_shapes_float32(graph_name, heads, channels, with_edge):
    graph = sorted_graph(*VECTOR_GRAPHS[graph_name], torch.int32)
    inputs = gat_inputs(graph, heads, channels, True, with_edge, torch.float32)
    assert_same_results(lambda *x: gat_attention(*graph.args(), *x, SLOPE),
                        lambda *x: gat_reference(graph, *x, SLOPE), inputs, TOL[torch.float32])


@pytest.mark.parametrize('graph_name', ['random', 'more_targets', 'isolated_duplicates',
                                        'no_edges', 'larger'])
@pytest.mark.parametrize('heads,channels', VECTOR_SHAPES)
@pytest.mark.parametrize('with_edge', [True, False])
def test_gatv2_vector_shapes_float32(graph_name, heads, channels, with_edge):
    graph = sorted_graph(*VECTOR_GRAPHS[graph_name])
    inputs = gatv2_inputs(graph, heads, channels, with_edge, torch.float32) + \
        (randn((graph.num_src, heads, channels), torch.float32, 9), )
    assert_same_results(lambda *x: gatv2_attention(*graph.args(), *x, SLOPE),
                        lambda *x: gatv2_reference(graph, *x, SLOPE), inputs,
                        TOL[torch.float32])


def test_isolated_targets_get_zero_output_and_zero_gradients():
    graph = sorted_graph(*GRAPHS['isolated_duplicates'])
    s_src, s_dst, _, h = gat_inputs(graph, 2, 3, True, False, torch.float32)
    out, alpha = gat_attention(*graph.args(), s_src, s_dst, None, h)
    isolated = torch.tensor([0, 2, 4])
    assert out[isolated].eq(0).all()
    out.sum().backward()
    assert s_dst.grad[isolated].eq(0).all()
    # The three duplicate edges 0 -> 1 and the edge 2 -> 1 share target 1's attention.
    torch.testing.assert_close(alpha[graph.dst == 1].sum(0), torch.ones(2))


@pytest.mark.parametrize('heads,channels', [(3, 8), (8, 8), (1, 7)])
@pytest.mark.parametrize('kind', ['gat', 'gatv2'])
def test_bfloat16_matches_float32_reference(kind, heads, channels):
    dtype = torch.bfloat16
    graph = sorted_graph(*VECTOR_GRAPHS['larger'])
    if kind == 'gat':
        inputs = gat_inputs(graph, heads, channels, True, True, dtype)
        native = lambda *x: gat_attention(*graph.args(), *x, SLOPE)   # noqa: E731
        reference = lambda *x: gat_reference(graph, *x, SLOPE)   # noqa: E731
    else:
        inputs = gatv2_inputs(graph, heads, channels, True, dtype)
        native = lambda *x: gatv2_attention(*graph.args(), *x, x[0], SLOPE)   # noqa: E731
        reference = lambda *x: gatv2_reference(graph, *x, x[0], SLOPE)   # noqa: E731
    # The reference sees the same (bfloat16-rounded) values, in float32.
    wide = [None if t is None else t.detach().float().requires_grad_() for t in inputs]
    out, alpha = native(*inputs)
    ref_out, ref_alpha = reference(*wide)
    assert out.dtype == alpha.dtype == dtype
    tol = dict(atol=2e-2, rtol=2e-2)
    torch.testing.assert_close(out.float(), ref_out, **tol)
    torch.testing.assert_close(alpha.float(), ref_alpha, **tol)
    (out.float().square().sum() + alpha.float().sum()).backward()
    (ref_out.square().sum() + ref_alpha.sum()).backward()
    for narrow, reference_leaf in zip(inputs, wide):
        if narrow is not None:
            assert narrow.grad.dtype == dtype
            # Relative to the largest gradient; GATv2's x_l gradient adds two bfloat16-rounded
            # parts (score and aggregation), hence twice the tolerance.
            scale = reference_leaf.grad.abs().max().clamp_min(1.0)
            torch.testing.assert_close(narrow.grad.float() / scale,
                                       reference_leaf.grad / scale, atol=4e-2, rtol=4e-2)


# Against PyG's own layers, with the layer's parameters fed to the kernels ------------------

HEADS, CHANNELS = 3, 4


def _pyg_case(conv_cls, with_edge):
    """PyG's layer (no self-loops, eval), its inputs, its output and attention, and the same
    graph destination-sorted for the kernels."""
    torch.manual_seed(0)
    edge_index, num, _ = GRAPHS['random']
    conv = conv_cls(5, CHANNELS, heads=HEADS, add_self_loops=False,
                    edge_dim=EDGE_DIM if with_edge else None).eval()
    x = torch.randn(num, 5)
    edge_attr = torch.randn(edge_index.size(1), EDGE_DIM) if with_edge else None
    expected, (_, expected_alpha) = conv(x, edge_index, edge_attr,
                                         return_attention_weights=True)
    return conv, x, edge_attr, expected, expected_alpha, sorted_graph(edge_index, num, num)


def _assert_matches_pyg(out, alpha, conv, expected, expected_alpha, graph):
    torch.testing.assert_close(out.reshape(expected.size(0), -1) + conv.bias, expected,
                               atol=1e-5, rtol=1e-5)
    # PyG returns the attention in its input order; the kernels in destination-sorted order.
    torch.testing.assert_close(alpha, expected_alpha[graph.perm], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize('with_edge', [True, False])
def test_gat_op_equals_pyg_gatconv(with_edge):
    conv, x, edge_attr, expected, expected_alpha, graph = _pyg_case(pyg_nn.GATConv, with_edge)
    h = conv.lin(x).view(-1, HEADS, CHANNELS)
    s_src, s_dst = (h * conv.att_src).sum(-1), (h * conv.att_dst).sum(-1)
    s_edge = None
    if with_edge:
        edge_h = conv.lin_edge(edge_attr[graph.perm]).view(-1, HEADS, CHANNELS)
        s_edge = (edge_h * conv.att_edge).sum(-1)
    out, alpha = gat_attention(*graph.args(), s_src, s_dst, s_edge, h, conv.negative_slope)
    _assert_matches_pyg(out, alpha, conv, expected, expected_alpha, graph)


@pytest.mark.parametrize('with_edge', [True, False])
def test_gatv2_op_equals_pyg_gatv2conv(with_edge):
    conv, x, edge_attr, expected, expected_alpha, graph = _pyg_case(pyg_nn.GATv2Conv, with_edge)
    x_l = conv.lin_l(x).view(-1, HEADS, CHANNELS)
    x_r = conv.lin_r(x).view(-1, HEADS, CHANNELS)
    out, alpha = gatv2_attention(
        *graph.args(), x_l, x_r, conv.att.view(HEADS, CHANNELS),
        edge_attr[graph.perm] if with_edge else None,
        conv.lin_edge.weight if with_edge else None, x_l, conv.negative_slope)
    _assert_matches_pyg(out, alpha, conv, expected, expected_alpha, graph)

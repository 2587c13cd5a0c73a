"""Misuse is refused clearly: the Python wrappers raise TypeError / ValueError naming the
argument before any native code runs; the native checks are a second line (RuntimeError)."""
import pytest
import torch

from gat_pyg import kernels
from gat_pyg.kernels import gat_attention, gatv2_attention
from kernel_reference import GRAPHS, sorted_graph

ops = torch.ops.gat_pyg


@pytest.fixture(scope='module')
def graph():
    return sorted_graph(*GRAPHS['more_sources'])   # 11 sources, 4 targets, 30 edges


def randn(*shape, dtype):
    return torch.randn(*shape).to(dtype)


def gat_inputs(graph, dtype=torch.float32):
    return dict(s_src=randn(11, 2, dtype=dtype), s_dst=randn(4, 2, dtype=dtype),
                s_edge=randn(30, 2, dtype=dtype), h_src=randn(11, 2, 3, dtype=dtype))


def gatv2_inputs(graph, dtype=torch.float32):
    return dict(x_l=randn(11, 2, 3, dtype=dtype), x_r=randn(4, 2, 3, dtype=dtype),
                att=randn(2, 3, dtype=dtype), edge_attr=randn(30, 5, dtype=dtype),
                w_edge=randn(6, 5, dtype=dtype), h_src=randn(11, 2, 3, dtype=dtype))


def call_gat(graph, **changes):
    kwargs = dict(zip(('ptr', 'src', 't_ptr', 't_col', 't_perm'), graph.args()),
                  **gat_inputs(graph))
    kwargs.update(changes)
    return gat_attention(**kwargs)


def call_gatv2(graph, **changes):
    kwargs = dict(zip(('ptr', 'src', 't_ptr', 't_col', 't_perm'), graph.args()),
                  **gatv2_inputs(graph))
    kwargs.update(changes)
    return gatv2_attention(**kwargs)


def refused(error, name, call, *args, **kwargs):
    """The wrapper raises ``error`` whose message starts with the argument's name (the native
    checks' messages start with ``gat_pyg:``, so this also shows no native code ran)."""
    with pytest.raises(error) as info:
        call(*args, **kwargs)
    assert str(info.value).startswith(name), str(info.value)


@pytest.mark.parametrize('dtype', [torch.float16, torch.int64])
def test_unsupported_feature_dtypes_are_type_errors(graph, dtype):
    refused(TypeError, 'h_src', call_gat, graph, **gat_inputs(graph, dtype))
    refused(TypeError, 'x_l', call_gatv2, graph, **gatv2_inputs(graph, dtype))
    assert not kernels.supports(torch.zeros(1, dtype=dtype))
    assert kernels.supports(torch.zeros(1, dtype=torch.bfloat16))


def test_mixed_feature_dtypes_are_type_errors(graph):
    refused(TypeError, 's_dst', call_gat, graph, s_dst=torch.randn(4, 2, dtype=torch.float64))
    refused(TypeError, 'att', call_gatv2, graph, att=torch.randn(2, 3, dtype=torch.float64))


def test_index_dtypes_are_checked(graph):
    refused(TypeError, 'ptr', call_gat, graph, ptr=graph.ptr.float())
    refused(TypeError, 't_perm', call_gat, graph, t_perm=graph.t_perm.int())


@pytest.mark.parametrize('name,bad', [
    ('s_src', torch.randn(11, 3)),          # H differs from h_src
    ('s_dst', torch.randn(5, 2)),           # N_dst differs from len(ptr) - 1
    ('s_edge', torch.randn(29, 2)),         # not one row per edge
    ('h_src', torch.randn(11, 2)),          # not [N_src, H, C]
    ('s_src', torch.randn(10, 2)),          # N_src differs from h_src
])
def test_gat_shape_mismatches_are_value_errors(graph, name, bad):
    refused(ValueError, name, call_gat, graph, **{name: bad})


@pytest.mark.parametrize('name,bad', [
    ('x_r', torch.randn(4, 2, 4)),          # C differs from x_l
    ('x_r', torch.randn(3, 2, 3)),          # N_dst differs from len(ptr) - 1
    ('att', torch.randn(3, 3)),             # H differs
    ('h_src', torch.randn(11, 3, 3)),       # H differs
    ('edge_attr', torch.randn(31, 5)),      # not one row per edge
    ('w_edge', torch.randn(6, 4)),          # D differs from edge_attr
])
def test_gatv2_shape_mismatches_are_value_errors(graph, name, bad):
    refused(ValueError, name, call_gatv2, graph, **{name: bad})


def test_graph_shapes_are_checked(graph):
    refused(ValueError, 't_ptr', call_gat, graph, t_ptr=graph.t_ptr[:-1])
    refused(ValueError, 'src, t_col, t_perm', call_gat, graph, t_col=graph.t_col[:-1])
    refused(ValueError, 'ptr', call_gat, graph, ptr=graph.ptr.view(1, -1))
    with pytest.raises(ValueError, match='edge_attr and w_edge'):
        call_gatv2(graph, w_edge=None)


def test_dropout_is_checked(graph):
    refused(ValueError, 'dropout', call_gat, graph, dropout=1.5, training=True)
    refused(TypeError, 'dropout', call_gat, graph, dropout='0.5', training=True)


def test_non_contiguous_inputs_are_made_contiguous(graph):
    inputs = gat_inputs(graph)
    strided = dict(h_src=inputs['h_src'].transpose(0, 2).contiguous().transpose(0, 2),
                   s_src=inputs['s_src'].t().contiguous().t())
    assert not strided['h_src'].is_contiguous() and not strided['s_src'].is_contiguous()
    torch.manual_seed(0)
    expected = call_gat(graph, **inputs)
    got = call_gat(graph, **dict(inputs, **strided))
    for a, b in zip(got, expected):
        assert torch.equal(a, b)


def test_native_checks_are_a_second_line(graph):
    features = gat_inputs(graph)
    args = (features['s_src'], features['s_dst'], None, features['h_src'], 0.2, 0.0, None)
    bad_src = graph.src.clone()
    bad_src[3] = 11
    with pytest.raises(RuntimeError, match='src has an entry outside'):
        ops.gat_forward(graph.ptr, bad_src, *graph.args()[2:], *args)
    bad_ptr = graph.ptr.clone()
    bad_ptr[-1] -= 1
    with pytest.raises(RuntimeError, match='ptr'):
        ops.gat_forward(bad_ptr, *graph.args()[1:], *args)
    with pytest.raises(RuntimeError, match='contiguous'):
        ops.gat_forward(*graph.args(), features['s_src'].t().contiguous().t(), *args[1:])
    with pytest.raises(RuntimeError, match='needs a seed'):
        ops.gat_forward(*graph.args(), *args[:5], 0.5, None)
    # The backward op checks that t_* is the transpose of ptr/src.
    out, alpha = ops.gat_forward(*graph.args(), *args)
    wrong_perm = graph.t_perm.flip(0)
    with pytest.raises(RuntimeError, match='not the transpose'):
        ops.gat_backward(torch.ones_like(out), None, *graph.args()[:4], wrong_perm,
                         features['s_src'], features['s_dst'], None, features['h_src'], alpha,
                         0.2, 0.0, None, [True, True, False, True])


def test_inference_needs_no_transposed_order(graph):
    inputs = gat_inputs(graph)
    with torch.no_grad():
        expected = call_gat(graph, **inputs)
        got = call_gat(graph, t_ptr=None, t_col=None, t_perm=None, **inputs)
    for a, b in zip(got, expected):
        assert torch.equal(a, b)
    x = gatv2_inputs(graph)
    got = call_gatv2(graph, t_ptr=None, t_col=None, t_perm=None, **x)   # nothing requires grad
    for a, b in zip(got, call_gatv2(graph, **x)):
        assert torch.equal(a, b)


def test_gradients_need_the_transposed_order(graph):
    inputs = gat_inputs(graph)
    inputs['h_src'].requires_grad_()
    refused(ValueError, 't_ptr, t_col, t_perm', call_gat, graph, t_ptr=None, t_col=None,
            t_perm=None, **inputs)
    refused(ValueError, 't_ptr, t_col, t_perm', call_gat, graph, t_perm=None)
    # Called directly, the op defers the complaint to backward.
    out, _ = ops.gat_forward(graph.ptr, graph.src, None, None, None, inputs['s_src'], None,
                             None, inputs['h_src'], 0.2, 0.0, None)
    with pytest.raises(RuntimeError, match='backward needs the transposed order'):
        out.sum().backward()


def test_a_transposed_order_written_in_place_is_checked_again(graph):
    """Backward verifies the transposed order once per graph (remembered by the tensors'
    identity and version); a write into one of them makes the next backward verify it again."""
    features = gat_inputs(graph)
    args = (features['s_src'], features['s_dst'], None, features['h_src'])
    t_perm = graph.t_perm.clone()
    out, alpha = ops.gat_forward(*graph.args()[:4], t_perm, *args, 0.2, 0.0, None)

    def backward():
        return ops.gat_backward(torch.ones_like(out), None, *graph.args()[:4], t_perm, *args,
                                alpha, 0.2, 0.0, None, [True, True, False, True])

    expected = backward()
    for a, b in zip(backward(), expected):   # verified the first time, remembered after
        assert torch.equal(a, b)
    t_perm.copy_(t_perm.flip(0))
    with pytest.raises(RuntimeError, match='not the transpose'):
        backward()
    t_perm.copy_(graph.t_perm)
    for a, b in zip(backward(), expected):
        assert torch.equal(a, b)
    t_perm[0] = graph.num_edges   # out of range: always checked
    with pytest.raises(RuntimeError, match='t_perm has an entry outside'):
        backward()

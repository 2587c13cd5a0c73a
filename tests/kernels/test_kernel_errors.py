"""Misuse is refused clearly: the public functions raise TypeError / ValueError naming the
argument before any kernel runs; the native checks are a second line (RuntimeError) for calls of
torch.ops.gat_pyg.* itself."""
import pytest
import torch

from gat_pyg import kernels
from gat_pyg.kernels import gat_attention, gatv2_attention
from gat_pyg.kernels.attend import GAT_FORWARD
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


def test_non_floating_features_are_type_errors(graph):
    refused(TypeError, 'h_src', call_gat, graph, **gat_inputs(graph, torch.int64))
    refused(TypeError, 'x_l', call_gatv2, graph, **gatv2_inputs(graph, torch.int64))
    with pytest.raises(ValueError, match='edge_attr and w_edge'):
        call_gatv2(graph, w_edge=None)


def test_a_dtype_without_a_kernel_runs_the_reference(graph):
    """float16 has no CPU kernel: the operators run their reference (the numbers of float32 to
    half precision), and which kernel runs is visible."""
    assert kernels.kernel_for('gat_forward', 'cpu', torch.float16) is None
    assert kernels.kernel_for('gat_forward', 'cpu', torch.bfloat16) == 'native'
    inputs = gat_inputs(graph)
    half = {k: v.half() for k, v in inputs.items()}
    out, alpha = call_gat(graph, **half)
    expected, expected_alpha = call_gat(graph, **inputs)
    assert out.dtype == torch.float16
    torch.testing.assert_close(out.float(), expected, atol=2e-2, rtol=2e-2)
    torch.testing.assert_close(alpha.float(), expected_alpha, atol=2e-3, rtol=2e-2)
    with pytest.raises(ValueError, match='fast_path=True: no kernel can run gat_forward here '
                                         r'\(no kernel takes torch.float16 on cpu\)'):
        gat_attention(*graph.args(), *half.values(), strict='fast_path=True')


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
    # Called without the checks, the operator defers the complaint to backward.
    out, _ = GAT_FORWARD(graph.ptr, graph.src, None, None, None, inputs['s_src'], None,
                         None, inputs['h_src'], 0.2, 0.0, None)
    with pytest.raises(ValueError, match="the kernels' backward reads the transposed order"):
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

"""Native head_scores (GAT's per-node, per-head half-scores) against NumPy, the operator's
pure-torch reference and gradcheck (second order too); thread-count invariance; errors."""
import numpy as np
import pytest
import torch

from gat_pyg import kernels
from gat_pyg.kernels.head_scores import HEAD_SCORES


@pytest.mark.parametrize('heads,channels', [(8, 8), (1, 7), (3, 5), (2, 16)])
@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
def test_head_scores_equal_numpy_and_their_gradients_the_formula(heads, channels, dtype):
    generator = torch.Generator().manual_seed(heads * 10 + channels)
    x = torch.randn(1500, heads, channels, generator=generator, dtype=dtype, requires_grad=True)
    att = torch.randn(heads, channels, generator=generator, dtype=dtype, requires_grad=True)
    grad = torch.randn(1500, heads, generator=generator, dtype=dtype)
    out = kernels.head_scores(x, att)
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    expected = np.einsum('nhc,hc->nh', x.detach().double().numpy(), att.detach().double().numpy())
    np.testing.assert_allclose(out.detach().double().numpy(), expected, atol=tol, rtol=tol)
    out.backward(grad)
    g = grad.double().numpy()
    np.testing.assert_allclose(x.grad.double().numpy(),
                               g[:, :, None] * att.detach().double().numpy()[None], atol=tol,
                               rtol=tol)
    np.testing.assert_allclose(att.grad.double().numpy(),
                               np.einsum('nh,nhc->hc', g, x.detach().double().numpy()),
                               atol=tol * 100, rtol=tol * 10)


def test_head_scores_gradcheck():
    x = torch.randn(30, 3, 4, dtype=torch.float64, requires_grad=True)
    att = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(kernels.head_scores, (x, att))
    assert torch.autograd.gradgradcheck(kernels.head_scores, (x, att))


def test_head_scores_bfloat16_accumulates_in_float32():
    x = torch.randn(300, 8, 8)
    att = torch.randn(8, 8)
    out = kernels.head_scores(x.bfloat16(), att.bfloat16())
    ref = (x.bfloat16().float() * att.bfloat16().float()).sum(-1)
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), ref, atol=0.05, rtol=0.01)


def test_att_gradient_does_not_depend_on_the_thread_count():
    x = torch.randn(5000, 8, 8, requires_grad=True)   # several blocks of 1024 nodes
    att = torch.randn(8, 8, requires_grad=True)
    grad = torch.randn(5000, 8)
    threads, grads = torch.get_num_threads(), []
    try:
        for n in (1, 2):
            torch.set_num_threads(n)
            att.grad = None
            kernels.head_scores(x, att).backward(grad)
            grads.append(att.grad.clone())
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(grads[0], grads[1])


def test_native_equals_the_reference():
    h = torch.randn(100, 8, 8, requires_grad=True)
    att = torch.randn(8, 8, requires_grad=True)
    grad = torch.randn(100, 8)
    assert kernels.kernel_for('head_scores', 'cpu', torch.float32) == 'native'
    kernels.head_scores(h, att).backward(grad)
    native = (h.grad.clone(), att.grad.clone())
    h.grad = att.grad = None
    out = HEAD_SCORES.reference(h, att)
    torch.testing.assert_close(out, (h * att).sum(-1).detach(), atol=1e-5, rtol=1e-5)
    out.backward(grad)
    torch.testing.assert_close(native[0], h.grad, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(native[1], att.grad, atol=1e-4, rtol=1e-5)


def test_head_scores_errors_name_the_argument():
    with pytest.raises(ValueError, match=r'att: expected shape \[H, C\] = \[2, 3\]'):
        kernels.head_scores(torch.randn(4, 2, 3), torch.randn(3, 2))
    with pytest.raises(TypeError, match='att: expected torch.float32 like the other features'):
        kernels.head_scores(torch.randn(4, 2, 3), torch.randn(2, 3, dtype=torch.float64))
    with pytest.raises(ValueError, match=r'x: expected 3 dimensions'):
        kernels.head_scores(torch.randn(4, 6), torch.randn(2, 3))
    with pytest.raises(TypeError, match='x: expected floating point values, got torch.int64'):
        kernels.head_scores(torch.ones(4, 2, 3, dtype=torch.int64), torch.randn(2, 3))

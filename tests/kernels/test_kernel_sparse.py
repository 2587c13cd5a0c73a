"""Native sparse-feature operators: ``sparse_linear`` (X @ W^T and its backward) against dense
products, NumPy and gradcheck; ``sparse_dropout`` against a NumPy replay of the kernels' hash;
errors; and their use by the layers (``dropout_features`` on COO, ``gat_pyg.nn.functional.linear``)
against the csr kernels and the references."""
import numpy as np
import pytest
import torch

from torch_geometric.nn.dense.linear import Linear

from gat_pyg import kernels
from gat_pyg.kernels.sparse_linear import SPARSE_LINEAR
from gat_pyg.nn.functional import dropout_features, linear


def _sparse(rows=40, cols=30, density=0.15, seed=0, dtype=torch.float32, empty_rows=(3, 17)):
    generator = torch.Generator().manual_seed(seed)
    dense = torch.randn(rows, cols, generator=generator, dtype=dtype)
    dense = dense * (torch.rand(rows, cols, generator=generator) < density)
    for r in empty_rows:
        dense[r] = 0
    return dense, dense.to_sparse().coalesce()


@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
@pytest.mark.parametrize('width', [7, 64, 100, 130])   # below, at, across blocks of 64
def test_sparse_linear_equals_the_dense_product_and_numpy(dtype, width):
    dense, x = _sparse(dtype=dtype)
    weight = torch.randn(width, dense.size(1), dtype=dtype)
    row, col = x.indices()
    out = kernels.sparse_linear(row, col, x.values(), weight, x.size(0))
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    torch.testing.assert_close(out, dense @ weight.t(), atol=tol, rtol=tol)
    # NumPy: the formula entry by entry.
    expected = np.zeros((dense.size(0), width))
    for r, c, v in zip(row.numpy(), col.numpy(), x.values().double().numpy()):
        expected[r] += v * weight.double().numpy()[:, c]
    np.testing.assert_allclose(out.double().numpy(), expected, atol=tol * 10, rtol=tol * 10)
    assert not out[3].any() and not out[17].any()   # rows without entries


def test_sparse_linear_with_a_wide_weight_and_kept_scratch_buffers():
    """The kernels transpose W (forward) and grad_W^T (backward) through buffers each thread
    keeps between calls: a wide weight whose sides are no multiple of ATen's copy blocks gives
    the dense product's values and gradients, the same bits on one and two threads, and a
    second call with a smaller weight (a buffer already larger) gives its own exact result."""
    dense, x = _sparse(rows=50, cols=1000, density=0.05, dtype=torch.float64)
    row, col = x.indices()
    weight = torch.randn(70, 1000, dtype=torch.float64)
    grad = torch.randn(50, 70, dtype=torch.float64)
    runs = []
    previous = torch.get_num_threads()
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            values = x.values().clone().requires_grad_()
            w = weight.clone().requires_grad_()
            out = kernels.sparse_linear(row, col, values, w, 50)
            runs.append((out, *torch.autograd.grad(out, (values, w), grad)))
    finally:
        torch.set_num_threads(previous)
    out, grad_values, grad_weight = runs[0]
    torch.testing.assert_close(out, dense @ weight.t(), atol=1e-12, rtol=1e-12)
    torch.testing.assert_close(grad_weight, grad.t() @ dense, atol=1e-12, rtol=1e-12)
    torch.testing.assert_close(grad_values, (grad[row] * weight.t()[col]).sum(-1), atol=1e-12,
                               rtol=1e-12)
    for a, b in zip(*runs):
        assert torch.equal(a, b)
    small = torch.randn(3, 1000, dtype=torch.float64, requires_grad=True)
    out = kernels.sparse_linear(row, col, x.values(), small, 50)
    torch.testing.assert_close(out, dense @ small.t(), atol=1e-12, rtol=1e-12)
    torch.testing.assert_close(torch.autograd.grad(out.sum(), small)[0],
                               torch.ones(50, 3, dtype=torch.float64).t() @ dense, atol=1e-12,
                               rtol=1e-12)


@pytest.mark.parametrize('width', [5, 64, 70])
def test_sparse_linear_gradcheck(width):
    dense, x = _sparse(rows=12, cols=9, density=0.3, dtype=torch.float64, empty_rows=(4, ))
    row, col = x.indices()
    values = x.values().clone().requires_grad_()
    weight = torch.randn(width, 9, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda v, w: kernels.sparse_linear(row, col, v, w, 12), (values, weight))


@pytest.mark.parametrize('index_dtype', [torch.int64, torch.int32])
def test_sparse_linear_gradients_equal_torch_sparse(index_dtype):
    dense, x = _sparse(rows=50, cols=40, density=0.2)
    row, col = (i.to(index_dtype) for i in x.indices())
    weight = torch.randn(64, 40, requires_grad=True)
    values = x.values().clone().requires_grad_()
    grad = torch.randn(50, 64)
    kernels.sparse_linear(row, col, values, weight, 50).backward(grad)
    ref_weight = weight.detach().clone().requires_grad_()
    ref_values = x.values().clone().requires_grad_()
    with kernels.use_backend('csr', 'cpu'):   # torch's sparse products
        kernels.sparse_linear(row, col, ref_values, ref_weight, 50).backward(grad)
    torch.testing.assert_close(weight.grad, ref_weight.grad, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(values.grad, ref_values.grad, atol=1e-5, rtol=1e-5)


def test_sparse_linear_does_not_depend_on_the_thread_count():
    dense, x = _sparse(rows=3000, cols=200, density=0.05, empty_rows=())
    row, col = x.indices()
    weight = torch.randn(64, 200, requires_grad=True)
    grad = torch.randn(3000, 64)
    results = []
    threads = torch.get_num_threads()
    try:
        for n in (1, 2):
            torch.set_num_threads(n)
            weight.grad = None
            out = kernels.sparse_linear(row, col, x.values(), weight, 3000)
            out.backward(grad)
            results.append((out.detach(), weight.grad.clone()))
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(results[0][0], results[1][0])
    assert torch.equal(results[0][1], results[1][1])


def test_sparse_linear_empty_and_no_rows():
    weight = torch.randn(8, 5, requires_grad=True)
    none = torch.zeros(0, dtype=torch.int64)
    out = kernels.sparse_linear(none, none, torch.zeros(0), weight, 4)
    assert out.shape == (4, 8) and not out.any()
    out.sum().backward()
    assert weight.grad is not None and not weight.grad.any()
    assert kernels.sparse_linear(none, none, torch.zeros(0), weight, 0).shape == (0, 8)


def test_sparse_linear_errors_name_the_argument():
    _, x = _sparse()
    row, col = x.indices()
    values, weight = x.values(), torch.randn(16, 30)
    with pytest.raises(ValueError, match='row: expected the entries sorted'):
        kernels.sparse_linear(row.flip(0), col, values, weight, 40)
    with pytest.raises(ValueError, match=r'col: expected entries in \[0, F=20\)'):
        kernels.sparse_linear(row, col, values, torch.randn(16, 20), 40)
    with pytest.raises(ValueError, match=r'row: expected entries in \[0, num_rows=10\)'):
        kernels.sparse_linear(row, col, values, weight, 10)
    with pytest.raises(TypeError, match='weight: expected the dtype of values'):
        kernels.sparse_linear(row, col, values, weight.double(), 40)
    with pytest.raises(TypeError, match='row: expected an int64 or int32 tensor'):
        kernels.sparse_linear(row.float(), col, values, weight, 40)
    with pytest.raises(ValueError, match='one entry each per stored value'):
        kernels.sparse_linear(row, col[:-1], values, weight, 40)


def _numpy_keep(seed: int, n: int, p: float) -> np.ndarray:
    """The kernels' mask (csrc/attention.h, HashDropout): SplitMix64 of the counter's position
    after mix(seed); keep iff the upper 32 bits >= round(p * 2^32)."""
    def mix(z):
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))
    with np.errstate(over='ignore'):
        base = mix(np.array([seed], dtype=np.uint64))[0]
        counters = np.arange(n, dtype=np.uint64) + np.uint64(1)
        hashed = mix(base + counters * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(32)
    return hashed >= np.uint64(round(p * 2**32))


@pytest.mark.parametrize('p', [0.2, 0.6])
def test_sparse_dropout_matches_a_numpy_replay_of_the_hash(p):
    _, x = _sparse(rows=300, cols=100, density=0.2, empty_rows=())
    torch.manual_seed(11)
    seed = int(torch.randint(0, 2**62, (), dtype=torch.int64))   # what the wrapper draws
    torch.manual_seed(11)
    indices, values = kernels.sparse_dropout(x.indices(), x.values(), p)
    keep = _numpy_keep(seed, x._nnz(), p)
    np.testing.assert_array_equal(indices.numpy(), x.indices().numpy()[:, keep])
    np.testing.assert_allclose(values.numpy(), x.values().numpy()[keep] / (1 - p), rtol=1e-6)
    # Kept fraction: within 5 standard deviations of 1 - p.
    n = x._nnz()
    assert abs(keep.mean() - (1 - p)) < 5 * np.sqrt(p * (1 - p) / n)


def test_sparse_dropout_seeded_repeats_and_edge_cases():
    _, x = _sparse(rows=200, cols=50, density=0.3, empty_rows=())
    torch.manual_seed(3)
    a = kernels.sparse_dropout(x.indices(), x.values(), 0.5)
    torch.manual_seed(3)
    b = kernels.sparse_dropout(x.indices(), x.values(), 0.5)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    indices, values = x.indices(), x.values()
    same = kernels.sparse_dropout(indices, values, 0.5, training=False)
    assert same[0] is indices and same[1] is values
    none = kernels.sparse_dropout(x.indices(), x.values(), 1.0)
    assert none[0].shape == (2, 0) and none[1].shape == (0, )
    # Values that need a gradient get one (the kernel has no backward: the reference runs).
    leaf = x.values().clone().requires_grad_()
    torch.manual_seed(3)
    kept = kernels.sparse_dropout(x.indices(), leaf, 0.5)
    assert torch.equal(kept[0], a[0]) and torch.equal(kept[1].detach(), a[1])
    kept[1].sum().backward()
    assert torch.equal(leaf.grad, torch.zeros_like(leaf).index_fill_(
        0, torch.nonzero((x.indices().unsqueeze(2) == a[0].unsqueeze(1)).all(0).any(1)).view(-1),
        2.0))
    with pytest.raises(ValueError, match=r'values: expected one row per column of indices'):
        kernels.sparse_dropout(x.indices(), x.values()[:-1], 0.5)
    with pytest.raises(ValueError, match=r'p: expected a probability in \[0, 1\]'):
        kernels.sparse_dropout(x.indices(), x.values(), 1.5)


def test_sparse_dropout_does_not_depend_on_the_thread_count():
    _, x = _sparse(rows=3000, cols=100, density=0.2, empty_rows=())   # several pieces
    threads = torch.get_num_threads()
    results = []
    try:
        for n in (1, 2):
            torch.set_num_threads(n)
            torch.manual_seed(5)
            results.append(kernels.sparse_dropout(x.indices(), x.values(), 0.6))
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(results[0][0], results[1][0])
    assert torch.equal(results[0][1], results[1][1])


def test_dropout_features_on_coo_uses_the_native_mask():
    _, x = _sparse(rows=100, cols=40, density=0.3, empty_rows=())
    torch.manual_seed(9)
    out = dropout_features(x, 0.6, True)
    torch.manual_seed(9)
    indices, values = kernels.sparse_dropout(x.indices(), x.values(), 0.6)
    assert out.layout == torch.sparse_coo and out.is_coalesced()
    assert torch.equal(out.indices(), indices) and torch.equal(out.values(), values)
    # Values that need a gradient take the pure-torch path, and get one.
    leaf = x.values().clone().requires_grad_()
    x_grad = torch.sparse_coo_tensor(x.indices(), leaf, x.shape).coalesce()
    dropout_features(x_grad, 0.6, True).values().sum().backward()
    assert leaf.grad is not None


@pytest.mark.parametrize('layout', ['coo', 'csr'])
def test_layer_projection_native_equals_csr_and_reference(layout):
    dense, x = _sparse(rows=60, cols=30, density=0.2)
    x = x if layout == 'coo' else x.to_sparse_csr()
    lin = Linear(30, 16)
    grad = torch.randn(60, 16)
    results = []
    for run in ('native', 'csr', 'reference'):
        lin.zero_grad()
        if run == 'csr':
            with kernels.use_backend('csr', 'cpu'):
                out = linear(lin, x)
        elif run == 'reference':
            coo = x.to_sparse_coo().coalesce() if layout == 'csr' else x
            out = SPARSE_LINEAR.reference(*coo.indices(), coo.values(), lin.weight, 60) + lin.bias
        else:
            out = linear(lin, x)
        out.backward(grad)
        results.append((out.detach(), lin.weight.grad.clone(), lin.bias.grad.clone()))
    for other in results[1:]:
        for a, b in zip(results[0], other):
            torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(results[0][0], dense @ lin.weight.detach().t() + lin.bias.detach(),
                               atol=1e-5, rtol=1e-5)

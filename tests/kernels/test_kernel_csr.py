"""The csr backend (pure torch on torch.sparse CSR products): its building blocks against scatter
sums, its operator kernels against the operators' references (outputs, attention, every
gradient, with dropout: the same masks), its bounded memory, and the sparse features."""
import copy

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from gat_pyg import GATConv, GATv2Conv, kernels
from gat_pyg.kernels.attend import gat_reference, gatv2_reference
from gat_pyg.kernels.csr import attend_kernel
from gat_pyg.kernels.dropout import ATTENTION_DROPOUT
from gat_pyg.nn.graph import prepare_graph
from kernel_reference import OPS, GRAPHS, sorted_graph

pytestmark = pytest.mark.without_native


@pytest.fixture
def csr():
    """The csr kernels serve the CPU for the test (over the C++ ones, if loaded)."""
    with kernels.use_backend('csr', 'cpu'):
        assert kernels.kernel_for('gat_forward', 'cpu', torch.float64) == 'csr'
        yield


def random_graph(num_src, num_dst, num_edges, seed=0):
    gen = torch.Generator().manual_seed(seed)
    src = torch.randint(0, num_src, (num_edges, ), generator=gen)
    dst = torch.randint(0, num_dst, (num_edges, ), generator=gen)
    return torch.stack([src, dst])


def sparse_features(num_nodes, num_features, density=0.2, seed=0, dtype=torch.float64):
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(num_nodes, num_features, generator=gen, dtype=dtype)
    x[torch.rand(num_nodes, num_features, generator=gen) > density] = 0
    return x


def test_prepared_graph_orders_edges_by_destination_and_back():
    edge_index = torch.tensor([[0, 2, 1, 3, 0], [2, 0, 2, 1, 0]])
    graph = prepare_graph(edge_index, (4, 3), add_self_loops=False)
    assert graph.dst.tolist() == [0, 0, 1, 2, 2]
    assert graph.ptr.tolist() == [0, 2, 3, 5]
    # Stable sort: edges to the same target keep their input order.
    assert graph.src.tolist() == [2, 0, 3, 0, 1]
    assert graph.perm.tolist() == [1, 4, 3, 0, 2]
    values = torch.arange(5.0)
    assert graph.to_input_order(values[graph.perm]).tolist() == values.tolist()
    # The transposed order lists the same edges sorted by source.
    t_ptr, t_col, t_perm = graph.transpose()
    assert t_ptr.tolist() == [0, 2, 3, 4, 5]
    assert graph.src[t_perm].tolist() == [0, 0, 1, 2, 3]
    assert t_col.tolist() == graph.dst[t_perm].tolist()


@pytest.mark.parametrize('heads', [1, 3, 8])
def test_spmm_and_sddmm_equal_scatter_sums(heads, monkeypatch):
    graph = prepare_graph(random_graph(7, 5, 30, seed=1), (7, 5), add_self_loops=False)
    weights = torch.rand(30, heads, dtype=torch.float64)
    x = torch.randn(7, heads, 4, dtype=torch.float64)
    expected = torch.zeros(5, heads, 4, dtype=torch.float64).index_add_(
        0, graph.dst, weights.unsqueeze(-1) * x[graph.src])
    for group_entries in (attend_kernel.HEAD_BLOCK_ENTRIES, 30):   # all heads, one at a time
        monkeypatch.setattr(attend_kernel, 'HEAD_BLOCK_ENTRIES', group_entries)
        out = attend_kernel.spmm(weights, x, graph.ptr, graph.src, 5)
        torch.testing.assert_close(out, expected)
        grad = torch.randn(5, heads, 4, dtype=torch.float64)
        torch.testing.assert_close(attend_kernel.sddmm(grad, x, graph.ptr, graph.src),
                                   (grad[graph.dst] * x[graph.src]).sum(-1))
    empty = prepare_graph(torch.empty(2, 0, dtype=torch.long), (3, 4), add_self_loops=False)
    out = attend_kernel.spmm(torch.empty(0, 2), torch.randn(3, 2, 5), empty.ptr, empty.src, 4)
    assert out.shape == (4, 2, 5) and out.abs().sum() == 0


def _inputs(kind, graph, heads=3, channels=4, edge_dim=2):
    gen = torch.Generator().manual_seed(5)

    def randn(*shape):
        return torch.randn(*shape, generator=gen, dtype=torch.float64).requires_grad_()
    if kind == 'gat':
        return [randn(graph.num_src, heads), randn(graph.num_dst, heads),
                randn(graph.num_edges, heads), randn(graph.num_src, heads, channels)]
    x_l = randn(graph.num_src, heads, channels)
    return [x_l, randn(graph.num_dst, heads, channels), randn(heads, channels),
            randn(graph.num_edges, edge_dim), randn(heads * channels, edge_dim), x_l]


@pytest.mark.parametrize('name', sorted(GRAPHS))
@pytest.mark.parametrize('kind', ['gat', 'gatv2'])
@pytest.mark.parametrize('dropout', [0.0, 0.5])
def test_kernels_equal_the_reference(csr, name, kind, dropout, monkeypatch):
    """Outputs, attention and the gradients of every input, with both dropouts (the same hash
    masks); GATv2's blocks made tiny so that block boundaries fall inside rows."""
    monkeypatch.setattr(attend_kernel, 'SCORE_BLOCK_ELEMENTS', 13)
    graph = sorted_graph(*GRAPHS[name])
    op, reference = (OPS.gat_forward, gat_reference) if kind == 'gat' else \
        (OPS.gatv2_forward, gatv2_reference)
    seeds = (torch.tensor(3), torch.tensor(4)) if dropout else (None, None)
    results = []
    for fn in (op, reference):
        inputs = _inputs(kind, graph)
        out, alpha = fn(*graph.args(), *inputs, 0.2, dropout, seeds[0], dropout, seeds[1])
        dropped = ATTENTION_DROPOUT.reference(alpha, dropout, seeds[0])
        leaves = list(dict.fromkeys(inputs))
        grads = torch.autograd.grad(out.square().sum() + (dropped * dropped).sum(), leaves,
                                    allow_unused=True)
        results.append((out, dropped, grads))
    (out, alpha, grads), (ref_out, ref_alpha, ref_grads) = results
    torch.testing.assert_close(out, ref_out)
    torch.testing.assert_close(alpha, ref_alpha)
    for got, want in zip(grads, ref_grads):
        if want is None:
            assert got is None or not got.any()
        else:
            torch.testing.assert_close(got, want)


@pytest.mark.parametrize('kind', ['gat', 'gatv2'])
def test_kernels_pass_gradcheck(csr, kind):
    graph = sorted_graph(*GRAPHS['more_targets'])
    op = OPS.gat_forward if kind == 'gat' else OPS.gatv2_forward
    inputs = _inputs(kind, graph)[:(4 if kind == 'gat' else 5)]

    def fn(*x):
        args = x if kind == 'gat' else (*x, x[0])   # GATv2: h_src is x_l
        return op(*graph.args(), *args, 0.2, 0.3, torch.tensor(9))

    assert torch.autograd.gradcheck(fn, inputs)


@pytest.mark.parametrize('conv_cls', [GATConv, GATv2Conv])
@pytest.mark.parametrize('layout', [torch.sparse_coo, torch.sparse_csr])
@pytest.mark.parametrize('backend', ['csr', 'native'])
def test_sparse_features_give_dense_outputs_and_gradients(conv_cls, layout, backend):
    if backend == 'native' and not kernels.available():
        pytest.skip(f'native kernels not available: {kernels.load_error()}')
    dense = sparse_features(9, 6, seed=4, dtype=torch.float32)
    x = dense.to_sparse() if layout == torch.sparse_coo else dense.to_sparse_csr()
    edge_index = random_graph(9, 9, 25, seed=5)
    torch.manual_seed(0)
    conv = conv_cls(6, 4, heads=2, residual=True)
    reference = copy.deepcopy(conv)
    with kernels.use_backend('csr', 'cpu') if backend == 'csr' else _nothing():
        out = conv(x, edge_index)
        expected = reference(dense, edge_index)
        torch.testing.assert_close(out, expected, atol=1e-6, rtol=1e-5)
        out.square().sum().backward()
        expected.square().sum().backward()
    for (name, p), q in zip(conv.named_parameters(), reference.parameters()):
        torch.testing.assert_close(p.grad, q.grad, atol=1e-5, rtol=1e-5, msg=name)


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class MaxTensorSize(TorchDispatchMode):
    """Records the largest dense tensor any aten op produces."""

    def __init__(self):
        super().__init__()
        self.largest = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else [out]:
            if isinstance(t, torch.Tensor) and t.layout == torch.strided:
                self.largest = max(self.largest, t.numel())
        return out


@pytest.mark.parametrize('conv_cls', [GATConv, GATv2Conv])
def test_no_edge_by_feature_tensor(csr, conv_cls, monkeypatch):
    # GATv2 builds per-edge vectors in blocks: a small block must bound every tensor.
    monkeypatch.setattr(attend_kernel, 'SCORE_BLOCK_ELEMENTS', 512)
    num_nodes, num_edges, heads, channels = 100, 3000, 4, 8
    # Distinct pairs: under a dispatch mode torch's sampled_addmm rejects duplicate entries.
    pairs = torch.randperm(num_nodes * num_nodes, generator=torch.Generator().manual_seed(6))
    edge_index = torch.stack([pairs[:num_edges] // num_nodes, pairs[:num_edges] % num_nodes])
    x = torch.randn(num_nodes, 16, requires_grad=True)
    for fast_path in (True, False):
        conv = conv_cls(16, channels, heads=heads, fast_path=fast_path)
        with MaxTensorSize() as probe:
            conv(x, edge_index).sum().backward()
        per_edge_features = num_edges * heads * channels
        if fast_path:
            assert probe.largest < per_edge_features / 4, probe.largest
        else:   # the probe does see PyG's gathered x_j, so the check above can fail
            assert probe.largest >= per_edge_features

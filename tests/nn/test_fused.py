"""The fast path's building blocks: custom autograd Functions, sparse features, memory."""
import copy

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

import gat_pyg.nn.fused as fused
from gat_pyg import GATConv, GATv2Conv
from gat_pyg.nn.functional import dropout_features as dropout
from gat_pyg.nn.functional import keep_mask
from gat_pyg.nn.fused import blocked_gatv2_score, csr_aggregate, sparse_linear
from gat_pyg.nn.graph import prepare_graph
from reference import FAST


def build_csr_graph(edge_index, num_src, num_dst):
    return prepare_graph(edge_index, (num_src, num_dst), add_self_loops=False)


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


def test_csr_graph_orders_edges_by_destination_and_back():
    edge_index = torch.tensor([[0, 2, 1, 3, 0], [2, 0, 2, 1, 0]])
    graph = build_csr_graph(edge_index, num_src=4, num_dst=3)
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


def test_csr_aggregate_matches_scatter_and_passes_gradcheck():
    edge_index = random_graph(7, 5, 30, seed=1)
    graph = build_csr_graph(edge_index, 7, 5)
    alpha = torch.rand(30, 3, dtype=torch.float64, requires_grad=True)
    x = torch.randn(7, 3, 4, dtype=torch.float64, requires_grad=True)
    out = csr_aggregate(alpha, x, graph)
    expected = torch.zeros(5, 3, 4, dtype=torch.float64).index_add_(
        0, graph.dst, alpha.unsqueeze(-1) * x[graph.src])
    torch.testing.assert_close(out, expected)
    assert torch.autograd.gradcheck(lambda a, h: csr_aggregate(a, h, graph), (alpha, x))


def test_csr_aggregate_with_no_edges_gives_zeros():
    graph = build_csr_graph(torch.empty(2, 0, dtype=torch.long), 3, 4)
    x = torch.randn(3, 2, 5, requires_grad=True)
    out = csr_aggregate(torch.empty(0, 2), x, graph)
    assert out.shape == (4, 2, 5) and out.abs().sum() == 0


@pytest.mark.parametrize('with_edge_attr', [False, True])
def test_blocked_gatv2_score_matches_direct_formula_across_blocks(monkeypatch, with_edge_attr):
    monkeypatch.setattr(fused, 'SCORE_BLOCK_ELEMENTS', 24)   # 2 edges per block of H*C = 12
    edge_index = random_graph(6, 4, 9, seed=2)
    graph = build_csr_graph(edge_index, 6, 4)
    dt = torch.float64
    x_l = torch.randn(6, 3, 4, dtype=dt, requires_grad=True)
    x_r = torch.randn(4, 3, 4, dtype=dt, requires_grad=True)
    att = torch.randn(1, 3, 4, dtype=dt, requires_grad=True)
    edge_attr = w_edge = None
    if with_edge_attr:
        edge_attr = torch.randn(9, 2, dtype=dt, requires_grad=True)
        w_edge = torch.randn(12, 2, dtype=dt, requires_grad=True)

    def direct(x_l, x_r, att, edge_attr, w_edge):
        z = x_l[graph.src] + x_r[graph.dst]
        if edge_attr is not None:
            z = z + (edge_attr @ w_edge.t()).view(-1, 3, 4)
        return (torch.nn.functional.leaky_relu(z, 0.2) * att).sum(-1)

    def blocked(x_l, x_r, att, edge_attr, w_edge):
        return blocked_gatv2_score(x_l, x_r, att, edge_attr, w_edge, graph.src, graph.dst, 0.2)

    inputs = (x_l, x_r, att, edge_attr, w_edge)
    torch.testing.assert_close(blocked(*inputs), direct(*inputs))
    assert torch.autograd.gradcheck(blocked, inputs)


@pytest.mark.parametrize('layout', [torch.sparse_coo, torch.sparse_csr])
def test_sparse_linear_matches_dense_and_passes_gradcheck(layout):
    dense = sparse_features(6, 5, seed=3)
    weight = torch.randn(4, 5, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(4, dtype=torch.float64, requires_grad=True)
    indices = dense.nonzero().t()

    def product(values, weight, bias):
        x = torch.sparse_coo_tensor(indices, values, dense.shape, is_coalesced=True)
        return sparse_linear(x if layout == torch.sparse_coo else x.to_sparse_csr(), weight,
                             bias)

    values = dense[indices[0], indices[1]].clone().requires_grad_()
    torch.testing.assert_close(product(values, weight, bias), dense @ weight.t() + bias)
    assert torch.autograd.gradcheck(product, (values, weight, bias))


def test_keep_mask_rate_and_shape():
    torch.manual_seed(0)
    for p in (0.1, 0.6, 0.9):
        mask = keep_mask((500, 400), p)
        assert mask.shape == (500, 400) and mask.dtype == torch.bool
        assert abs(mask.float().mean().item() - (1 - p)) < 0.005
    # odd sizes that do not fill the last 64-bit draw
    assert keep_mask((7, ), 0.0).all() and not keep_mask((5, 3), 1.0).any()


def test_dropout_mask_semantics():
    torch.manual_seed(0)
    x = torch.ones(200_000)
    out = dropout(x, 0.6, training=True)
    kept = out != 0
    assert torch.all(out[kept] == 2.5)                       # inverted scaling 1 / (1 - p)
    assert abs(kept.float().mean().item() - 0.4) < 0.01
    assert dropout(x, 0.6, training=False) is x
    assert dropout(x, 0.0, training=True) is x
    torch.manual_seed(1)
    a = dropout(x, 0.5, True)
    torch.manual_seed(1)
    assert torch.equal(a, dropout(x, 0.5, True))


@pytest.mark.parametrize('conv_cls', [GATConv, GATv2Conv])
@pytest.mark.parametrize('layout', [torch.sparse_coo, torch.sparse_csr])
@FAST
def test_sparse_features_give_dense_outputs_and_gradients(conv_cls, layout, fast_path):
    dense = sparse_features(9, 6, seed=4, dtype=torch.float32)
    x = dense.to_sparse() if layout == torch.sparse_coo else dense.to_sparse_csr()
    edge_index = random_graph(9, 9, 25, seed=5)
    torch.manual_seed(0)
    conv = conv_cls(6, 4, heads=2, residual=True, fast_path=fast_path)
    reference = copy.deepcopy(conv)
    out = conv(x, edge_index)
    expected = reference(dense, edge_index)
    torch.testing.assert_close(out, expected, atol=1e-6, rtol=1e-5)
    out.square().sum().backward()
    expected.square().sum().backward()
    for (name, p), q in zip(conv.named_parameters(), reference.parameters()):
        torch.testing.assert_close(p.grad, q.grad, atol=1e-5, rtol=1e-5, msg=name)


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
def test_fast_path_never_builds_an_edge_by_feature_tensor(conv_cls, monkeypatch):
    # GATv2 builds per-edge vectors in blocks: a small block must bound every tensor.
    monkeypatch.setattr(fused, 'SCORE_BLOCK_ELEMENTS', 512)
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

"""torch.compile, torch.jit.trace and torch.func over the attention operators, and the kernels'
memory: no tensor of E x H x C elements is ever created. torch.compile traces the kernels as
operators; torch.func and torch.jit.trace see the operators' pure-torch references (see
gat_pyg.kernels.dispatch)."""
import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from gat_pyg.kernels import gat_attention, gatv2_attention
from kernel_reference import GRAPHS, random_edges, sorted_graph


@pytest.fixture(scope='module')
def graph():
    return sorted_graph(*GRAPHS['more_sources'])   # 11 sources, 4 targets


def gat_fn(graph):
    def fn(s_src, s_dst, h):
        out, alpha = gat_attention(*graph.args(), s_src, s_dst, None, h, 0.2)
        return out.square().sum() + (alpha * torch.arange(alpha.numel()).view_as(alpha)).sum()
    return fn


def gatv2_fn(graph):
    def fn(x_l, x_r, att, edge_attr, w_edge):
        out, alpha = gatv2_attention(*graph.args(), x_l, x_r, att, edge_attr, w_edge, x_l, 0.2)
        return out.square().sum() + (alpha * torch.arange(alpha.numel()).view_as(alpha)).sum()
    return fn


def gat_inputs(graph, heads=2, channels=3):
    return [torch.randn(graph.num_src, heads), torch.randn(graph.num_dst, heads),
            torch.randn(graph.num_src, heads, channels)]


def gatv2_inputs(graph, heads=2, channels=3, edge_dim=2):
    return [torch.randn(graph.num_src, heads, channels),
            torch.randn(graph.num_dst, heads, channels), torch.randn(heads, channels),
            torch.randn(graph.num_edges, edge_dim), torch.randn(heads * channels, edge_dim)]


def value_and_grads(fn, inputs):
    leaves = [t.clone().requires_grad_() for t in inputs]
    value = fn(*leaves)
    return value, torch.autograd.grad(value, leaves)


# aot_eager runs the whole compile pipeline (Dynamo tracing without graph breaks, fake kernels,
# AOTAutograd's joint graph with the backward op) without generating C++, which keeps this test
# at seconds; the inductor backend runs the same graphs (checked once, in the benchmark notes).
@pytest.mark.parametrize('kind', ['gat', 'gatv2'])
def test_compile_fullgraph_matches_eager(graph, kind):
    torch._dynamo.reset()
    make, inputs = (gat_fn, gat_inputs(graph)) if kind == 'gat' else \
        (gatv2_fn, gatv2_inputs(graph))
    eager = value_and_grads(make(graph), inputs)
    compiled = value_and_grads(torch.compile(make(graph), fullgraph=True, backend='aot_eager'),
                               inputs)
    torch.testing.assert_close(compiled[0], eager[0])
    for a, b in zip(compiled[1], eager[1]):
        torch.testing.assert_close(a, b)


class Attention(torch.nn.Module):
    def __init__(self, graph):
        super().__init__()
        self.graph = graph

    def forward(self, s_src, h):
        return gat_attention(*self.graph.args(), s_src, None, None, h, 0.2, 0.5, self.training)[0]


@pytest.mark.parametrize('training', [False, True])
def test_jit_trace_records_the_reference_and_differentiates(graph, training):
    module = Attention(graph).train(training)
    s_src, h = torch.randn(graph.num_src, 2), torch.randn(graph.num_src, 2, 3)
    traced = torch.jit.trace(module, (s_src, h), check_trace=False)
    # The reference's operations, not the opaque kernel: a trace replays torch ops.
    assert 'gat_pyg::gat_forward' not in str(traced.graph)
    assert 'aten::index_add' in str(traced.graph)
    leaves = [s_src.clone().requires_grad_(), h.clone().requires_grad_()]
    torch.manual_seed(0)
    expected = module(*leaves)
    expected_grads = torch.autograd.grad(expected.sum(), leaves)
    torch.manual_seed(0)   # the traced graph draws its dropout seed from the same generator
    got = traced(*leaves)
    torch.testing.assert_close(got, expected)
    for a, b in zip(torch.autograd.grad(got.sum(), leaves), expected_grads):
        torch.testing.assert_close(a, b)


def test_vmap_over_node_features_equals_a_loop(graph):
    s_src, s_dst, h = gat_inputs(graph)
    batch = torch.randn(3, *h.shape)

    def one(h_src, s):
        return gat_attention(*graph.args(), s, s_dst, None, h_src, 0.2)[0]

    scores = torch.randn(3, *s_src.shape)
    mapped = torch.func.vmap(one)(batch, scores)
    torch.testing.assert_close(mapped, torch.stack([one(b, s) for b, s in zip(batch, scores)]))
    mapped = torch.func.vmap(one, in_dims=(0, None))(batch, s_src)   # unbatched s_src
    torch.testing.assert_close(mapped, torch.stack([one(b, s_src) for b in batch]))


def test_vmap_of_gatv2_over_projected_features(graph):
    x_l, x_r, att, edge_attr, w_edge = gatv2_inputs(graph)

    def one(xl):
        return gatv2_attention(*graph.args(), xl, x_r, att, edge_attr, w_edge, xl, 0.2)[1]

    batch = torch.randn(2, *x_l.shape)
    torch.testing.assert_close(torch.func.vmap(one)(batch), torch.stack([one(b) for b in batch]))


@pytest.mark.parametrize('kind', ['gat', 'gatv2'])
def test_func_grad_and_jacrev_equal_autograd(graph, kind):
    make, inputs = (gat_fn, gat_inputs(graph)) if kind == 'gat' else \
        (gatv2_fn, gatv2_inputs(graph))
    inputs = [t.double() for t in inputs]   # the kernels and the reference sum in other orders
    fn = make(graph)
    _, expected = value_and_grads(fn, inputs)
    # torch.func runs the reference, autograd the kernels.
    got = torch.func.grad(fn, argnums=tuple(range(len(inputs))))(*inputs)
    for a, b in zip(got, expected):
        torch.testing.assert_close(a, b)
    # Per-sample gradients: vmap over grad, against one autograd call per sample.
    batch = torch.randn(2, *inputs[0].shape, dtype=torch.float64)
    per_sample = torch.func.vmap(torch.func.grad(lambda first: fn(first, *inputs[1:])))(batch)
    for sample, got_sample in zip(batch, per_sample):
        torch.testing.assert_close(got_sample, value_and_grads(fn, [sample, *inputs[1:]])[1][0])
    jacobian = torch.func.jacrev(lambda first: fn(first, *inputs[1:]))(inputs[0])
    torch.testing.assert_close(jacobian, expected[0])


def test_vmap_with_dropout_needs_a_randomness_mode(graph):
    s_src, s_dst, h = gat_inputs(graph)

    def one(h_src):
        return gat_attention(*graph.args(), s_src, s_dst, None, h_src, 0.2, 0.5, True)[0]

    batch = h.expand(2, *h.shape)
    with pytest.raises(RuntimeError, match='randomness'):
        torch.func.vmap(one)(batch)
    same = torch.func.vmap(one, randomness='same')(batch)
    assert torch.equal(same[0], same[1])
    different = torch.func.vmap(one, randomness='different')(batch)
    assert not torch.equal(different[0], different[1])


class LargestTensor(TorchDispatchMode):
    """Records the largest tensor any operation returns."""

    def __init__(self):
        super().__init__()
        self.largest = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in torch.utils._pytree.tree_leaves(out):
            if isinstance(t, torch.Tensor):
                self.largest = max(self.largest, t.numel())
        return out


@pytest.mark.parametrize('kind', ['gat', 'gatv2'])
def test_no_tensor_of_e_h_c_elements_is_created(kind):
    num_nodes, num_edges, heads, channels = 40, 6000, 4, 16
    graph = sorted_graph(random_edges(num_nodes, num_nodes, num_edges, seed=1), num_nodes,
                         num_nodes)
    if kind == 'gat':
        inputs = [torch.randn(num_nodes, heads), torch.randn(num_nodes, heads),
                  torch.randn(num_edges, heads), torch.randn(num_nodes, heads, channels)]
        fn = lambda *x: gat_attention(*graph.args(), *x, 0.2, 0.5, True)   # noqa: E731
    else:
        inputs = [torch.randn(num_nodes, heads, channels), torch.randn(num_nodes, heads, channels),
                  torch.randn(heads, channels), torch.randn(num_edges, 3),
                  torch.randn(heads * channels, 3), torch.randn(num_nodes, heads, channels)]
        fn = lambda *x: gatv2_attention(*graph.args(), *x, 0.2, 0.5, True)   # noqa: E731
    leaves = [t.requires_grad_() for t in inputs]
    with LargestTensor() as mode:
        out, alpha = fn(*leaves)
        (out.square().sum() + alpha.sum()).backward()
    # E x H = 24,000 and E x D = 18,000 are expected; E x H x C would be 384,000.
    assert mode.largest <= num_edges * heads
    assert all(t.grad is not None for t in leaves)

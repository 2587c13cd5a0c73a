"""gradcheck of the native ops in float64 (with and without attention dropout), and
determinism: repeated backward passes and different thread counts give identical bits."""
import pytest
import torch

from gat_pyg.kernels import gat_attention, gatv2_attention
from kernel_reference import OPS as ops
from kernel_reference import (GRAPHS, gat_reference, gatv2_reference, random_edges,
                              sorted_graph)


def randn(shape, seed, dtype=torch.float64):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=gen, dtype=dtype).requires_grad_()


@pytest.fixture(scope='module')
def graph():
    return sorted_graph(*GRAPHS['more_targets'])   # bipartite, with isolated targets


def gat_args(graph, heads=2, channels=3):
    return (randn((graph.num_src, heads), 1), randn((graph.num_dst, heads), 2),
            randn((graph.num_edges, heads), 3), randn((graph.num_src, heads, channels), 4))


def gatv2_args(graph, heads=2, channels=3, edge_dim=2):
    return (randn((graph.num_src, heads, channels), 1), randn((graph.num_dst, heads, channels), 2),
            randn((heads, channels), 3), randn((graph.num_edges, edge_dim), 4),
            randn((heads * channels, edge_dim), 5), randn((graph.num_src, heads, channels), 6))


@pytest.mark.parametrize('dropout', [0.0, 0.4])
def test_gradcheck_gat_op(graph, dropout):
    seed = torch.tensor(1234)

    def fn(s_src, s_dst, s_edge, h_src):
        return ops.gat_forward(*graph.args(), s_src, s_dst, s_edge, h_src, 0.2, dropout,
                               seed if dropout else None)

    assert torch.autograd.gradcheck(fn, gat_args(graph))


@pytest.mark.parametrize('dropout', [0.0, 0.4])
def test_gradcheck_gatv2_op(graph, dropout):
    seed = torch.tensor(99)

    def fn(x_l, x_r, att, edge_attr, w_edge, h_src):
        return ops.gatv2_forward(*graph.args(), x_l, x_r, att, edge_attr, w_edge, h_src, 0.2,
                                 dropout, seed if dropout else None)

    assert torch.autograd.gradcheck(fn, gatv2_args(graph))


def test_gradcheck_attention_dropout_op():
    alpha = randn((7, 3), 0)
    assert torch.autograd.gradcheck(lambda a: ops.attention_dropout(a, 0.5, torch.tensor(5)),
                                    (alpha, ))


@pytest.mark.parametrize('kind', ['gat', 'gatv2'])
def test_gradcheck_public_functions_with_seeded_dropout(graph, kind):
    """The wrappers draw the seed from torch's generator: re-seeding before each call makes the
    mask the same in every evaluation gradcheck makes."""
    def fn(*args):
        torch.manual_seed(0)
        if kind == 'gat':
            return gat_attention(*graph.args(), *args, 0.2, 0.5, True)
        return gatv2_attention(*graph.args(), *args, 0.2, 0.5, True)

    assert torch.autograd.gradcheck(fn, gat_args(graph) if kind == 'gat' else gatv2_args(graph))


@pytest.mark.parametrize('used', ['out', 'alpha'])
@pytest.mark.parametrize('kind', ['gat', 'gatv2'])
def test_gradients_when_only_one_output_is_used(graph, kind, used):
    """The unused output's gradient is never materialised; the other one still flows."""
    if kind == 'gat':
        args = gat_args(graph)
        native = gat_attention(*graph.args(), *args, 0.2)
        reference = gat_reference(graph, *args, 0.2)
    else:
        args = gatv2_args(graph)
        native = gatv2_attention(*graph.args(), *args, 0.2)
        reference = gatv2_reference(graph, *args, 0.2)
    pick = 0 if used == 'out' else 1
    got = torch.autograd.grad(native[pick].square().sum(), args, allow_unused=True)
    expected = torch.autograd.grad(reference[pick].square().sum(), args, allow_unused=True)
    for a, b, leaf in zip(got, expected, args):
        torch.testing.assert_close(a, torch.zeros_like(leaf) if b is None else b)


def big_graph():
    """Large enough to be split into many row blocks (so threads and partial sums matter)."""
    return sorted_graph(random_edges(3000, 2500, 40000, seed=5), 3000, 2500)


def run(kind, graph, threads, dropout=0.3):
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        torch.manual_seed(7)
        if kind == 'gat':
            args = gat_args(graph, 4, 8)
            args = [a.detach().float().requires_grad_() for a in args]
            out, alpha = gat_attention(*graph.args(), *args, 0.2, dropout, True,
                                       message_dropout=dropout)
        else:
            args = gatv2_args(graph, 4, 8, edge_dim=5)
            args = [a.detach().float().requires_grad_() for a in args]
            out, alpha = gatv2_attention(*graph.args(), *args, 0.2, dropout, True,
                                         message_dropout=dropout)
        loss = out.square().sum() + (alpha * torch.arange(alpha.numel()).view_as(alpha)).sum()
        grads = torch.autograd.grad(loss, args)
        return [out, alpha, *grads]
    finally:
        torch.set_num_threads(previous)


@pytest.mark.parametrize('kind', ['gat', 'gatv2'])
def test_two_backward_passes_are_bit_identical(kind):
    graph = big_graph()
    for first, second in zip(run(kind, graph, 2), run(kind, graph, 2)):
        assert torch.equal(first, second)


@pytest.mark.parametrize('kind', ['gat', 'gatv2'])
def test_one_and_two_threads_give_identical_results(kind):
    graph = big_graph()
    for one, two in zip(run(kind, graph, 1), run(kind, graph, 2)):
        assert torch.equal(one, two)


@pytest.mark.parametrize('message_dropout', [0.0, 0.5])
def test_gatv2_with_h_src_being_x_l_gives_the_summed_gradient(graph, message_dropout):
    """GATv2Conv passes one tensor as x_l and h_src: backward then writes both gradients into one
    buffer (without message dropout); the result equals passing two equal tensors and adding
    their gradients, and gradcheck holds for the shared call."""
    x_l, x_r, att, edge_attr, w_edge, _ = gatv2_args(graph)
    seed = torch.tensor(7)

    def shared(x_l, x_r, att):
        return ops.gatv2_forward(*graph.args(), x_l, x_r, att, edge_attr.detach(),
                                 w_edge.detach(), x_l, 0.2, 0.0, None, message_dropout,
                                 seed if message_dropout else None)

    def separate(x_l, h_src, x_r, att):
        return ops.gatv2_forward(*graph.args(), x_l, x_r, att, edge_attr.detach(),
                                 w_edge.detach(), h_src, 0.2, 0.0, None, message_dropout,
                                 seed if message_dropout else None)

    grad = randn((graph.num_dst, 2, 3), 8).detach()
    shared(x_l, x_r, att)[0].backward(grad)
    x_l2 = x_l.detach().clone().requires_grad_()
    h_src = x_l.detach().clone().requires_grad_()
    separate(x_l2, h_src, x_r.detach().clone(), att.detach().clone())[0].backward(grad)
    torch.testing.assert_close(x_l.grad, x_l2.grad + h_src.grad)
    assert torch.autograd.gradcheck(shared, (x_l.detach().clone().requires_grad_(), x_r, att))

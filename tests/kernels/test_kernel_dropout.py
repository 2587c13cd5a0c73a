"""Attention dropout inside the fused ops: the kept fraction, the formula with the mask, seeding."""
import math

import pytest
import torch

from gat_pyg.kernels import gat_attention, gatv2_attention
from kernel_reference import (GRAPHS, gat_reference, gatv2_reference, random_edges,
                              sorted_graph)


def randn(shape, seed, dtype=torch.float64):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=gen, dtype=dtype).requires_grad_()


@pytest.mark.parametrize('p', [0.1, 0.6])
def test_kept_fraction_matches_one_minus_p(p):
    heads = 4
    graph = sorted_graph(random_edges(500, 500, 25000, seed=3), 500, 500)
    s_src = torch.randn(500, heads)
    h = torch.randn(500, heads, 2)
    torch.manual_seed(0)
    _, alpha = gat_attention(*graph.args(), s_src, None, None, h, 0.2, p, True)
    kept = alpha.ne(0).double()
    n = kept.numel()
    # Six standard deviations of a binomial proportion: fails by chance with probability 2e-9.
    bound = 6 * math.sqrt(p * (1 - p) / n)
    assert abs(kept.mean().item() - (1 - p)) < bound
    for head in range(heads):   # each head keeps its own share too
        assert abs(kept[:, head].mean().item() - (1 - p)) < 6 * math.sqrt(p * (1 - p) / (n / heads))


@pytest.mark.parametrize('kind', ['gat', 'gatv2'])
def test_dropout_equals_the_formula_with_the_same_mask(kind):
    graph = sorted_graph(*GRAPHS['random'])
    p = 0.5
    if kind == 'gat':
        inputs = (randn((9, 3), 1), randn((9, 3), 2), randn((graph.num_edges, 3), 3),
                  randn((9, 3, 4), 4))
        native = lambda *x: gat_attention(*graph.args(), *x, 0.2, p, True)   # noqa: E731
        reference = lambda *x, keep: gat_reference(graph, *x, 0.2, keep, p)   # noqa: E731
    else:
        inputs = (randn((9, 3, 4), 1), randn((9, 3, 4), 2), randn((3, 4), 3),
                  randn((graph.num_edges, 2), 4), randn((12, 2), 5), randn((9, 3, 4), 6))
        native = lambda *x: gatv2_attention(*graph.args(), *x, 0.2, p, True)   # noqa: E731
        reference = lambda *x, keep: gatv2_reference(graph, *x, 0.2, keep, p)   # noqa: E731
    torch.manual_seed(3)
    out, alpha = native(*inputs)
    keep = alpha.detach().ne(0).double()
    assert 0 < keep.mean() < 1
    ref_out, ref_alpha = reference(*inputs, keep=keep)
    torch.testing.assert_close(out, ref_out)
    torch.testing.assert_close(alpha, ref_alpha)
    weight = torch.randn(alpha.shape, dtype=alpha.dtype)
    grads = torch.autograd.grad(out.square().sum() + (alpha * weight).sum(), inputs)
    expected = torch.autograd.grad(ref_out.square().sum() + (ref_alpha * weight).sum(), inputs)
    for got, want in zip(grads, expected):
        torch.testing.assert_close(got, want)


def _train_step(seed, graph, inputs):
    torch.manual_seed(seed)
    leaves = [t.detach().clone().requires_grad_() for t in inputs]
    out, alpha = gatv2_attention(*graph.args(), *leaves[:3], None, None, leaves[3], 0.2, 0.5,
                                 True)
    grads = torch.autograd.grad(out.square().sum() + alpha.sum(), leaves)
    return [out, alpha, *grads]


def test_manual_seed_repeats_bit_for_bit_and_other_seeds_differ():
    graph = sorted_graph(*GRAPHS['random'])
    inputs = (randn((9, 2, 3), 1), randn((9, 2, 3), 2), randn((2, 3), 3), randn((9, 2, 3), 4))
    first, again, other = (_train_step(s, graph, inputs) for s in (11, 11, 12))
    for a, b in zip(first, again):
        assert torch.equal(a, b)
    assert not torch.equal(first[1], other[1])


def test_no_dropout_outside_training_and_p_one_gives_zeros():
    graph = sorted_graph(*GRAPHS['random'])
    s_src, h = randn((9, 2), 1), randn((9, 2, 3), 2)
    plain = gat_attention(*graph.args(), s_src, None, None, h, 0.2)
    evaluated = gat_attention(*graph.args(), s_src, None, None, h, 0.2, 0.7, False)
    for a, b in zip(plain, evaluated):
        assert torch.equal(a, b)
    out, alpha = gat_attention(*graph.args(), s_src, None, None, h, 0.2, 1.0, True)
    assert out.eq(0).all() and alpha.eq(0).all()
    (out.sum() + alpha.sum()).backward()
    assert torch.isfinite(s_src.grad).all() and h.grad.eq(0).all()

"""Message dropout inside the fused ops: the summed source features h_src[j, h, c] are dropped
with one mask per (source, head, channel), shared by every edge leaving the source; the scores
see the undropped values; backward regenerates the mask for grad_h_src."""
import math

import pytest
import torch

from gat_pyg.kernels import gat_attention, gatv2_attention
from kernel_reference import (GRAPHS, gat_reference, gatv2_reference, random_edges,
                              sorted_graph)

from kernel_reference import OPS as ops  # noqa: E402


def randn(shape, seed, dtype=torch.float64, grad=True):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=gen, dtype=dtype).requires_grad_(grad)


def fan_out_graph(num_src, fan_out):
    """Source j sends one edge to each of its own fan_out targets, which have no other edge:
    out[target] = (message-dropped) h_src[j], whatever the scores are."""
    src = torch.arange(num_src).repeat_interleave(fan_out)
    dst = torch.arange(num_src * fan_out)
    return sorted_graph(torch.stack([src, dst]), num_src, num_src * fan_out)


def message_mask(shape, p, seed, dtype=torch.float64):
    """keep / (1 - p) for h_src of `shape` [N_src, H, C], read through the op on a graph where
    every source has one target of its own and h_src is all ones."""
    num_src, heads, _ = shape
    graph = fan_out_graph(num_src, 1)
    out, _ = ops.gat_forward(graph.ptr, graph.src, None, None, None,
                             torch.zeros(num_src, heads, dtype=dtype), None, None,
                             torch.ones(shape, dtype=dtype), 0.2, 0.0, None, p, seed)
    return out


@pytest.mark.parametrize('p', [0.1, 0.6])
def test_kept_fraction_per_source_head_and_channel(p):
    num_src, fan_out, heads, channels = 400, 3, 4, 8
    graph = fan_out_graph(num_src, fan_out)
    s_src = torch.randn(num_src, heads)
    h = torch.ones(num_src, heads, channels)
    torch.manual_seed(0)
    out, alpha = gat_attention(*graph.args(), s_src, None, None, h, 0.2, 0.0, True,
                               message_dropout=p)
    assert alpha.eq(1).all()                       # one edge per target: attention is 1
    values = out.view(num_src, fan_out, heads, channels)
    # Every edge leaving a source sees the same mask ...
    assert torch.equal(values, values[:, :1].expand_as(values))
    mask = values[:, 0]
    # ... whose entries are 0 or 1 / (1 - p), kept with probability 1 - p (six standard
    # deviations of a binomial proportion), for every head and channel alike.
    assert torch.isin(mask, torch.tensor([0.0, 1 / (1 - p)])).all()
    kept = mask.ne(0).double()
    bound = 6 * math.sqrt(p * (1 - p) / kept.numel())
    assert abs(kept.mean().item() - (1 - p)) < bound
    for head in range(heads):
        per_head = kept[:, head]
        assert abs(per_head.mean().item() - (1 - p)) < 6 * math.sqrt(p * (1 - p) / per_head.numel())


@pytest.mark.parametrize('kind', ['gat', 'gatv2'])
@pytest.mark.parametrize('p_att', [0.0, 0.5])
def test_equals_the_formula_with_the_regenerated_mask(kind, p_att):
    """Outputs, attention and every gradient equal the plain formula with h_src replaced by
    h_src * keep / (1 - p) in the sum only (float64, the ops called with explicit seeds)."""
    graph = sorted_graph(*GRAPHS['random'])
    p, seed, message_seed = 0.4, torch.tensor(11), torch.tensor(12)
    heads, channels = 3, 4
    mask = message_mask((graph.num_src, heads, channels), p, message_seed)
    assert 0 < mask.ne(0).double().mean() < 1
    if kind == 'gat':
        inputs = (randn((9, heads), 1), randn((9, heads), 2), randn((graph.num_edges, heads), 3),
                  randn((9, heads, channels), 4))

        def native(*x):
            return ops.gat_forward(*graph.args(), *x, 0.2, p_att, seed, p, message_seed)

        def reference(s_src, s_dst, s_edge, h_src, keep):
            return gat_reference(graph, s_src, s_dst, s_edge, h_src * mask, 0.2, keep, p_att)
    else:
        inputs = (randn((9, heads, channels), 1), randn((9, heads, channels), 2),
                  randn((heads, channels), 3), randn((graph.num_edges, 2), 4),
                  randn((heads * channels, 2), 5))

        def native(*x):   # h_src is x_l: the scores see it whole, the sum dropped
            return ops.gatv2_forward(*graph.args(), *x, x[0], 0.2, p_att, seed, p, message_seed)

        def reference(x_l, x_r, att, edge_attr, w_edge, keep):
            return gatv2_reference(graph, x_l, x_r, att, edge_attr, w_edge, x_l * mask, 0.2,
                                   keep, p_att)
    out, alpha = native(*inputs)
    if p_att:
        alpha = ops.attention_dropout(alpha, p_att, seed)
    keep = alpha.detach().ne(0).double()
    ref_out, ref_alpha = reference(*inputs, keep=keep)
    torch.testing.assert_close(out, ref_out)
    torch.testing.assert_close(alpha, ref_alpha)
    weight = randn(alpha.shape, 7, grad=False)
    grads = torch.autograd.grad(out.square().sum() + (alpha * weight).sum(), inputs)
    expected = torch.autograd.grad(ref_out.square().sum() + (ref_alpha * weight).sum(), inputs)
    for got, want in zip(grads, expected):
        torch.testing.assert_close(got, want)


@pytest.mark.parametrize('heads,channels', [(8, 8), (1, 7), (3, 5)])
@pytest.mark.parametrize('dtype', [torch.float32, torch.bfloat16])
def test_vectorised_shapes_read_the_dropped_values(heads, channels, dtype):
    """The vectorised paths (float32 / bfloat16) against the formula, GAT and GATv2."""
    graph = sorted_graph(random_edges(60, 50, 400, seed=4), 60, 50)
    p, message_seed = 0.3, torch.tensor(5)
    mask = message_mask((60, heads, channels), p, message_seed).float()
    narrow = lambda t: t.detach().to(dtype).requires_grad_()   # noqa: E731
    wide = lambda t: t.detach().to(dtype).float().requires_grad_()   # noqa: E731
    tol = dict(atol=1e-5, rtol=1e-5) if dtype == torch.float32 else dict(atol=3e-2, rtol=3e-2)
    s_src, s_dst, h = randn((60, heads), 1), randn((50, heads), 2), randn((60, heads, channels), 3)
    out, _ = ops.gat_forward(*graph.args(), narrow(s_src), narrow(s_dst), None, narrow(h), 0.2,
                             0.0, None, p, message_seed)
    ref, _ = gat_reference(graph, wide(s_src), wide(s_dst), None, wide(h) * mask, 0.2)
    torch.testing.assert_close(out.float(), ref, **tol)
    x_l, x_r, att = randn((60, heads, channels), 4), randn((50, heads, channels), 5), \
        randn((heads, channels), 6)
    leaves = [narrow(x_l), narrow(x_r), narrow(att)]
    out, alpha = ops.gatv2_forward(*graph.args(), *leaves, None, None, leaves[0], 0.2, 0.0,
                                   None, p, message_seed)
    wides = [wide(x_l), wide(x_r), wide(att)]
    ref, ref_alpha = gatv2_reference(graph, *wides, None, None, wides[0] * mask, 0.2)
    torch.testing.assert_close(out.float(), ref, **tol)
    torch.testing.assert_close(alpha.float(), ref_alpha, **tol)
    weight = torch.randn(out.shape)
    got = torch.autograd.grad((out.float() * weight).sum(), leaves)
    want = torch.autograd.grad((ref * weight).sum(), wides)
    for a, b in zip(got, want):
        scale = b.abs().max().clamp_min(1.0)
        torch.testing.assert_close(a.float() / scale, b / scale, **tol)


@pytest.mark.parametrize('kind', ['gat', 'gatv2'])
def test_gradcheck_with_a_fixed_seed(kind):
    graph = sorted_graph(*GRAPHS['more_targets'])
    seed, message_seed = torch.tensor(3), torch.tensor(4)
    if kind == 'gat':
        inputs = (randn((graph.num_src, 2), 1), randn((graph.num_dst, 2), 2),
                  randn((graph.num_edges, 2), 3), randn((graph.num_src, 2, 3), 4))

        def fn(*x):
            return ops.gat_forward(*graph.args(), *x, 0.2, 0.3, seed, 0.4, message_seed)
    else:
        inputs = (randn((graph.num_src, 2, 3), 1), randn((graph.num_dst, 2, 3), 2),
                  randn((2, 3), 3), randn((graph.num_edges, 2), 4), randn((6, 2), 5))

        def fn(*x):
            return ops.gatv2_forward(*graph.args(), *x, x[0], 0.2, 0.3, seed, 0.4,
                                     message_seed)
    assert torch.autograd.gradcheck(fn, inputs)


def _step(kind, seed, graph, inputs, p=0.5):
    torch.manual_seed(seed)
    leaves = [t.detach().clone().requires_grad_() for t in inputs]
    if kind == 'gat':
        out, alpha = gat_attention(*graph.args(), *leaves, 0.2, 0.5, True, message_dropout=p)
    else:
        out, alpha = gatv2_attention(*graph.args(), *leaves, None, None, leaves[0], 0.2, 0.5,
                                     True, message_dropout=p)
    grads = torch.autograd.grad(out.square().sum() + alpha.sum(), leaves)
    return [out, alpha, *grads]


@pytest.mark.parametrize('kind', ['gat', 'gatv2'])
def test_manual_seed_repeats_bit_for_bit_and_other_seeds_differ(kind):
    graph = sorted_graph(*GRAPHS['random'])
    if kind == 'gat':
        inputs = (randn((9, 2), 1), randn((9, 2), 2), randn((graph.num_edges, 2), 3),
                  randn((9, 2, 3), 4))
    else:
        inputs = (randn((9, 2, 3), 1), randn((9, 2, 3), 2), randn((2, 3), 3))
    first, again, other = (_step(kind, s, graph, inputs) for s in (11, 11, 12))
    for a, b in zip(first, again):
        assert torch.equal(a, b)
    assert not torch.equal(first[0], other[0])


@pytest.mark.parametrize('kind', ['gat', 'gatv2'])
def test_gradcheck_of_the_wrappers_with_a_seeded_generator(kind):
    graph = sorted_graph(*GRAPHS['more_targets'])
    if kind == 'gat':
        inputs = (randn((graph.num_src, 2), 1), randn((graph.num_dst, 2), 2), None,
                  randn((graph.num_src, 2, 3), 4))

        def fn(s_src, s_dst, h_src):
            torch.manual_seed(0)
            return gat_attention(*graph.args(), s_src, s_dst, None, h_src, 0.2, 0.5, True,
                                 message_dropout=0.5)
        inputs = tuple(t for t in inputs if t is not None)
    else:
        inputs = (randn((graph.num_src, 2, 3), 1), randn((graph.num_dst, 2, 3), 2),
                  randn((2, 3), 3))

        def fn(x_l, x_r, att):
            torch.manual_seed(0)
            return gatv2_attention(*graph.args(), x_l, x_r, att, None, None, x_l, 0.2, 0.5,
                                   True, message_dropout=0.5)
    assert torch.autograd.gradcheck(fn, inputs)


def test_no_message_dropout_outside_training_and_p_one_drops_every_message():
    graph = sorted_graph(*GRAPHS['random'])
    s_src, h = randn((9, 2), 1), randn((9, 2, 3), 2)
    plain = gat_attention(*graph.args(), s_src, None, None, h, 0.2)
    evaluated = gat_attention(*graph.args(), s_src, None, None, h, 0.2, 0.0, False,
                              message_dropout=0.7)
    for a, b in zip(plain, evaluated):
        assert torch.equal(a, b)
    out, alpha = gat_attention(*graph.args(), s_src, None, None, h, 0.2, 0.0, True,
                               message_dropout=1.0)
    assert out.eq(0).all()
    torch.testing.assert_close(alpha, plain[1])   # the attention is untouched
    (out.sum() + alpha.sum()).backward()
    assert h.grad.eq(0).all() and torch.isfinite(s_src.grad).all()


def test_message_dropout_is_checked():
    graph = sorted_graph(*GRAPHS['random'])
    s_src, h = randn((9, 2), 1), randn((9, 2, 3), 2)
    with pytest.raises(ValueError, match='^message_dropout'):
        gat_attention(*graph.args(), s_src, None, None, h, 0.2, 0.0, True, message_dropout=1.5)
    with pytest.raises(TypeError, match='^message_dropout'):
        gat_attention(*graph.args(), s_src, None, None, h, 0.2, 0.0, True, message_dropout='x')
    with pytest.raises(RuntimeError, match='message_dropout > 0 needs a message_seed'):
        ops.gat_forward(*graph.args(), s_src, None, None, h, 0.2, 0.0, None, 0.5, None)

r"""Every operator's pure-torch reference under the operator's own name and arguments, backward
operators included: what each backend's kernels are tested against (the Triton ones in Triton's
interpreter and, by ``benchmarks/gpu.py``, on a GPU).

The forward functions are the operators' references (:mod:`gat_pyg.kernels.attend`,
:mod:`~gat_pyg.kernels.dropout`, :mod:`~gat_pyg.kernels.head_scores`,
:mod:`~gat_pyg.kernels.sparse_linear`); a backward function differentiates its forward reference
with autograd and returns what the backward operator returns (an empty tensor for a gradient
that ``output_mask`` does not ask for, and GATv2's merged ``x_l`` / ``h_src`` gradient as
:func:`gat_pyg.kernels.attend.merges_h_src` decides). The references build ``E x H x C``
tensors: for small graphs.
"""
from typing import Optional, Sequence

import torch
from torch import Tensor

from gat_pyg.kernels.attend import gat_reference as gat_forward
from gat_pyg.kernels.attend import gatv2_reference as gatv2_forward
from gat_pyg.kernels.attend import merges_h_src
from gat_pyg.kernels.dispatch import operator

attention_dropout = operator('attention_dropout').reference
feature_dropout = operator('feature_dropout').reference
sparse_dropout = operator('sparse_dropout').reference
head_scores = operator('head_scores').reference
sparse_linear = operator('sparse_linear').reference


def _grads(forward, inputs: Sequence[Optional[Tensor]], grads: Sequence[Optional[Tensor]],
           wanted: Sequence[bool]) -> list:
    """The gradients of ``forward(inputs)`` (a tensor or a tuple) for upstream ``grads``, for
    the wanted inputs that are given; ``None`` for the others."""
    leaves = [t.detach().requires_grad_(bool(w)) if t is not None else None
              for t, w in zip(inputs, wanted)]
    with torch.enable_grad():
        outputs = forward(leaves)
        outputs = outputs if isinstance(outputs, tuple) else (outputs, )
        loss = sum((o * g).sum() for o, g in zip(outputs, grads) if g is not None)
        targets = [t for t, w in zip(leaves, wanted) if t is not None and w]
        got = iter(torch.autograd.grad(loss, targets, allow_unused=True) if targets else [])
    result = []
    for t, w in zip(leaves, wanted):
        if t is None or not w:
            result.append(None)
        else:
            g = next(got)
            result.append(torch.zeros_like(t) if g is None else g)
    return result


def _empty_for_none(grads: list, like: Tensor) -> tuple:
    return tuple(g if g is not None else like.new_empty(0) for g in grads)


def gat_backward(grad_out, grad_alpha, ptr, src, t_ptr, t_col, t_perm, s_src, s_dst, s_edge,
                 h_src, alpha, negative_slope, dropout, seed, output_mask, message_dropout=0.0,
                 message_seed=None):
    """``(grad_s_src, grad_s_dst, grad_s_edge, grad_h_src)`` of :func:`gat_forward`."""
    def forward(x):
        return gat_forward(ptr, src, None, None, None, *x, negative_slope, dropout, seed,
                           message_dropout, message_seed)
    grads = _grads(forward, (s_src, s_dst, s_edge, h_src), (grad_out, grad_alpha), output_mask)
    return _empty_for_none(grads, h_src)


def gatv2_backward(grad_out, grad_alpha, ptr, src, t_ptr, t_col, t_perm, x_l, x_r, att,
                   edge_attr, w_edge, h_src, alpha, negative_slope, dropout, seed, output_mask,
                   message_dropout=0.0, message_seed=None, merge_h_src=False):
    """``(grad_x_l, grad_x_r, grad_att, grad_edge_attr, grad_w_edge, grad_h_src)`` of
    :func:`gatv2_forward`, ``x_l`` and ``h_src`` as separate inputs; merged into ``grad_x_l``
    when :func:`~gat_pyg.kernels.attend.merges_h_src` says so."""
    def forward(x):
        return gatv2_forward(ptr, src, None, None, None, *x, negative_slope, dropout, seed,
                             message_dropout, message_seed)
    grads = _grads(forward, (x_l, x_r, att, edge_attr, w_edge, h_src), (grad_out, grad_alpha),
                   output_mask)
    if merges_h_src(output_mask, message_dropout, merge_h_src):
        grads[0], grads[5] = grads[0] + grads[5], None
    return _empty_for_none(grads, x_l)


def head_scores_backward(grad, x, att, output_mask):
    """``(grad_x, grad_att)`` of :func:`head_scores`."""
    return _empty_for_none(_grads(lambda t: head_scores(*t), (x, att), (grad, ), output_mask), x)


def sparse_linear_backward(grad_out, row, col, values, weight, output_mask):
    """``(grad_values, grad_weight)`` of :func:`sparse_linear`."""
    grads = _grads(lambda t: sparse_linear(row, col, *t, grad_out.shape[0]), (values, weight),
                   (grad_out, ), output_mask)
    return _empty_for_none(grads, values)

r"""GAT's per-node, per-head half-scores: ``s[n, h] = sum_c x[n, h, c] * att[h, c]``.

These are the :math:`\mathbf{a}_s^{\top}\mathbf{\Theta}_s\mathbf{x}_j` and
:math:`\mathbf{a}_t^{\top}\mathbf{\Theta}_t\mathbf{x}_i` halves of the GAT score (Veličković et
al. 2018, `arXiv 1710.10903 <https://arxiv.org/abs/1710.10903>`_; PyG's
``(x * att_src).sum(-1)``): splitting the attention vector ``a = [a_t || a_s]`` makes the score
of an edge a sum of two per-node scalars, computed once per node and head.
"""
import torch
from torch import Tensor

from gat_pyg.kernels.attend import check_features
from gat_pyg.kernels.dispatch import Operator


def _reference(x: Tensor, att: Tensor) -> Tensor:
    return (x * att).sum(-1)


def _fake(x, att):
    return x.new_empty(x.shape[0], x.shape[1])


def _backward_fake(grad, x, att, output_mask):
    return (x.new_empty(x.shape) if output_mask[0] else x.new_empty(0),
            att.new_empty(att.shape) if output_mask[1] else att.new_empty(0))


def _backward(args, saved_outputs, grads, needs, info):
    x, att = args
    if grads[0] is None:
        return None, None
    mask = [needs[0], needs[1]]
    grad_x, grad_att = torch.ops.gat_pyg.head_scores_backward(grads[0].contiguous(), x, att,
                                                             mask)
    return (grad_x if mask[0] else None), (grad_att if mask[1] else None)


HEAD_SCORES = Operator('head_scores(Tensor x, Tensor att) -> Tensor', _fake, _reference,
                       like=0, backward=_backward)
HEAD_SCORES_BACKWARD = Operator(
    'head_scores_backward(Tensor grad, Tensor x, Tensor att, bool[2] output_mask) '
    '-> (Tensor grad_x, Tensor grad_att)', _backward_fake)


def head_scores(x: Tensor, att: Tensor, *, strict=None, check: bool = True) -> Tensor:
    r"""``s[n, h] = sum_c x[n, h, c] * att[h, c]``. Differentiable in ``x`` and ``att``
    (to any order); the sum over nodes of ``att``'s gradient has a fixed order on the CPU.

    Args:
        x (Tensor): ``[N, H, C]`` projected node features.
        att (Tensor): ``[H, C]`` attention vector of ``x``'s dtype and device.
        strict (str, optional): Refuse to run without a kernel, naming it.
        check (bool): Check the arguments first. (default: ``True``)

    Returns:
        ``[N, H]`` scores.

    Raises:
        TypeError / ValueError: arguments of the wrong kind, dtype, device or shape.
    """
    if check:
        x = check_features('x', x, 3)
        att = check_features('att', att, 2, x, tuple(x.shape[1:]), 'H, C')
    return HEAD_SCORES(x, att, strict=strict)

r"""GAT's per-node, per-head half-scores in Triton (``torch.ops.gat_pyg.head_scores`` and
``head_scores_backward``; the C++ kernels are ``csrc/scores.cpp``).

.. math::
    s_{n,h} = \sum_c x_{n,h,c}\, a_{h,c}

GAT's attention logit ``a^T [W x_i || W x_j]`` splits into ``<a_dst, W x_i> + <a_src, W x_j>``
(Velickovic et al., arXiv 1710.10903, eq. 1; the split as in DGL's and PyG's ``GATConv``), so
these per-node scalars are computed once per node and gathered per edge by the attention
kernel. Backward: ``grad_x[n,h,c] = grad[n,h] * att[h,c]`` and
``grad_att[h,c] = sum_n grad[n,h] * x[n,h,c]``; the latter is summed per program (a fixed
range of nodes, at most :data:`MAX_PROGRAMS` programs) into ``[programs, H*C]`` partials, which
are then added in program order (:func:`~.attend_kernel.sum_partials`): deterministic, no
atomics.

Grid: forward, one program per block of up to :data:`NODE_BLOCK` nodes (a ``[nodes, H, C]``
tile, heads and channels padded to powers of two and masked); backward, one program per range
of such blocks. Accumulation in float32 (float64 for float64).
"""
from typing import Sequence, Tuple

import torch
import triton
import triton.language as tl
from torch import Tensor

from gat_pyg.kernels.triton import _common
from gat_pyg.kernels.triton.attend_kernel import sum_partials

NODE_BLOCK = 64
# Programs of the backward (partial sums of grad_att).
MAX_PROGRAMS = 4096


def _node_block(width: int) -> int:
    return max(1, min(NODE_BLOCK, _common.prev_pow2(max(_common.TILE_ELEMENTS // width, 1))))


@triton.jit
def _scores_kernel(x, att, s, N, H, C, ACC: tl.constexpr, BN: tl.constexpr, BH: tl.constexpr,
                   BC: tl.constexpr):
    nodes = tl.program_id(0).to(tl.int64) * BN + tl.arange(0, BN)
    offs_h = tl.arange(0, BH)
    offs_c = tl.arange(0, BC)
    mask_h = offs_h < H
    hc = offs_h[:, None] * C + offs_c[None, :]
    mask_hc = mask_h[:, None] & (offs_c[None, :] < C)
    mask_n = nodes < N
    a = tl.load(att + hc, mask=mask_hc, other=0).to(ACC)
    xt = tl.load(x + nodes[:, None, None] * (H * C) + hc[None, :, :],
                 mask=mask_n[:, None, None] & mask_hc[None, :, :], other=0).to(ACC)
    out = tl.sum(xt * a[None, :, :], axis=2)
    tl.store(s + nodes[:, None] * H + offs_h[None, :], out.to(s.dtype.element_ty),
             mask=mask_n[:, None] & mask_h[None, :])


@triton.jit(do_not_specialize=['nodes_per_program'])
def _scores_backward_kernel(grad, x, att, grad_x, partial, N, H, C, nodes_per_program,
                            WANT_X: tl.constexpr, WANT_ATT: tl.constexpr, ACC: tl.constexpr,
                            BN: tl.constexpr, BH: tl.constexpr, BC: tl.constexpr):
    pid = tl.program_id(0).to(tl.int64)
    first = pid * nodes_per_program
    last = tl.minimum(first + nodes_per_program, N)
    offs_h = tl.arange(0, BH)
    offs_c = tl.arange(0, BC)
    mask_h = offs_h < H
    hc = offs_h[:, None] * C + offs_c[None, :]
    mask_hc = mask_h[:, None] & (offs_c[None, :] < C)
    a = tl.load(att + hc, mask=mask_hc, other=0).to(ACC)
    acc = tl.zeros([BH, BC], ACC)
    for n0 in range(first, last, BN):
        nodes = n0 + tl.arange(0, BN)
        mask_n = nodes < last
        m3 = mask_n[:, None, None] & mask_hc[None, :, :]
        g = tl.load(grad + nodes[:, None] * H + offs_h[None, :],
                    mask=mask_n[:, None] & mask_h[None, :], other=0).to(ACC)
        at3 = nodes[:, None, None] * (H * C) + hc[None, :, :]
        if WANT_X:
            tl.store(grad_x + at3, (g[:, :, None] * a[None, :, :]).to(grad_x.dtype.element_ty),
                     mask=m3)
        if WANT_ATT:
            xt = tl.load(x + at3, mask=m3, other=0).to(ACC)
            acc += tl.sum(g[:, :, None] * xt, axis=0)
    if WANT_ATT:
        tl.store(partial + pid * (H * C) + hc, acc, mask=mask_hc)


def _check(x: Tensor, att: Tensor) -> None:
    if not isinstance(x, Tensor) or x.dim() != 3:
        raise RuntimeError('gat_pyg: x must be [N, H, C], got shape '
                           f'{tuple(getattr(x, "shape", ()))}')
    _common.check_float('x', x, None, (-1, -1, -1))
    _common.check_float('att', att, x.dtype, (x.shape[1], x.shape[2]), x.device)


def head_scores(x: Tensor, att: Tensor) -> Tensor:
    """Per-node, per-head scores ``s[n, h] = <x[n, h, :], att[h, :]>``.

    Args:
        x: ``[N, H, C]`` float tensor (float32, float64, bfloat16, float16).
        att: ``[H, C]``, x's dtype and device.

    Returns:
        ``[N, H]`` in x's dtype.

    Raises:
        RuntimeError: wrong shapes, dtypes or devices.
    """
    _check(x, att)
    x, att = x.contiguous(), att.contiguous()
    N, H, C = x.shape
    s = torch.empty(N, H, dtype=x.dtype, device=x.device)
    if N == 0 or H == 0:
        return s
    BH, BC = _common.next_pow2(H), _common.next_pow2(max(C, 1))
    BN = _node_block(BH * BC)
    acc = _common.tl_dtype(_common.acc_dtype(x.dtype))
    _scores_kernel[(triton.cdiv(N, BN), )](x, att, s, N, H, C, ACC=acc, BN=BN, BH=BH, BC=BC)
    return s


def head_scores_backward(grad: Tensor, x: Tensor, att: Tensor,
                         output_mask: Sequence[bool]) -> Tuple[Tensor, Tensor]:
    """Backward of :func:`head_scores`.

    Args:
        grad: ``[N, H]`` gradient of the scores; x, att: the forward inputs.
        output_mask: which of (x, att) need a gradient.

    Returns:
        ``(grad_x [N, H, C], grad_att [H, C])``, an empty tensor for one not wanted;
        ``grad_att`` is 0 when ``N == 0``.

    Raises:
        RuntimeError: wrong shapes, dtypes or devices.
    """
    _check(x, att)
    _common.check_float('grad', grad, x.dtype, (x.shape[0], x.shape[1]), x.device)
    grad, x, att = grad.contiguous(), x.contiguous(), att.contiguous()
    N, H, C = x.shape
    want_x, want_att = bool(output_mask[0]), bool(output_mask[1])
    grad_x = torch.empty_like(x) if want_x else x.new_empty(0)
    grad_att = torch.zeros_like(att) if want_att else att.new_empty(0)
    if N == 0 or H == 0 or C == 0 or not (want_x or want_att):
        return grad_x, grad_att
    BH, BC = _common.next_pow2(H), _common.next_pow2(C)
    BN = _node_block(BH * BC)
    # Programs of NODE_BLOCK-node steps, at most MAX_PROGRAMS of them (each writes one partial
    # sum of grad_att): the split depends on N only, so the sum's order is fixed.
    per_program = triton.cdiv(triton.cdiv(N, BN), MAX_PROGRAMS) * BN
    blocks = triton.cdiv(N, per_program)
    acc_dtype = _common.acc_dtype(x.dtype)
    partial = (torch.empty(blocks, H * C, dtype=acc_dtype, device=x.device) if want_att
               else grad)
    _scores_backward_kernel[(blocks, )](grad, x, att, grad_x if want_x else x, partial, N, H, C,
                                        per_program, WANT_X=want_x, WANT_ATT=want_att,
                                        ACC=_common.tl_dtype(acc_dtype), BN=BN, BH=BH, BC=BC)
    if want_att:
        sum_partials(partial, grad_att)
    return grad_x, grad_att

r"""The fused graph attention of GAT and GATv2 in Triton: forward and backward with the
arguments and results of the C++ operators ``gat_forward`` / ``gat_backward`` /
``gatv2_forward`` / ``gatv2_backward`` (``csrc/ops.cpp``; the math in ``csrc/attention.h``).

Plain meaning, for a destination row ``i`` (edges ``e = ptr[i] .. ptr[i+1]-1``, sources
``j = src[e]``) and a head ``h``::

    score[e,h] = GAT:   LeakyReLU(s_src[j,h] + s_dst[i,h] + s_edge[e,h])
                 GATv2: sum_c att[h,c] * LeakyReLU(z[e,h,c]),
                        z[e,h,:] = x_l[j,h,:] + x_r[i,h,:] + (W_e edge_attr[e])[h,:]
    alpha[e,h] = exp(score[e,h] - max_row) / sum_row exp(score - max_row)
    out[i,h,:] = sum_e alpha[e,h] * keep[e,h] / (1 - p) * h_src[j,h,:]

(GAT: Velickovic et al., arXiv 1710.10903, eq. 3; GATv2: Brody et al., arXiv 2105.14491, eq. 7;
PyG's ``GATConv`` / ``GATv2Conv``). ``keep`` is the attention dropout mask of
:mod:`.hashing` (counter ``e * H + h``). With message dropout, ``h_src`` is first replaced by
``feature_dropout(h_src, message_dropout, message_seed)`` (the same paired mask at
``h_src``'s flat index that the C++ kernels use); the scores do not see it. ``alpha`` is
returned *before* attention dropout. A row without edges gives ``out = 0`` (never NaN).

Backward, with ``g[e,h] = dL/dalpha[e,h]`` and ``gs`` the gradient of the score::

    g[e,h]        = keep/(1-p) * <grad_out[i,h,:], h_src[j,h,:]> + grad_alpha[e,h]
    gs[e,h]       = alpha[e,h] * (g[e,h] - sum_row alpha * g)
    grad_h_src[j] = sum over edges e leaving j of alpha[e] keep/(1-p) grad_out[i]
    GAT:   graw = gs * LeakyReLU'(raw);  grad_s_edge = graw,  grad_s_dst[i] = sum_row graw,
           grad_s_src[j] = sum over edges leaving j of graw
    GATv2: gz[e,h,c] = gs[e,h] att[h,c] LeakyReLU'(z[e,h,c]);  grad_x_r[i] = sum_row gz,
           grad_x_l[j] = sum over edges leaving j of gz,  grad_att = sum_e gs LeakyReLU(z),
           grad_edge_attr[e] = gz[e] (flat H*C) @ W_e,  grad_W_e = sum_e outer(gz[e], edge_attr[e])

Kernel design.

* Forward, grid ``(N_dst,)``: one program per destination row, all heads at once. Why not a
  program per (row, head): a source's row ``h_src[j]`` (``H*C`` values, 256 bytes at 8 x 8
  float32) is then one contiguous read per edge instead of ``H`` reads of ``C`` values, the
  edge's index and score row are read once for all heads, and the programs are ``H`` times
  fewer. Tiles are ``[edges, heads, channels]``, heads and channels padded to powers of two and
  masked, ``edges`` (``BE``) about the mean degree and at most 32, smaller when ``H*C`` is large
  (:func:`._common.edge_block`); rows longer than ``BE`` take several steps. The program
  walks its row's edges in steps of ``BE`` with an online softmax (running max ``m`` and sum
  ``l`` per head, the accumulator rescaled by ``exp(m_old - m_new)`` when the max grows:
  Milakov & Gimelshein 2018, "Online normalizer calculation for softmax"; FlashAttention,
  Dao et al. 2022), forming the score on the fly (GATv2's ``z`` lives in registers: no
  ``E x H x C`` tensor). Scores are stashed in ``alpha`` (float32 / float64; a float32
  ``[E, H]`` scratch for bfloat16 / float16), and a second walk over the row turns them into
  ``alpha = exp(score - m) / l``. A running max of ``-inf`` is replaced by 0 before
  exponentiating, so a row without edges, or whose scores are all ``-inf``, gives zeros.
  Saved for backward: ``alpha`` ``[E, H]`` only.
* Backward, destination pass, grid ``(ceil(N_dst / R),)``: each program takes ``R``
  consecutive rows (``R = 1`` for GAT; for GATv2 ``R`` bounds the number of programs, since
  each keeps partial sums of ``grad_att`` / ``grad_W_e``). Per row a first walk computes ``g``
  (a dot with ``h_src[j]`` per head) and ``sum_row alpha * g``, stashing ``g`` in an ``[E, H]``
  accumulation-type buffer; a second walk forms ``gs``, the variant's gradients that belong to
  the row or the edge, and leaves in the buffer what the source pass reads (GAT: ``graw``,
  GATv2: ``gs``; ``z`` is recomputed, never stored).
* Backward, source pass, grid ``(N_src,)``: one program per source ``j`` walks its edges in the
  transposed order (``t_ptr``, ``t_col`` = target, ``t_perm`` = position in ``alpha``) and sums
  ``grad_h_src[j]`` and ``grad_s_src[j]`` / ``grad_x_l[j]``. Every node-sized output element is
  written by exactly one program: no atomics, so results are the same run to run.
* Parameter gradients (``grad_att``, ``grad_W_e``) are summed per program into
  ``[programs, ...]`` partials, then added in program order by one more kernel
  (:func:`sum_partials`): a fixed order, deterministic.

Within a program, the buffer written by one walk and read by the next is separated by
``tl.debug_barrier()`` (a CTA barrier: the elements may be held by other threads of the
program in the other walk's layout); the in-place partial sums of ``grad_W_e`` likewise, and
that kernel is launched with ``num_stages=1`` so that no load is hoisted above the previous
step's store.

Dtypes: float32 and float64 (accumulation in the same type), bfloat16 and float16 (float32
accumulation; checked on a GPU only: Triton's interpreter rounds to bfloat16 by truncation).
Index tensors int64 or int32 (all offsets computed in int64). Inputs are made contiguous.

Message dropout is applied to ``h_src`` by the dropout kernel before the attention kernel runs
(one ``[N_src, H, C]`` temporary, freed after the call), as the C++ operators do, rather than
hashed per gathered element inside it: ``N_src*H*C / 2`` hashes instead of ``E*H*C / 2``
(20 times fewer at a mean degree of 20), and bit-identical values.

Errors: ``RuntimeError`` (as the C++ operators raise) for a wrong dtype, shape, device, a bad
dropout probability or seed, or bad index contents (verified once per graph, see
:mod:`._common`).
"""
from typing import Optional, Sequence, Tuple

import torch
import triton
import triton.language as tl
from torch import Tensor

from gat_pyg.kernels.triton import _common
from gat_pyg.kernels.triton.dropout_kernel import hash_dropout
from gat_pyg.kernels.triton.hashing import dropout_args, keep_single, seed_base

# Programs of the GATv2 destination pass (each holds one partial sum of the parameter
# gradients): enough to fill a GPU several times over.
MAX_ROW_PROGRAMS = 8192
# Rows summed per step by sum_partials.
_PARTIAL_ROWS = 64

_NO_SPECIALIZE = ['base_lo', 'base_hi', 'threshold', 'rows_per_program']


# --- device functions --------------------------------------------------------------------------

@triton.jit
def _leaky(z, slope):
    return tl.where(z > 0, z, z * slope)


@triton.jit
def _leaky_grad(z, slope):
    # 1 where z > 0, else the slope (aten's leaky_relu_backward).
    return tl.where(z > 0, 1.0, slope)


@triton.jit
def _gat_raw(s_src, s_dst_row, s_edge, edges, j, offs_h, m2, H, HAS_DST: tl.constexpr,
             HAS_EDGE: tl.constexpr, ACC: tl.constexpr):
    """[BE, BH] raw GAT scores (s_src + s_dst) + s_edge, PyG's order of additions."""
    raw = tl.load(s_src + j[:, None] * H + offs_h[None, :], mask=m2, other=0).to(ACC)
    if HAS_DST:
        raw = raw + s_dst_row[None, :]
    if HAS_EDGE:
        raw = raw + tl.load(s_edge + edges[:, None] * H + offs_h[None, :], mask=m2,
                            other=0).to(ACC)
    return raw


@triton.jit
def _add_edge_term(z, edge_attr, w_edge, edges, mask_e, hc, mask_hc, D, ACC: tl.constexpr):
    """z + W_e edge_attr[e] for [BE] edges `edges`, one feature d at a time (the C++ order:
    ((x_r + x_l) + w_0 a_0) + w_1 a_1 ...). W_e is [H*C, D]."""
    for d in range(D):
        a = tl.load(edge_attr + edges * D + d, mask=mask_e, other=0).to(ACC)
        w = tl.load(w_edge + hc * D + d, mask=mask_hc, other=0).to(ACC)
        z = z + w[None, :, :] * a[:, None, None]
    return z


# --- forward -----------------------------------------------------------------------------------

@triton.jit(do_not_specialize=_NO_SPECIALIZE)
def _forward_kernel(
        ptr, src, out, alpha, scores,
        s_src, s_dst, s_edge,
        x_l, x_r, att, edge_attr, w_edge,
        h_src, H, C, D, slope: tl.float64, base_lo, base_hi, threshold, scale: tl.float64,
        V2: tl.constexpr, HAS_DST: tl.constexpr, HAS_EDGE: tl.constexpr,
        DROPOUT: tl.constexpr, H_IS_X_L: tl.constexpr, ACC: tl.constexpr,
        BE: tl.constexpr, BH: tl.constexpr, BC: tl.constexpr):
    i = tl.program_id(0).to(tl.int64)
    start = tl.load(ptr + i).to(tl.int64)
    end = tl.load(ptr + i + 1).to(tl.int64)
    HC = H * C
    slope_ = tl.full([], slope, ACC)
    offs_h = tl.arange(0, BH)
    offs_c = tl.arange(0, BC)
    mask_h = offs_h < H
    hc = offs_h[:, None] * C + offs_c[None, :]                       # [BH, BC]
    mask_hc = mask_h[:, None] & (offs_c[None, :] < C)
    base = seed_base(base_lo, base_hi)

    if V2:
        xr = tl.load(x_r + i * HC + hc, mask=mask_hc, other=0).to(ACC)
        att_t = tl.load(att + hc, mask=mask_hc, other=0).to(ACC)
    else:
        if HAS_DST:
            sd = tl.load(s_dst + i * H + offs_h, mask=mask_h, other=0).to(ACC)
        else:
            sd = tl.zeros([BH], ACC)

    m = tl.full([BH], float('-inf'), ACC)
    l_sum = tl.zeros([BH], ACC)
    acc = tl.zeros([BH, BC], ACC)
    for e0 in range(start, end, BE):
        edges = e0 + tl.arange(0, BE)
        mask_e = edges < end
        m2 = mask_e[:, None] & mask_h[None, :]
        m3 = mask_e[:, None, None] & mask_hc[None, :, :]
        j = tl.load(src + edges, mask=mask_e, other=0).to(tl.int64)
        if V2:
            xl = tl.load(x_l + j[:, None, None] * HC + hc[None, :, :], mask=m3, other=0).to(ACC)
            z = xl + xr[None, :, :]
            if HAS_EDGE:
                z = _add_edge_term(z, edge_attr, w_edge, edges, mask_e, hc, mask_hc, D, ACC)
            s = tl.sum(att_t[None, :, :] * _leaky(z, slope_), axis=2)
        else:
            s = _leaky(_gat_raw(s_src, sd, s_edge, edges, j, offs_h, m2, H, HAS_DST, HAS_EDGE,
                                ACC), slope_)
        s = tl.where(m2, s, float('-inf'))
        tl.store(scores + edges[:, None] * H + offs_h[None, :], s, mask=m2)
        # Online softmax: the new running max; exp(-inf - -inf) is avoided by a max of 0.
        m_new = tl.maximum(m, tl.max(s, axis=0))
        m_safe = tl.where(m_new == float('-inf'), 0.0, m_new)
        p = tl.exp(s - m_safe[None, :])
        corr = tl.exp(m - m_safe)
        l_sum = l_sum * corr + tl.sum(p, axis=0)
        if DROPOUT:
            keep = keep_single(base, edges[:, None] * H + offs_h[None, :], threshold)
            p = p * keep.to(ACC)
        if V2 and H_IS_X_L:
            x = xl          # GATv2Conv aggregates x_l itself: the tile is already loaded
        else:
            x = tl.load(h_src + j[:, None, None] * HC + hc[None, :, :], mask=m3,
                        other=0).to(ACC)
        acc = acc * corr[:, None] + tl.sum(p[:, :, None] * x, axis=0)
        m = m_new

    inv = tl.where(l_sum > 0, 1.0 / l_sum, 0.0)
    res = acc * (inv * tl.full([], scale, ACC))[:, None]
    tl.store(out + i * HC + hc, res.to(out.dtype.element_ty), mask=mask_hc)

    # alpha = exp(score - m) / l from the stashed scores (written above by other threads).
    tl.debug_barrier()
    m_fin = tl.where(m == float('-inf'), 0.0, m)
    for e0 in range(start, end, BE):
        edges = e0 + tl.arange(0, BE)
        m2 = (edges < end)[:, None] & mask_h[None, :]
        at = edges[:, None] * H + offs_h[None, :]
        s = tl.load(scores + at, mask=m2, other=float('-inf')).to(ACC)
        a = tl.exp(s - m_fin[None, :]) * inv[None, :]
        tl.store(alpha + at, a.to(alpha.dtype.element_ty), mask=m2)


# --- backward: destination rows ----------------------------------------------------------------

@triton.jit(do_not_specialize=_NO_SPECIALIZE)
def _backward_rows_kernel(
        ptr, src, grad_out, grad_alpha, alpha, values, gbuf,
        s_src, s_dst, s_edge,
        x_l, x_r, att, edge_attr, w_edge,
        grad_row, grad_edge, partial_att, partial_w,
        N, H, C, D, rows_per_program, slope: tl.float64, base_lo, base_hi, threshold,
        scale: tl.float64,
        V2: tl.constexpr, HAS_DST: tl.constexpr, HAS_EDGE: tl.constexpr,
        HAS_GRAD_ALPHA: tl.constexpr, DROPOUT: tl.constexpr, WANT_ROW: tl.constexpr,
        WANT_EDGE: tl.constexpr, WANT_ATT: tl.constexpr, WANT_W: tl.constexpr,
        STORE_G: tl.constexpr, ACC: tl.constexpr,
        BE: tl.constexpr, BH: tl.constexpr, BC: tl.constexpr):
    pid = tl.program_id(0).to(tl.int64)
    r0 = pid * rows_per_program
    r1 = tl.minimum(r0 + rows_per_program, N)
    HC = H * C
    slope_ = tl.full([], slope, ACC)
    scale_ = tl.full([], scale, ACC)
    offs_h = tl.arange(0, BH)
    offs_c = tl.arange(0, BC)
    mask_h = offs_h < H
    hc = offs_h[:, None] * C + offs_c[None, :]
    mask_hc = mask_h[:, None] & (offs_c[None, :] < C)
    base = seed_base(base_lo, base_hi)
    if V2:
        att_t = tl.load(att + hc, mask=mask_hc, other=0).to(ACC)
    att_acc = tl.zeros([BH, BC], ACC)

    for i in range(r0, r1):
        start = tl.load(ptr + i).to(tl.int64)
        end = tl.load(ptr + i + 1).to(tl.int64)
        go = tl.load(grad_out + i * HC + hc, mask=mask_hc, other=0).to(ACC)

        # Walk 1: g = keep/(1-p) <grad_out[i], h_src[j]> + grad_alpha, and sum_row alpha * g.
        row_dot = tl.zeros([BH], ACC)
        for e0 in range(start, end, BE):
            edges = e0 + tl.arange(0, BE)
            mask_e = edges < end
            m2 = mask_e[:, None] & mask_h[None, :]
            m3 = mask_e[:, None, None] & mask_hc[None, :, :]
            at = edges[:, None] * H + offs_h[None, :]
            j = tl.load(src + edges, mask=mask_e, other=0).to(tl.int64)
            x = tl.load(values + j[:, None, None] * HC + hc[None, :, :], mask=m3,
                        other=0).to(ACC)
            g = tl.sum(x * go[None, :, :], axis=2)
            if DROPOUT:
                keep = keep_single(base, at, threshold)
                g = (g * scale_) * keep.to(ACC)
            if HAS_GRAD_ALPHA:
                g = g + tl.load(grad_alpha + at, mask=m2, other=0).to(ACC)
            a = tl.load(alpha + at, mask=m2, other=0).to(ACC)
            row_dot += tl.sum(a * g, axis=0)
            tl.store(gbuf + at, g, mask=m2)
        tl.debug_barrier()

        # Walk 2: gs = alpha (g - sum_row alpha g), and the variant's gradients.
        if V2:
            xr = tl.load(x_r + i * HC + hc, mask=mask_hc, other=0).to(ACC)
            row_acc = tl.zeros([BH, BC], ACC)
        else:
            if HAS_DST:
                sd = tl.load(s_dst + i * H + offs_h, mask=mask_h, other=0).to(ACC)
            else:
                sd = tl.zeros([BH], ACC)
            row_acc = tl.zeros([BH], ACC)
        for e0 in range(start, end, BE):
            edges = e0 + tl.arange(0, BE)
            mask_e = edges < end
            m2 = mask_e[:, None] & mask_h[None, :]
            m3 = mask_e[:, None, None] & mask_hc[None, :, :]
            at = edges[:, None] * H + offs_h[None, :]
            g = tl.load(gbuf + at, mask=m2, other=0).to(ACC)
            a = tl.load(alpha + at, mask=m2, other=0).to(ACC)
            gs = a * (g - row_dot[None, :])
            j = tl.load(src + edges, mask=mask_e, other=0).to(tl.int64)
            if V2:
                xl = tl.load(x_l + j[:, None, None] * HC + hc[None, :, :], mask=m3,
                             other=0).to(ACC)
                z = xl + xr[None, :, :]
                if HAS_EDGE:
                    z = _add_edge_term(z, edge_attr, w_edge, edges, mask_e, hc, mask_hc, D, ACC)
                gz = gs[:, :, None] * att_t[None, :, :] * _leaky_grad(z, slope_)
                gz = tl.where(m3, gz, 0.0)
                if STORE_G:
                    tl.store(gbuf + at, gs, mask=m2)
                row_acc += tl.sum(gz, axis=0)
                if WANT_ATT:
                    att_acc += tl.sum(gs[:, :, None] * _leaky(z, slope_), axis=0)
                if WANT_EDGE:
                    for d in range(D):
                        w = tl.load(w_edge + hc * D + d, mask=mask_hc, other=0).to(ACC)
                        v = tl.sum(tl.sum(gz * w[None, :, :], axis=2), axis=1)
                        tl.store(grad_edge + edges * D + d, v.to(grad_edge.dtype.element_ty),
                                 mask=mask_e)
                if WANT_W:
                    # This program's own [H*C, D] slice of the partial sums, in memory.
                    own = partial_w + pid * HC * D + hc * D
                    for d in range(D):
                        a_d = tl.load(edge_attr + edges * D + d, mask=mask_e, other=0).to(ACC)
                        contrib = tl.sum(gz * a_d[:, None, None], axis=0)
                        prev = tl.load(own + d, mask=mask_hc, other=0)
                        tl.store(own + d, prev + contrib, mask=mask_hc)
                    tl.debug_barrier()
            else:
                raw = _gat_raw(s_src, sd, s_edge, edges, j, offs_h, m2, H, HAS_DST, HAS_EDGE, ACC)
                graw = tl.where(m2, gs * _leaky_grad(raw, slope_), 0.0)
                if STORE_G:
                    tl.store(gbuf + at, graw, mask=m2)
                if WANT_EDGE:
                    tl.store(grad_edge + at, graw.to(grad_edge.dtype.element_ty), mask=m2)
                row_acc += tl.sum(graw, axis=0)
        if WANT_ROW:
            if V2:
                tl.store(grad_row + i * HC + hc, row_acc.to(grad_row.dtype.element_ty),
                         mask=mask_hc)
            else:
                tl.store(grad_row + i * H + offs_h, row_acc.to(grad_row.dtype.element_ty),
                         mask=mask_h)
    if WANT_ATT:
        tl.store(partial_att + pid * HC + hc, att_acc, mask=mask_hc)


# --- backward: sources, through the transposed order --------------------------------------------

@triton.jit(do_not_specialize=_NO_SPECIALIZE)
def _backward_sources_kernel(
        t_ptr, t_col, t_perm, grad_out, alpha, gbuf,
        x_l, x_r, att, edge_attr, w_edge,
        grad_h, grad_src, H, C, D, slope: tl.float64, base_lo, base_hi, threshold,
        scale: tl.float64,
        V2: tl.constexpr, HAS_EDGE: tl.constexpr, DROPOUT: tl.constexpr,
        WANT_H: tl.constexpr, WANT_SRC: tl.constexpr, MERGE: tl.constexpr, ACC: tl.constexpr,
        BE: tl.constexpr, BH: tl.constexpr, BC: tl.constexpr):
    jj = tl.program_id(0).to(tl.int64)
    start = tl.load(t_ptr + jj).to(tl.int64)
    end = tl.load(t_ptr + jj + 1).to(tl.int64)
    HC = H * C
    slope_ = tl.full([], slope, ACC)
    scale_ = tl.full([], scale, ACC)
    offs_h = tl.arange(0, BH)
    offs_c = tl.arange(0, BC)
    mask_h = offs_h < H
    hc = offs_h[:, None] * C + offs_c[None, :]
    mask_hc = mask_h[:, None] & (offs_c[None, :] < C)
    base = seed_base(base_lo, base_hi)
    if V2:
        xl = tl.load(x_l + jj * HC + hc, mask=mask_hc, other=0).to(ACC)
        att_t = tl.load(att + hc, mask=mask_hc, other=0).to(ACC)
        acc_src = tl.zeros([BH, BC], ACC)
    else:
        acc_src = tl.zeros([BH], ACC)
    acc_h = tl.zeros([BH, BC], ACC)
    for k0 in range(start, end, BE):
        ks = k0 + tl.arange(0, BE)
        mask_k = ks < end
        m2 = mask_k[:, None] & mask_h[None, :]
        m3 = mask_k[:, None, None] & mask_hc[None, :, :]
        e = tl.load(t_perm + ks, mask=mask_k, other=0).to(tl.int64)
        i = tl.load(t_col + ks, mask=mask_k, other=0).to(tl.int64)
        at = e[:, None] * H + offs_h[None, :]
        if WANT_H:
            w = tl.load(alpha + at, mask=m2, other=0).to(ACC) * scale_
            if DROPOUT:
                w = w * keep_single(base, at, threshold).to(ACC)
            go = tl.load(grad_out + i[:, None, None] * HC + hc[None, :, :], mask=m3,
                         other=0).to(ACC)
            acc_h += tl.sum(w[:, :, None] * go, axis=0)
        if WANT_SRC:
            gv = tl.load(gbuf + at, mask=m2, other=0).to(ACC)
            if V2:
                xr = tl.load(x_r + i[:, None, None] * HC + hc[None, :, :], mask=m3,
                             other=0).to(ACC)
                z = xr + xl[None, :, :]
                if HAS_EDGE:
                    z = _add_edge_term(z, edge_attr, w_edge, e, mask_k, hc, mask_hc, D, ACC)
                gz = gv[:, :, None] * att_t[None, :, :] * _leaky_grad(z, slope_)
                acc_src += tl.sum(tl.where(m3, gz, 0.0), axis=0)
            else:
                acc_src += tl.sum(gv, axis=0)
    if WANT_H:
        if MERGE:       # x_l is h_src: one gradient, their sum
            acc_h = acc_h + acc_src
        tl.store(grad_h + jj * HC + hc, acc_h.to(grad_h.dtype.element_ty), mask=mask_hc)
    if WANT_SRC and not MERGE:
        if V2:
            tl.store(grad_src + jj * HC + hc, acc_src.to(grad_src.dtype.element_ty),
                     mask=mask_hc)
        else:
            tl.store(grad_src + jj * H + offs_h, acc_src.to(grad_src.dtype.element_ty),
                     mask=mask_h)


# --- fixed-order sum of partials -----------------------------------------------------------------

@triton.jit
def _sum_partials_kernel(partial, out, P, W, BP: tl.constexpr, BW: tl.constexpr):
    cols = tl.program_id(0).to(tl.int64) * BW + tl.arange(0, BW)
    mask_w = cols < W
    acc = tl.zeros([BW], partial.dtype.element_ty)
    for p0 in range(0, P, BP):
        rows = p0 + tl.arange(0, BP)
        tile = tl.load(partial + rows[:, None].to(tl.int64) * W + cols[None, :],
                       mask=(rows < P)[:, None] & mask_w[None, :], other=0)
        acc += tl.sum(tile, axis=0)
    tl.store(out + cols, acc.to(out.dtype.element_ty), mask=mask_w)


def sum_partials(partial: Tensor, out: Tensor) -> Tensor:
    """``out[k] = sum_p partial[p, k]`` (``partial`` ``[P, W]`` contiguous, ``out`` ``W``
    elements), the rows added in blocks of 64 in a fixed order: the same result run to run."""
    P, W = partial.shape
    if W:
        BW = 64
        _sum_partials_kernel[(triton.cdiv(W, BW), )](partial, out, P, W, BP=_PARTIAL_ROWS, BW=BW)
    return out


# --- launch wrappers -----------------------------------------------------------------------------

class _Dims:
    """Sizes and launch constants of one call."""

    def __init__(self, ptr: Tensor, src: Tensor, num_src: int, heads: int, channels: int,
                 dtype: torch.dtype):
        self.num_dst = ptr.numel() - 1
        self.num_src = num_src
        self.edges = src.numel()
        self.H, self.C = heads, channels
        self.BH = _common.next_pow2(max(heads, 1))
        self.BC = _common.next_pow2(max(channels, 1))
        self.acc = _common.acc_dtype(dtype)
        self.ACC = _common.tl_dtype(self.acc)

    def edge_block(self, rows: int) -> int:
        return _common.edge_block(self.edges, rows, self.BH * self.BC)


def _contig(t: Optional[Tensor]) -> Optional[Tensor]:
    return None if t is None else t.contiguous()


def _same_tensor(a: Tensor, b: Tensor) -> bool:
    return (a.data_ptr() == b.data_ptr() and a.shape == b.shape and a.stride() == b.stride()
            and a.dtype == b.dtype)


def _message_values(h_src: Tensor, message_dropout: float, message_seed) -> Tuple[Tensor, bool]:
    """h_src with message dropout applied (a new tensor) when it is active, else h_src."""
    active = dropout_args(message_dropout, message_seed, 'message_dropout', 'message_seed')[0]
    if not active:
        return h_src, False
    return hash_dropout(h_src, message_dropout, message_seed, paired=True,
                        name='message_dropout', seed_name='message_seed'), True


def _check_features(h_src: Tensor, name: str = 'h_src') -> None:
    if not isinstance(h_src, Tensor) or h_src.dim() != 3:
        raise RuntimeError(f'gat_pyg: {name} must be [N_src, H, C], got shape '
                           f'{tuple(getattr(h_src, "shape", ()))}')
    _common.check_float(name, h_src, None, (-1, -1, -1))


def _forward(dims: _Dims, ptr, src, out, alpha, h_src, v2: bool, score_args, flags,
             slope: float, dropout: float, seed) -> None:
    active, lo, hi, thr, scale = dropout_args(dropout, seed)
    if dims.num_dst == 0:
        return
    if alpha.dtype in (torch.float32, torch.float64):
        scores = alpha                  # stash the scores in alpha itself
    else:
        scores = torch.empty(alpha.shape, dtype=torch.float32, device=alpha.device)
    BE = dims.edge_block(dims.num_dst)
    _forward_kernel[(dims.num_dst, )](
        ptr, src, out, alpha, scores, *score_args, h_src, dims.H, dims.C, flags.get('D', 0),
        float(slope), lo, hi, thr, scale,
        V2=v2, HAS_DST=flags.get('HAS_DST', False), HAS_EDGE=flags.get('HAS_EDGE', False),
        DROPOUT=active, H_IS_X_L=flags.get('H_IS_X_L', False), ACC=dims.ACC,
        BE=BE, BH=dims.BH, BC=dims.BC, num_warps=_common.NUM_WARPS)


def gat_forward(ptr: Tensor, src: Tensor, t_ptr: Optional[Tensor], t_col: Optional[Tensor],
                t_perm: Optional[Tensor], s_src: Tensor, s_dst: Optional[Tensor],
                s_edge: Optional[Tensor], h_src: Tensor, negative_slope: float, dropout: float,
                seed: Optional[Tensor], message_dropout: float = 0.0,
                message_seed: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
    """GAT attention forward (``torch.ops.gat_pyg.gat_forward``).

    Args:
        ptr: ``[N_dst + 1]`` int64/int32 row pointers of the destination-sorted edges.
        src: ``[E]`` source of each sorted edge (ptr's dtype).
        t_ptr, t_col, t_perm: the transposed order (``[N_src + 1]``, ``[E]``, ``[E]``) or None
            (not read here; backward needs it).
        s_src: ``[N_src, H]`` source half-scores; ``s_dst``: ``[N_dst, H]`` or None;
            ``s_edge``: ``[E, H]`` edge scores (sorted order) or None.
        h_src: ``[N_src, H, C]`` aggregated features; float32/float64/bfloat16/float16, all
            float inputs of one dtype and on one device.
        negative_slope: LeakyReLU slope.
        dropout, seed: attention dropout probability and its seed (one-element integer tensor,
            needed when ``dropout > 0``).
        message_dropout, message_seed: dropout of ``h_src`` in the sum (paired mask).

    Returns:
        ``out`` ``[N_dst, H, C]`` and ``alpha`` ``[E, H]`` (before attention dropout), in
        ``h_src``'s dtype.

    Raises:
        RuntimeError: wrong dtype/shape/device, bad index contents, bad dropout arguments.
    """
    _check_features(h_src)
    device, dtype = h_src.device, h_src.dtype
    num_src, H, C = h_src.shape
    _common.check_graph(ptr, src, t_ptr, t_col, t_perm, num_src, device, backward=False)
    dims = _Dims(ptr, src, num_src, H, C, dtype)
    _common.check_float('s_src', s_src, dtype, (num_src, H), device)
    if s_dst is not None:
        _common.check_float('s_dst', s_dst, dtype, (dims.num_dst, H), device)
    if s_edge is not None:
        _common.check_float('s_edge', s_edge, dtype, (dims.edges, H), device)
    dropout_args(dropout, seed)     # checked before anything is computed
    h_src, s_src, s_dst, s_edge = (_contig(t) for t in (h_src, s_src, s_dst, s_edge))
    values, _ = _message_values(h_src, message_dropout, message_seed)
    out = torch.empty(dims.num_dst, H, C, dtype=dtype, device=device)
    alpha = torch.empty(dims.edges, H, dtype=dtype, device=device)
    dummy = h_src
    score_args = (s_src, s_dst if s_dst is not None else dummy,
                  s_edge if s_edge is not None else dummy, dummy, dummy, dummy, dummy, dummy)
    _forward(dims, ptr, src, out, alpha, values, False, score_args,
             dict(HAS_DST=s_dst is not None, HAS_EDGE=s_edge is not None),
             negative_slope, dropout, seed)
    return out, alpha


def _check_gatv2(ptr, src, t_ptr, t_col, t_perm, x_l, x_r, att, edge_attr, w_edge, h_src,
                 backward: bool):
    _check_features(x_l, 'x_l')
    device, dtype = x_l.device, x_l.dtype
    num_src, H, C = x_l.shape
    if (edge_attr is None) != (w_edge is None):
        raise RuntimeError('gat_pyg: edge_attr and w_edge must be given together')
    _common.check_graph(ptr, src, t_ptr, t_col, t_perm, num_src, device, backward=backward)
    dims = _Dims(ptr, src, num_src, H, C, dtype)
    _common.check_float('x_r', x_r, dtype, (dims.num_dst, H, C), device)
    _common.check_float('att', att, dtype, (H, C), device)
    _common.check_float('h_src', h_src, dtype, (num_src, H, C), device)
    dims.D = 0
    if edge_attr is not None:
        _common.check_float('edge_attr', edge_attr, dtype, (dims.edges, -1), device)
        dims.D = edge_attr.shape[1]
        _common.check_float('w_edge', w_edge, dtype, (H * C, dims.D), device)
    return dims


def gatv2_forward(ptr: Tensor, src: Tensor, t_ptr: Optional[Tensor], t_col: Optional[Tensor],
                  t_perm: Optional[Tensor], x_l: Tensor, x_r: Tensor, att: Tensor,
                  edge_attr: Optional[Tensor], w_edge: Optional[Tensor], h_src: Tensor,
                  negative_slope: float, dropout: float, seed: Optional[Tensor],
                  message_dropout: float = 0.0,
                  message_seed: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
    """GATv2 attention forward (``torch.ops.gat_pyg.gatv2_forward``).

    Args:
        ptr, src, t_ptr, t_col, t_perm: the graph, as for :func:`gat_forward`.
        x_l: ``[N_src, H, C]`` source projection; ``x_r``: ``[N_dst, H, C]`` target projection;
            ``att``: ``[H, C]``.
        edge_attr: ``[E, D]`` edge features (sorted order) and ``w_edge``: ``[H*C, D]``, both
            or neither.
        h_src: ``[N_src, H, C]`` aggregated features (GATv2Conv passes ``x_l`` itself; then
            its tile is loaded once per edge for both uses).
        negative_slope, dropout, seed, message_dropout, message_seed: as for
            :func:`gat_forward`.

    Returns:
        ``out`` ``[N_dst, H, C]`` and ``alpha`` ``[E, H]`` (before attention dropout).

    Raises:
        RuntimeError: wrong dtype/shape/device, bad index contents, bad dropout arguments.
    """
    dims = _check_gatv2(ptr, src, t_ptr, t_col, t_perm, x_l, x_r, att, edge_attr, w_edge,
                        h_src, backward=False)
    dropout_args(dropout, seed)
    same = _same_tensor(x_l, h_src)
    x_l, x_r, att, edge_attr, w_edge, h_src = (
        _contig(t) for t in (x_l, x_r, att, edge_attr, w_edge, h_src))
    values, dropped = _message_values(h_src, message_dropout, message_seed)
    device, dtype = x_l.device, x_l.dtype
    out = torch.empty(dims.num_dst, dims.H, dims.C, dtype=dtype, device=device)
    alpha = torch.empty(dims.edges, dims.H, dtype=dtype, device=device)
    has_edge = edge_attr is not None
    score_args = (x_l, x_l, x_l, x_l, x_r, att, edge_attr if has_edge else x_l,
                  w_edge if has_edge else x_l)
    _forward(dims, ptr, src, out, alpha, values, True, score_args,
             dict(HAS_EDGE=has_edge, D=dims.D, H_IS_X_L=same and not dropped),
             negative_slope, dropout, seed)
    return out, alpha


def _row_programs(num_rows: int, v2: bool) -> Tuple[int, int]:
    """(rows per program, programs) of the destination pass."""
    if num_rows == 0:
        return 1, 0
    rows = 1 if not v2 else -(-num_rows // MAX_ROW_PROGRAMS)
    return rows, -(-num_rows // rows)


def gat_backward(grad_out: Tensor, grad_alpha: Optional[Tensor], ptr: Tensor, src: Tensor,
                 t_ptr: Tensor, t_col: Tensor, t_perm: Tensor, s_src: Tensor,
                 s_dst: Optional[Tensor], s_edge: Optional[Tensor], h_src: Tensor,
                 alpha: Tensor, negative_slope: float, dropout: float, seed: Optional[Tensor],
                 output_mask: Sequence[bool], message_dropout: float = 0.0,
                 message_seed: Optional[Tensor] = None
                 ) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    """GAT attention backward (``torch.ops.gat_pyg.gat_backward``).

    Args:
        grad_out: ``[N_dst, H, C]`` gradient of ``out``; grad_alpha: ``[E, H]`` gradient of
            the returned ``alpha`` or None.
        ptr, src, t_ptr, t_col, t_perm: the graph with its transposed order (required).
        s_src, s_dst, s_edge, h_src, negative_slope, dropout, seed, message_dropout,
            message_seed: the forward call's arguments; alpha: its ``[E, H]`` result.
        output_mask: which of (s_src, s_dst, s_edge, h_src) need a gradient.

    Returns:
        ``(grad_s_src [N_src, H], grad_s_dst [N_dst, H], grad_s_edge [E, H],
        grad_h_src [N_src, H, C])``; one not wanted, or whose input is None, is an empty
        tensor.

    Raises:
        RuntimeError: as :func:`gat_forward`, and for a missing transposed order.
    """
    _check_features(h_src)
    device, dtype = h_src.device, h_src.dtype
    num_src, H, C = h_src.shape
    _common.check_graph(ptr, src, t_ptr, t_col, t_perm, num_src, device, backward=True)
    dims = _Dims(ptr, src, num_src, H, C, dtype)
    _common.check_float('s_src', s_src, dtype, (num_src, H), device)
    if s_dst is not None:
        _common.check_float('s_dst', s_dst, dtype, (dims.num_dst, H), device)
    if s_edge is not None:
        _common.check_float('s_edge', s_edge, dtype, (dims.edges, H), device)
    _common.check_float('grad_out', grad_out, dtype, (dims.num_dst, H, C), device)
    _common.check_float('alpha', alpha, dtype, (dims.edges, H), device)
    if grad_alpha is not None:
        _common.check_float('grad_alpha', grad_alpha, dtype, (dims.edges, H), device)
    active, lo, hi, thr, scale = dropout_args(dropout, seed)
    mask = [bool(b) for b in output_mask]
    grad_s_src = _common.empty_or(mask[0], h_src, num_src, H)
    grad_s_dst = _common.empty_or(mask[1] and s_dst is not None, h_src, dims.num_dst, H)
    grad_s_edge = _common.empty_or(mask[2] and s_edge is not None, h_src, dims.edges, H)
    grad_h_src = _common.empty_or(mask[3], h_src, num_src, H, C)
    want_src, want_dst = grad_s_src.numel() > 0, grad_s_dst.numel() > 0
    want_edge, want_h = grad_s_edge.numel() > 0, grad_h_src.numel() > 0
    (grad_out, grad_alpha, h_src, s_src, s_dst, s_edge, alpha) = (
        _contig(t) for t in (grad_out, grad_alpha, h_src, s_src, s_dst, s_edge, alpha))
    scores_wanted = mask[0] or mask[1] or mask[2]
    values = h_src
    if scores_wanted:
        values, _ = _message_values(h_src, message_dropout, message_seed)
    else:
        dropout_args(message_dropout, message_seed, 'message_dropout', 'message_seed')
    gbuf = None
    BE = dims.edge_block(dims.num_dst)
    if (want_src or want_dst or want_edge) and dims.num_dst:
        gbuf = torch.empty(dims.edges, H, dtype=dims.acc, device=device)
        rows, programs = _row_programs(dims.num_dst, v2=False)
        d = h_src
        _backward_rows_kernel[(programs, )](
            ptr, src, grad_out, grad_alpha if grad_alpha is not None else d, alpha, values, gbuf,
            s_src, s_dst if s_dst is not None else d, s_edge if s_edge is not None else d,
            d, d, d, d, d,
            grad_s_dst if want_dst else d, grad_s_edge if want_edge else d, gbuf, gbuf,
            dims.num_dst, H, C, 0, rows, float(negative_slope), lo, hi, thr, scale,
            V2=False, HAS_DST=s_dst is not None, HAS_EDGE=s_edge is not None,
            HAS_GRAD_ALPHA=grad_alpha is not None, DROPOUT=active, WANT_ROW=want_dst,
            WANT_EDGE=want_edge, WANT_ATT=False, WANT_W=False, STORE_G=want_src,
            ACC=dims.ACC, BE=BE, BH=dims.BH, BC=dims.BC, num_warps=_common.NUM_WARPS)
    if (want_h or want_src) and num_src:
        d = h_src
        BE_src = dims.edge_block(num_src)
        _backward_sources_kernel[(num_src, )](
            t_ptr, t_col, t_perm, grad_out, alpha, gbuf if gbuf is not None else alpha,
            d, d, d, d, d, grad_h_src if want_h else d, grad_s_src if want_src else d,
            H, C, 0, float(negative_slope), lo, hi, thr, scale,
            V2=False, HAS_EDGE=False, DROPOUT=active, WANT_H=want_h,
            WANT_SRC=want_src and gbuf is not None, MERGE=False, ACC=dims.ACC,
            BE=BE_src, BH=dims.BH, BC=dims.BC,
            num_warps=_common.NUM_WARPS)
    if want_src and gbuf is None:       # no rows: nothing reaches the sources
        grad_s_src.zero_()
    if want_h:
        hash_dropout(grad_h_src, message_dropout, message_seed, paired=True, out=grad_h_src,
                     name='message_dropout', seed_name='message_seed')
    return grad_s_src, grad_s_dst, grad_s_edge, grad_h_src


def gatv2_backward(grad_out: Tensor, grad_alpha: Optional[Tensor], ptr: Tensor, src: Tensor,
                   t_ptr: Tensor, t_col: Tensor, t_perm: Tensor, x_l: Tensor, x_r: Tensor,
                   att: Tensor, edge_attr: Optional[Tensor], w_edge: Optional[Tensor],
                   h_src: Tensor, alpha: Tensor, negative_slope: float, dropout: float,
                   seed: Optional[Tensor], output_mask: Sequence[bool],
                   message_dropout: float = 0.0, message_seed: Optional[Tensor] = None,
                   merge_h_src: bool = False
                   ) -> Tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
    """GATv2 attention backward (``torch.ops.gat_pyg.gatv2_backward``).

    Args:
        grad_out, grad_alpha, ptr, src, t_ptr, t_col, t_perm: as for :func:`gat_backward`.
        x_l, x_r, att, edge_attr, w_edge, h_src, negative_slope, dropout, seed,
            message_dropout, message_seed: the forward call's arguments; alpha: its result.
        output_mask: which of (x_l, x_r, att, edge_attr, w_edge, h_src) need a gradient.
        merge_h_src: ``h_src`` is ``x_l`` (GATv2Conv): when both gradients are wanted and
            there is no message dropout, their sum is returned as ``grad_x_l`` and
            ``grad_h_src`` is empty (one buffer, no addition).

    Returns:
        ``(grad_x_l [N_src, H, C], grad_x_r [N_dst, H, C], grad_att [H, C],
        grad_edge_attr [E, D], grad_w_edge [H*C, D], grad_h_src [N_src, H, C])``; one not
        wanted (or whose input is None) is an empty tensor. ``grad_att`` / ``grad_w_edge``
        are sums over all edges, added in a fixed order (0 when ``E == 0``).

    Raises:
        RuntimeError: as :func:`gatv2_forward`; a missing transposed order; ``merge_h_src``
            with an ``h_src`` that is not ``x_l``.
    """
    dims = _check_gatv2(ptr, src, t_ptr, t_col, t_perm, x_l, x_r, att, edge_attr, w_edge,
                        h_src, backward=True)
    device, dtype = x_l.device, x_l.dtype
    H, C, D, num_src = dims.H, dims.C, dims.D, dims.num_src
    _common.check_float('grad_out', grad_out, dtype, (dims.num_dst, H, C), device)
    _common.check_float('alpha', alpha, dtype, (dims.edges, H), device)
    if grad_alpha is not None:
        _common.check_float('grad_alpha', grad_alpha, dtype, (dims.edges, H), device)
    active, lo, hi, thr, scale = dropout_args(dropout, seed)
    message_active = dropout_args(message_dropout, message_seed, 'message_dropout',
                                  'message_seed')[0]
    mask = [bool(b) for b in output_mask]
    merged = bool(merge_h_src) and mask[0] and mask[5] and not message_active
    if merged and not _same_tensor(x_l, h_src):
        raise RuntimeError('gat_pyg: merge_h_src needs h_src to be x_l')
    edges = edge_attr is not None
    grad_x_l = _common.empty_or(mask[0] and not merged, x_l, num_src, H, C)
    grad_x_r = _common.empty_or(mask[1], x_l, dims.num_dst, H, C)
    grad_att = _common.empty_or(mask[2], x_l, H, C)
    grad_edge_attr = _common.empty_or(mask[3] and edges, x_l, dims.edges, D)
    grad_w_edge = _common.empty_or(mask[4] and edges, x_l, H * C, D)
    grad_h_src = _common.empty_or(mask[5], x_l, num_src, H, C)
    want_xl = (grad_x_l.numel() > 0) or (merged and grad_h_src.numel() > 0)
    want_xr, want_att = grad_x_r.numel() > 0, grad_att.numel() > 0
    want_ea, want_w = grad_edge_attr.numel() > 0, grad_w_edge.numel() > 0
    want_h = grad_h_src.numel() > 0
    (grad_out, grad_alpha, x_l, x_r, att, edge_attr, w_edge, h_src, alpha) = (
        _contig(t) for t in (grad_out, grad_alpha, x_l, x_r, att, edge_attr, w_edge, h_src,
                             alpha))
    values = h_src
    if any(mask[:5]):
        values, _ = _message_values(h_src, message_dropout, message_seed)
    d = x_l
    gbuf = None
    if (want_xl or want_xr or want_att or want_ea or want_w) and dims.num_dst:
        gbuf = torch.empty(dims.edges, H, dtype=dims.acc, device=device)
        rows, programs = _row_programs(dims.num_dst, v2=True)
        partial_att = (torch.empty(programs, H * C, dtype=dims.acc, device=device)
                       if want_att else gbuf)
        partial_w = (torch.zeros(programs, H * C * D, dtype=dims.acc, device=device)
                     if want_w else gbuf)
        _backward_rows_kernel[(programs, )](
            ptr, src, grad_out, grad_alpha if grad_alpha is not None else d, alpha, values, gbuf,
            d, d, d, x_l, x_r, att, edge_attr if edges else d, w_edge if edges else d,
            grad_x_r if want_xr else d, grad_edge_attr if want_ea else d, partial_att,
            partial_w, dims.num_dst, H, C, D, rows, float(negative_slope), lo, hi, thr, scale,
            V2=True, HAS_DST=False, HAS_EDGE=edges, HAS_GRAD_ALPHA=grad_alpha is not None,
            DROPOUT=active, WANT_ROW=want_xr, WANT_EDGE=want_ea, WANT_ATT=want_att,
            WANT_W=want_w, STORE_G=want_xl, ACC=dims.ACC,
            BE=dims.edge_block(dims.num_dst), BH=dims.BH, BC=dims.BC, num_stages=1,
            num_warps=_common.NUM_WARPS)
        if want_att:
            sum_partials(partial_att, grad_att)
        if want_w:
            sum_partials(partial_w, grad_w_edge)
    else:
        if want_att:
            grad_att.zero_()
        if want_w:
            grad_w_edge.zero_()
    if (want_h or want_xl) and num_src:
        src_xl = want_xl and gbuf is not None
        target_h = grad_h_src if want_h else d
        _backward_sources_kernel[(num_src, )](
            t_ptr, t_col, t_perm, grad_out, alpha, gbuf if gbuf is not None else alpha,
            x_l, x_r, att, edge_attr if edges else d, w_edge if edges else d,
            target_h, grad_x_l if grad_x_l.numel() else d,
            H, C, D, float(negative_slope), lo, hi, thr, scale,
            V2=True, HAS_EDGE=edges, DROPOUT=active, WANT_H=want_h, WANT_SRC=src_xl,
            MERGE=merged, ACC=dims.ACC, BE=dims.edge_block(num_src), BH=dims.BH, BC=dims.BC,
            num_warps=_common.NUM_WARPS)
        if want_xl and gbuf is None and grad_x_l.numel():
            grad_x_l.zero_()
    if merged:
        return grad_h_src, grad_x_r, grad_att, grad_edge_attr, grad_w_edge, grad_x_l
    if want_h:
        hash_dropout(grad_h_src, message_dropout, message_seed, paired=True, out=grad_h_src,
                     name='message_dropout', seed_name='message_seed')
    return grad_x_l, grad_x_r, grad_att, grad_edge_attr, grad_w_edge, grad_h_src

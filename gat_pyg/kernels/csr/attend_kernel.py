r"""The attention operators in pure torch on ``torch.sparse`` CSR products (any device, f32/f64).

PyG's ``propagate`` gathers ``x_j`` for every edge, so a layer holds tensors of size
``E x H x C``. Here the aggregation ``out_i = sum_j a_ij x_j`` is, for each head, the product of
a sparse matrix ``A`` (rows = targets, values = attention) with the dense source features, and
its backward needs only

* ``grad_x = A^T @ grad_out``  (another sparse-dense product, on the transposed order),
* ``grad_a_ij = <grad_out_i, x_j>``  (a sampled dense-dense product, SDDMM, on A's pattern),

so no per-edge feature tensor exists in either direction. GATv2's score needs the per-edge
vector ``x_l[j] + x_r[i] + W_e e_ji``; it is formed in bounded blocks of edges, in forward and
again in backward. The softmax runs over each target's contiguous run of edges (torch's segment
reductions on ``ptr``). Masks: :mod:`gat_pyg.kernels.hashing`, as every backend.

These are the kernels of ``gat_forward`` / ``gat_backward`` / ``gatv2_forward`` /
``gatv2_backward`` for devices with no kernel of their own (CUDA without Triton) and for the CPU
without the C++ library; the tests hold them to the reference and to PyG's layers. On CUDA the
GATv2 gradients of ``x_l`` / ``x_r`` are summed with ``index_add_`` (atomics: not bit-identical
run to run, unlike the C++ and Triton kernels).
"""
import warnings
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor
from torch_geometric.utils._segment import segment

from gat_pyg.kernels import hashing
from gat_pyg.kernels.attend import merges_h_src, targets

# torch warns once per process that CSR support is "beta"; the operations used here (CSR
# construction, CSR @ dense, sampled_addmm) are stable and tested against the reference.
warnings.filterwarnings('ignore', message='Sparse CSR tensor support is in beta state')

# Elements (edges x heads x channels) in one block of GATv2's per-edge score computation:
# 4M float32 values = 16 MB per temporary, whatever the size of the graph.
SCORE_BLOCK_ELEMENTS = 1 << 22
# Most index entries (edges x heads) in one block-diagonal product: 32 MB of int64 indices.
HEAD_BLOCK_ENTRIES = 1 << 22


def _csr(ptr: Tensor, col: Tensor, values: Tensor, shape) -> Tensor:
    return torch.sparse_csr_tensor(ptr, col, values, shape, check_invariants=False)


def _head_group(heads: int, num_edges: int) -> int:
    """How many heads share one block-diagonal product: all of them on small graphs (one call
    instead of H), fewer on large ones, so the stacked indices stay under HEAD_BLOCK_ENTRIES."""
    group = max(1, min(heads, HEAD_BLOCK_ENTRIES // max(1, num_edges)))
    while heads % group:
        group -= 1
    return group


def _stack_blocks(ptr: Tensor, col: Tensor, group: int, num_cols: int) -> Tuple[Tensor, Tensor]:
    """CSR indices of ``group`` copies of (ptr, col) stacked block-diagonally: row ``g * R + i``
    is copy g's row i, column ``g * num_cols + j`` its column j. A head-major ``[H, E]`` tensor
    is then, group by group, exactly the value array of this matrix, and head-major features
    ``[H, N, C]`` are its dense operand: no copy."""
    if group == 1:
        return ptr, col
    num_edges = col.numel()
    offsets = torch.arange(group, device=col.device, dtype=ptr.dtype).unsqueeze(1)
    crow = torch.cat([(ptr[:-1].unsqueeze(0) + offsets * num_edges).flatten(),
                      ptr.new_full((1, ), group * num_edges)])
    return crow, (col.unsqueeze(0) + offsets * num_cols).flatten()


def _grouped(t: Tensor, group: int):
    """Consecutive groups of a head-major tensor, each flattened over (head, row)."""
    for start in range(0, t.size(0), group):
        yield t[start:start + group].reshape(-1, *t.shape[2:])


def _sddmm(pattern: Tensor, left: Tensor, right: Tensor) -> Tensor:
    """``(left @ right^T)`` at the stored entries of ``pattern``, as a value array.

    torch's CPU ``sampled_addmm`` is about ten times slower for inner sizes 2 to 7 than for 8
    (Cora's output layer has 7 channels: 0.60 ms against 0.05 ms), so those are zero-padded.
    """
    if 1 < left.size(1) < 8:
        left, right = F.pad(left, (0, 8 - left.size(1))), F.pad(right, (0, 8 - right.size(1)))
    return torch.sparse.sampled_addmm(pattern, left, right.t(), beta=0.0).values()


def spmm(weights: Tensor, values: Tensor, ptr: Tensor, col: Tensor, num_rows: int) -> Tensor:
    """``out[i, h] = sum over row i's entries e of weights[e, h] * values[col[e], h]``:
    ``[E, H] x [N_col, H, C] -> [num_rows, H, C]``, one CSR product per group of heads."""
    heads, channels = values.size(1), values.size(2)
    if col.numel() == 0:
        return values.new_zeros(num_rows, heads, channels)
    group = _head_group(heads, col.numel())
    crow, bcol = _stack_blocks(ptr, col, group, values.size(0))
    shape = (group * num_rows, group * values.size(0))
    w_t = weights.t().contiguous()                # [H, E]
    v_t = values.transpose(0, 1).contiguous()     # [H, N_col, C]
    parts = [_csr(crow, bcol, w, shape) @ v for w, v in zip(_grouped(w_t, group),
                                                              _grouped(v_t, group))]
    out = parts[0] if len(parts) == 1 else torch.cat(parts)
    return out.view(heads, num_rows, channels).transpose(0, 1).contiguous()


def sddmm(left: Tensor, right: Tensor, ptr: Tensor, col: Tensor) -> Tensor:
    """``out[e, h] = <left[row(e), h], right[col[e], h]>`` for the entries of (ptr, col):
    ``[N_row, H, C] x [N_col, H, C] -> [E, H]``."""
    heads = left.size(1)
    num_edges = col.numel()
    if num_edges == 0:
        return left.new_zeros(0, heads)
    group = _head_group(heads, num_edges)
    crow, bcol = _stack_blocks(ptr, col, group, right.size(0))
    shape = (group * left.size(0), group * right.size(0))
    l_t = left.transpose(0, 1).contiguous()
    r_t = right.transpose(0, 1).contiguous()
    ones = left.new_ones(group * num_edges)
    parts = [_sddmm(_csr(crow, bcol, ones, shape), a, b)
             for a, b in zip(_grouped(l_t, group), _grouped(r_t, group))]
    return torch.cat(parts).view(heads, num_edges).t()


def segment_softmax(scores: Tensor, ptr: Tensor, dst: Tensor) -> Tensor:
    """Softmax of ``[E, H]`` scores over each target's contiguous run of edges: the numbers of
    ``torch_geometric.utils.softmax(src, ptr=ptr)``."""
    if scores.numel() == 0:
        return scores.clone()
    # torch's own segment max is 3x faster than torch_scatter's, which also tracks argmax
    # (Cora, [13264, 8]: 0.11 ms against 0.36 ms). An empty row's max is never gathered back.
    # Private API (torch._segment_reduce, stable since torch 1.12): on upgrades check that it
    # still takes offsets= and unsafe=.
    peak = torch._segment_reduce(scores, 'max', offsets=ptr, axis=0, unsafe=True)
    alpha = (scores - peak.index_select(0, dst)).exp_()
    return alpha.div_(segment(alpha, ptr, reduce='sum').index_select(0, dst))


def softmax_backward(alpha: Tensor, grad: Tensor, ptr: Tensor, dst: Tensor) -> Tensor:
    """``alpha * (g - sum_row(alpha * g))``: the softmax's vector-Jacobian product."""
    weighted = alpha * grad
    if weighted.numel() == 0:
        return weighted
    return weighted - alpha * segment(weighted, ptr, reduce='sum').index_select(0, dst)


def _source_sum(per_edge: Tensor, t_ptr: Tensor, t_perm: Tensor) -> Tensor:
    """``[E, ...]`` per-edge values summed per source node through the transposed order (a
    segment reduction, not a scatter)."""
    return segment(per_edge.index_select(0, t_perm).contiguous(), t_ptr, reduce='sum')


def _empty_or(want: bool, value: Optional[Tensor], like: Tensor) -> Tensor:
    return value if want and value is not None else like.new_empty(0)


# --- GAT -----------------------------------------------------------------------------------------

def _gat_scores(src, dst, s_src, s_dst, s_edge) -> Tensor:
    score = s_src.index_select(0, src)
    if s_dst is not None:
        score = score + s_dst.index_select(0, dst)
    if s_edge is not None:
        score = score + s_edge
    return score


def gat_forward(ptr, src, t_ptr, t_col, t_perm, s_src, s_dst, s_edge, h_src, negative_slope,
                dropout, seed, message_dropout=0.0, message_seed=None):
    dst = targets(ptr, src.numel())
    score = F.leaky_relu(_gat_scores(src, dst, s_src, s_dst, s_edge), negative_slope)
    alpha = segment_softmax(score, ptr, dst)
    weights = hashing.drop(alpha, dropout, seed, paired=False)
    values = hashing.drop(h_src, message_dropout, message_seed, paired=True)
    return spmm(weights, values, ptr, src, ptr.numel() - 1), alpha


def gat_backward(grad_out, grad_alpha, ptr, src, t_ptr, t_col, t_perm, s_src, s_dst, s_edge,
                 h_src, alpha, negative_slope, dropout, seed, output_mask,
                 message_dropout=0.0, message_seed=None):
    dst = targets(ptr, src.numel())
    values = hashing.drop(h_src, message_dropout, message_seed, paired=True)
    grad_s_src = grad_s_dst = grad_s_edge = grad_h_src = None
    if output_mask[0] or output_mask[1] or output_mask[2]:
        grad_weights = sddmm(grad_out, values, ptr, src)
        grad_a = hashing.drop(grad_weights, dropout, seed, paired=False)
        if grad_alpha is not None:
            grad_a = grad_a + grad_alpha
        grad_score = softmax_backward(alpha, grad_a, ptr, dst)
        z = _gat_scores(src, dst, s_src, s_dst, s_edge)
        grad_z = torch.where(z > 0, grad_score, grad_score * negative_slope)
        if output_mask[0]:
            grad_s_src = _source_sum(grad_z, t_ptr, t_perm)
        if output_mask[1] and s_dst is not None:
            grad_s_dst = segment(grad_z, ptr, reduce='sum') if grad_z.numel() else \
                grad_z.new_zeros(s_dst.shape)
        if output_mask[2] and s_edge is not None:
            grad_s_edge = grad_z
    if output_mask[3]:
        weights = hashing.drop(alpha, dropout, seed, paired=False)
        grad_values = spmm(weights.index_select(0, t_perm), grad_out, t_ptr, t_col,
                           h_src.size(0))
        grad_h_src = hashing.drop(grad_values, message_dropout, message_seed, paired=True)
    return (_empty_or(output_mask[0], _zeros_if_empty(grad_s_src, s_src), s_src),
            _empty_or(output_mask[1], grad_s_dst, s_src),
            _empty_or(output_mask[2], grad_s_edge, s_src),
            _empty_or(output_mask[3], grad_h_src, h_src))


def _zeros_if_empty(grad: Optional[Tensor], like: Tensor) -> Optional[Tensor]:
    """A segment sum over no edges comes back empty; the gradient of every node is 0 then."""
    if grad is not None and grad.shape != like.shape:
        return like.new_zeros(like.shape)
    return grad


# --- GATv2 ---------------------------------------------------------------------------------------

def _edge_blocks(num_edges: int, per_edge: int):
    step = max(1, SCORE_BLOCK_ELEMENTS // max(1, per_edge))
    for start in range(0, num_edges, step):
        yield slice(start, min(start + step, num_edges))


def _gatv2_block(x_l, x_r, edge_attr, w_edge, src, dst, block) -> Tensor:
    z = x_l.index_select(0, src[block]) + x_r.index_select(0, dst[block])
    if edge_attr is not None:
        z = z + (edge_attr[block] @ w_edge.t()).view_as(z)
    return z


def gatv2_forward(ptr, src, t_ptr, t_col, t_perm, x_l, x_r, att, edge_attr, w_edge, h_src,
                  negative_slope, dropout, seed, message_dropout=0.0, message_seed=None):
    dst = targets(ptr, src.numel())
    heads, channels = x_l.size(1), x_l.size(2)
    score = x_l.new_empty(src.numel(), heads)
    for block in _edge_blocks(src.numel(), heads * channels):
        z = _gatv2_block(x_l, x_r, edge_attr, w_edge, src, dst, block)
        score[block] = (F.leaky_relu(z, negative_slope) * att).sum(-1)
    alpha = segment_softmax(score, ptr, dst)
    weights = hashing.drop(alpha, dropout, seed, paired=False)
    values = hashing.drop(h_src, message_dropout, message_seed, paired=True)
    return spmm(weights, values, ptr, src, ptr.numel() - 1), alpha


def gatv2_backward(grad_out, grad_alpha, ptr, src, t_ptr, t_col, t_perm, x_l, x_r, att,
                   edge_attr, w_edge, h_src, alpha, negative_slope, dropout, seed, output_mask,
                   message_dropout=0.0, message_seed=None, merge_h_src=False):
    dst = targets(ptr, src.numel())
    values = hashing.drop(h_src, message_dropout, message_seed, paired=True)
    edges = edge_attr is not None
    grad_x_l = grad_x_r = grad_att = grad_edge_attr = grad_w_edge = grad_h_src = None
    if any(output_mask[:5]):
        grad_weights = sddmm(grad_out, values, ptr, src)
        grad_a = hashing.drop(grad_weights, dropout, seed, paired=False)
        if grad_alpha is not None:
            grad_a = grad_a + grad_alpha
        grad_score = softmax_backward(alpha, grad_a, ptr, dst)
        grad_x_l, grad_x_r = torch.zeros_like(x_l), torch.zeros_like(x_r)
        grad_att = torch.zeros_like(att)
        if edges:
            grad_edge_attr = torch.empty_like(edge_attr)
            grad_w_edge = torch.zeros_like(w_edge)
        for block in _edge_blocks(src.numel(), x_l.size(1) * x_l.size(2)):
            z = _gatv2_block(x_l, x_r, edge_attr, w_edge, src, dst, block)
            g = grad_score[block].unsqueeze(-1)                          # [b, H, 1]
            grad_att += (g * F.leaky_relu(z, negative_slope)).sum(0)
            # aten's own LeakyReLU derivative (an ATen op, not public Python API: on upgrades
            # check its schema, (grad, self, negative_slope, self_is_result)).
            grad_z = torch.ops.aten.leaky_relu_backward(g * att, z, negative_slope, False)
            grad_x_l.index_add_(0, src[block], grad_z)
            grad_x_r.index_add_(0, dst[block], grad_z)
            if edges:
                flat = grad_z.reshape(grad_z.size(0), -1)
                grad_edge_attr[block] = flat @ w_edge
                grad_w_edge += flat.t() @ edge_attr[block]
    if output_mask[5]:
        weights = hashing.drop(alpha, dropout, seed, paired=False)
        grad_values = spmm(weights.index_select(0, t_perm), grad_out, t_ptr, t_col,
                           h_src.size(0))
        grad_h_src = hashing.drop(grad_values, message_dropout, message_seed, paired=True)
    if merges_h_src(output_mask, message_dropout, merge_h_src):
        grad_x_l = grad_x_l + grad_h_src
        grad_h_src = None
    return (_empty_or(output_mask[0], grad_x_l, x_l), _empty_or(output_mask[1], grad_x_r, x_l),
            _empty_or(output_mask[2], grad_att, x_l),
            _empty_or(output_mask[3] and edges, grad_edge_attr, x_l),
            _empty_or(output_mask[4] and edges, grad_w_edge, x_l),
            _empty_or(output_mask[5] and grad_h_src is not None, grad_h_src, x_l))

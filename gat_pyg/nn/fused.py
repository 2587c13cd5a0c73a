"""The fast path: destination-sorted (CSR) graphs, sparse-dense aggregation and blocked scores.

PyG's ``propagate`` gathers ``x_j`` for every edge, so each layer holds tensors of size
E x heads x channels in forward and backward. Here the aggregation ``out_i = sum_j a_ij x_j`` is,
for each head, the product of a sparse matrix A (rows = targets, values = attention) with the
dense source features, and its backward needs only

* ``grad_x = A^T @ grad_out``   (another sparse-dense product, with A's transpose kept as CSR),
* ``grad_a_ij = <grad_out_i, x_j>``   (a sampled dense-dense product, SDDMM, on A's pattern),

so no per-edge feature tensor exists in either direction. GATv2's score needs the per-edge
vector ``W_s x_j + W_t x_i``; it is formed in bounded blocks of edges and recomputed in backward.
"""
import warnings
from dataclasses import dataclass
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.fx.experimental.symbolic_shapes import guard_or_false
from torch_geometric.utils._segment import segment
from torch_geometric.utils.sparse import index2ptr

from gat_pyg import kernels
from gat_pyg.nn.functional import native_eager
from gat_pyg.nn.graph import PreparedGraph

# torch warns once per process that CSR support is "beta"; the operations used here (CSR
# construction, CSR @ dense, sampled_addmm) are stable and tested against the plain path.
warnings.filterwarnings('ignore', message='Sparse CSR tensor support is in beta state')

# Elements (edges x heads x channels) in one block of GATv2's per-edge score computation:
# 4M float32 values = 16 MB per temporary, whatever the size of the graph.
SCORE_BLOCK_ELEMENTS = 1 << 22


def known_empty(count) -> bool:
    """``count == 0`` where that is known; ``False`` where it is data-dependent (under
    torch.compile, or a tensor under torch.jit.trace), so the general route runs and gives the
    same result."""
    if torch.jit.is_tracing():
        return False
    return guard_or_false(count == 0)


def _csr(ptr: Tensor, col: Tensor, values: Tensor, shape) -> Tensor:
    return torch.sparse_csr_tensor(ptr, col, values, shape, check_invariants=False)


@dataclass
class HeadBlocks:
    """CSR indices of ``group`` heads stacked block-diagonally, for one product per group.

    Row ``g * N_dst + i`` holds head g's attention of target i, column ``g * N_src + j`` its
    source j. A head-major ``[H, E]`` attention tensor is then, group by group, exactly the value
    array of this matrix, and head-major features ``[H, N, C]`` are its dense operand: no copy.
    On small graphs one product for all heads saves the per-call overhead of eight; on large
    ones the group shrinks to one head, so these indices never exceed
    ``HEAD_BLOCK_ENTRIES`` entries.
    """
    group: int
    crow: Tensor
    col: Tensor
    graph: PreparedGraph
    _transposed: Optional[Tuple[Tensor, Tensor]] = None

    def transposed(self) -> Tuple[Tensor, Tensor]:
        """``(t_crow, t_col)`` of the transposed blocks, built on first use (backward)."""
        if self._transposed is None:
            t_ptr, t_col, _ = self.graph.transpose()
            self._transposed = _stack_blocks(t_ptr, t_col, self.group, self.graph.num_dst)
        return self._transposed


# Most index entries (edges x heads) in one block-diagonal product: 32 MB of int64 indices.
HEAD_BLOCK_ENTRIES = 1 << 22


def _stack_blocks(ptr: Tensor, col: Tensor, group: int, num_cols: int):
    num_edges = col.numel()
    offsets = torch.arange(group, device=col.device).unsqueeze(1)
    crow = torch.cat([(ptr[:-1].unsqueeze(0) + offsets * num_edges).flatten(),
                      ptr.new_full((1, ), group * num_edges)])
    return crow, (col.unsqueeze(0) + offsets * num_cols).flatten()


def head_blocks(graph: PreparedGraph, heads: int) -> HeadBlocks:
    """The graph's block-diagonal indices for ``heads`` heads, kept on the graph (so every
    layer with that many heads shares them)."""
    blocks = graph._blocks.get(heads)
    if blocks is None:
        group = max(1, min(heads, HEAD_BLOCK_ENTRIES // max(1, graph.num_edges)))
        while heads % group:
            group -= 1
        crow, col = _stack_blocks(graph.ptr, graph.src, group, graph.num_src)
        blocks = graph._blocks[heads] = HeadBlocks(group, crow, col, graph)
    return blocks


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


class CSRAggregate(torch.autograd.Function):
    """``out[i, h] = sum over edges (j -> i) of alpha[e, h] * x[j, h]`` as sparse products."""

    @staticmethod
    def forward(ctx, alpha: Tensor, x: Tensor, graph: PreparedGraph) -> Tensor:
        heads, channels = x.size(1), x.size(2)
        blocks = head_blocks(graph, heads)
        g = blocks.group
        alpha_t = alpha.t().contiguous()            # [H, E]
        x_t = x.transpose(0, 1).contiguous()        # [H, N_src, C]
        shape = (g * graph.num_dst, g * graph.num_src)
        parts = [_csr(blocks.crow, blocks.col, a, shape) @ h
                 for a, h in zip(_grouped(alpha_t, g), _grouped(x_t, g))]
        out = parts[0] if len(parts) == 1 else torch.cat(parts)
        ctx.save_for_backward(alpha_t, x_t)
        ctx.graph = graph
        return out.view(heads, graph.num_dst, channels).transpose(0, 1)

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        alpha_t, x_t = ctx.saved_tensors
        graph: PreparedGraph = ctx.graph
        blocks = head_blocks(graph, x_t.size(0))
        g = blocks.group
        grad_t = grad_out.transpose(0, 1).contiguous()    # [H, N_dst, C]
        grad_alpha = grad_x = None
        if ctx.needs_input_grad[0]:
            shape = (g * graph.num_dst, g * graph.num_src)
            parts = [_sddmm(_csr(blocks.crow, blocks.col, a, shape), d, h)
                     for a, d, h in zip(_grouped(alpha_t, g), _grouped(grad_t, g),
                                        _grouped(x_t, g))]
            grad_alpha = torch.cat(parts).view(alpha_t.shape).t()
        if ctx.needs_input_grad[1]:
            shape = (g * graph.num_src, g * graph.num_dst)
            t_perm = graph.transpose()[2]
            t_crow, t_col = blocks.transposed()
            parts = [_csr(t_crow, t_col, a, shape) @ d
                     for a, d in zip(_grouped(alpha_t[:, t_perm], g),
                                     _grouped(grad_t, g))]
            grad_x = torch.cat(parts).view(x_t.shape).transpose(0, 1)
        return grad_alpha, grad_x, None


def csr_aggregate(alpha: Tensor, x: Tensor, graph: PreparedGraph) -> Tensor:
    """Attention-weighted sum of source features per destination: [E, H] x [N_src, H, C]."""
    if known_empty(graph.num_edges):
        return x.new_zeros(graph.num_dst, x.size(1), x.size(2)) + 0 * x.sum()
    return CSRAggregate.apply(alpha, x, graph)


class SortedGather(torch.autograd.Function):
    """``values[index]`` whose backward sums each node's edges as one contiguous segment.

    The edges are sorted by ``index`` through ``order`` (None: already sorted), so the gradient
    is a segment reduction instead of autograd's scatter-add (``index_put`` with accumulate).
    """

    @staticmethod
    def forward(ctx, values: Tensor, index: Tensor, ptr: Tensor, order: Optional[Tensor]):
        ctx.save_for_backward(ptr, order)
        return values.index_select(0, index)

    @staticmethod
    def backward(ctx, grad: Tensor):
        ptr, order = ctx.saved_tensors
        if order is not None:
            grad = grad.index_select(0, order)
        return segment(grad.contiguous(), ptr, reduce='sum'), None, None, None


def gather_sources(values: Tensor, graph: PreparedGraph) -> Tensor:
    """Per-edge copies ``values[src]`` of per-source-node values, in destination order."""
    if not (values.requires_grad and torch.is_grad_enabled()):
        # No backward: the transposed order (a sort) is not needed.
        return values.index_select(0, graph.src)
    t_ptr, _, t_perm = graph.transpose()
    return SortedGather.apply(values, graph.src, t_ptr, t_perm)


def gather_targets(values: Tensor, graph: PreparedGraph) -> Tensor:
    """Per-edge copies ``values[dst]`` of per-target-node values, in destination order."""
    return SortedGather.apply(values, graph.dst, graph.ptr, None)


class SegmentSoftmax(torch.autograd.Function):
    """Softmax of ``[E, H]`` scores over each destination's (contiguous) run of edges.

    The same numbers as ``torch_geometric.utils.softmax(src, ptr=ptr)`` (its sums are the
    same ``segment`` calls, torch_scatter's kernels when installed), with a closed-form
    backward, ``alpha * (g - sum_segment(alpha * g))``, instead of autograd through five ops.
    """

    @staticmethod
    def forward(ctx, scores: Tensor, ptr: Tensor, dst: Tensor) -> Tensor:
        # torch's own segment max is 3x faster than torch_scatter's, which also tracks argmax
        # (Cora, [13264, 8]: 0.11 ms against 0.36 ms). The max of an empty segment (a target
        # without edges) is never gathered back.
        # Private API (torch._segment_reduce, stable since torch 1.12): on upgrades check that
        # it still takes offsets= and unsafe=; the fallback is PyG's segment(reduce='max').
        peak = torch._segment_reduce(scores, 'max', offsets=ptr, axis=0, unsafe=True)
        alpha = (scores - peak.index_select(0, dst)).exp_()
        alpha.div_(segment(alpha, ptr, reduce='sum').index_select(0, dst))
        ctx.save_for_backward(alpha, ptr, dst)
        return alpha

    @staticmethod
    def backward(ctx, grad_alpha: Tensor):
        alpha, ptr, dst = ctx.saved_tensors
        weighted = alpha * grad_alpha
        return weighted - alpha * segment(weighted, ptr, reduce='sum').index_select(0, dst), \
            None, None


def segment_softmax(scores: Tensor, graph: PreparedGraph) -> Tensor:
    if known_empty(graph.num_edges):
        return scores
    return SegmentSoftmax.apply(scores, graph.ptr, graph.dst)


def _edge_blocks(num_edges: int, per_edge: int):
    step = max(1, SCORE_BLOCK_ELEMENTS // max(1, per_edge))
    for start in range(0, num_edges, step):
        yield slice(start, min(start + step, num_edges))


class BlockedGATv2Score(torch.autograd.Function):
    """GATv2 logits ``a . LeakyReLU(x_l[src] + x_r[dst] + W_e e)`` computed block by block.

    The per-edge [E, H, C] vector is never held whole: forward keeps only the [E, H] logits,
    backward recomputes each block's vector and accumulates the gradients. A graph that fits
    in one block keeps that block's vectors instead (no more memory than a block costs
    anyway), which saves the recomputation on small graphs.
    """

    @staticmethod
    def forward(ctx, x_l: Tensor, x_r: Tensor, att: Tensor, edge_attr: Optional[Tensor],
                w_edge: Optional[Tensor], src: Tensor, dst: Tensor,
                negative_slope: float) -> Tensor:
        num_heads, channels = x_l.size(1), x_l.size(2)
        logits = x_l.new_empty(src.numel(), num_heads)
        blocks = list(_edge_blocks(src.numel(), num_heads * channels))
        ctx.kept = None
        for block in blocks:
            z = _gatv2_block(x_l, x_r, edge_attr, w_edge, src, dst, block)
            act = F.leaky_relu(z, negative_slope)
            logits[block] = (act * att).sum(-1)
            if len(blocks) == 1:
                ctx.kept = (z, act)
        ctx.save_for_backward(x_l, x_r, att, edge_attr, w_edge, src, dst)
        ctx.negative_slope = negative_slope
        return logits

    @staticmethod
    def backward(ctx, grad_logits: Tensor):
        x_l, x_r, att, edge_attr, w_edge, src, dst = ctx.saved_tensors
        slope = ctx.negative_slope
        grad_x_l, grad_x_r = torch.zeros_like(x_l), torch.zeros_like(x_r)
        grad_att = torch.zeros_like(att)
        grad_edge_attr = None if edge_attr is None else torch.empty_like(edge_attr)
        grad_w_edge = None if w_edge is None else torch.zeros_like(w_edge)
        for block in _edge_blocks(src.numel(), x_l.size(1) * x_l.size(2)):
            if ctx.kept is not None:
                z, act = ctx.kept
            else:
                z = _gatv2_block(x_l, x_r, edge_attr, w_edge, src, dst, block)
                act = F.leaky_relu(z, slope)
            g = grad_logits[block].unsqueeze(-1)                      # [b, H, 1]
            grad_att += (g * act).sum(0, keepdim=True)
            # aten's own LeakyReLU derivative (an ATen op, not public Python API: on upgrades
            # check its schema, (grad, self, negative_slope, self_is_result)).
            grad_z = torch.ops.aten.leaky_relu_backward(g * att, z, slope, False)
            grad_x_l.index_add_(0, src[block], grad_z)
            grad_x_r.index_add_(0, dst[block], grad_z)
            if edge_attr is not None:
                flat = grad_z.reshape(grad_z.size(0), -1)
                grad_edge_attr[block] = flat @ w_edge
                grad_w_edge += flat.t() @ edge_attr[block]
        ctx.kept = None
        return (grad_x_l, grad_x_r, grad_att, grad_edge_attr, grad_w_edge, None, None, None)


def _gatv2_block(x_l, x_r, edge_attr, w_edge, src, dst, block) -> Tensor:
    z = x_l.index_select(0, src[block]) + x_r.index_select(0, dst[block])
    if edge_attr is not None:
        z = z + (edge_attr[block] @ w_edge.t()).view_as(z)
    return z


def blocked_gatv2_score(x_l: Tensor, x_r: Tensor, att: Tensor, edge_attr: Optional[Tensor],
                        w_edge: Optional[Tensor], src: Tensor, dst: Tensor,
                        negative_slope: float) -> Tensor:
    return BlockedGATv2Score.apply(x_l, x_r, att, edge_attr, w_edge, src, dst,
                                   negative_slope)


def to_csr(x: Tensor) -> Tensor:
    """A torch.sparse COO/CSR matrix as CSR (a coalesced COO is already in CSR order)."""
    if x.layout == torch.sparse_csr:
        return x
    if x.layout == torch.sparse_coo:
        x = x.coalesce()
        return _csr(index2ptr(x.indices()[0], x.size(0)), x.indices()[1], x.values(),
                    tuple(x.shape))
    raise TypeError(f"x: expected a dense, sparse COO or sparse CSR tensor, got {x.layout}")


class SparseLinear(torch.autograd.Function):
    """``X @ W^T`` for a sparse CSR matrix X given as (values, crow, col, row).

    Forward is a CSR product. Backward needs ``X^T @ grad`` for the weight: the transpose of
    a CSR matrix is the COO matrix with its row and column indices swapped, and torch's COO
    product needs no sorted indices, so nothing is sorted or cached per call (input dropout
    may change the pattern every epoch). The values' gradient is an SDDMM on X's pattern.
    """

    @staticmethod
    def forward(ctx, values: Tensor, weight: Tensor, crow: Tensor, col: Tensor, row: Tensor,
                shape: Tuple[int, int]) -> Tensor:
        ctx.save_for_backward(values, weight, crow, col, row)
        ctx.shape = shape
        return _csr(crow, col, values, shape) @ weight.t()

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        values, weight, crow, col, row = ctx.saved_tensors
        grad_values = grad_weight = None
        grad_out = grad_out.contiguous()
        if ctx.needs_input_grad[0]:
            grad_values = _sddmm(_csr(crow, col, values, ctx.shape), grad_out, weight.t())
        if ctx.needs_input_grad[1]:
            x_t = torch.sparse_coo_tensor(torch.stack([col, row]), values,
                                          (ctx.shape[1], ctx.shape[0]), check_invariants=False)
            grad_weight = torch.sparse.mm(x_t, grad_out).t()
        return grad_values, grad_weight, None, None, None, None


def sparse_linear(x: Tensor, weight: Tensor, bias: Optional[Tensor]) -> Tensor:
    """``x @ weight^T + bias`` for a torch.sparse COO/CSR ``x`` (float32 or float64).

    Under autocast the product stays in ``x``'s dtype: torch's sparse CSR kernels have no
    half-precision version, and autocast would cast the sparse operand to one.
    """
    if torch.is_autocast_enabled(x.device.type):
        with torch.autocast(x.device.type, enabled=False):
            return sparse_linear(x, weight.to(x.dtype),
                                 None if bias is None else bias.to(x.dtype))
    native = native_eager(weight) and x.dtype == weight.dtype
    if native and x.layout == torch.sparse_coo:
        # A coalesced COO tensor lists its entries sorted by row, as the native product reads
        # them: no CSR conversion (values may need a gradient here).
        x = x.coalesce()
        row, col = x.indices()
        out = kernels.sparse_linear(row, col, x.values(), weight, x.size(0))
        return out if bias is None else out + bias
    x = to_csr(x)
    crow, col = x.crow_indices(), x.col_indices()
    row = torch.repeat_interleave(torch.arange(x.size(0), device=crow.device),
                                  crow[1:] - crow[:-1], output_size=col.numel())
    if native:
        out = kernels.sparse_linear(row, col, x.values(), weight, x.size(0))
    else:
        out = SparseLinear.apply(x.values(), weight, crow, col, row, tuple(x.shape))
    return out if bias is None else out + bias

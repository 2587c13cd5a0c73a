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
import weakref
from dataclasses import dataclass
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor
from torch_geometric.typing import SparseTensor
from torch_geometric.utils import is_torch_sparse_tensor, to_edge_index
from torch_geometric.utils.sparse import index2ptr

# torch warns once per process that CSR support is "beta"; the operations used here (CSR
# construction, CSR @ dense, sampled_addmm) are stable and tested against the plain path.
warnings.filterwarnings('ignore', message='Sparse CSR tensor support is in beta state')

# Elements (edges x heads x channels) in one block of GATv2's per-edge score computation:
# 4M float32 values = 16 MB per temporary, whatever the size of the graph.
SCORE_BLOCK_ELEMENTS = 1 << 22


@dataclass
class CSRGraph:
    """A graph sorted by destination, plus the transposed (source-sorted) order for backward.

    ``perm[k]`` is the position, in the order PyG reports edges, of the k-th sorted edge.
    """
    ptr: Tensor       # [num_dst + 1] row pointers; rows are destination nodes
    src: Tensor       # [E] source of each destination-sorted edge
    dst: Tensor       # [E] destination of each destination-sorted edge (non-decreasing)
    perm: Tensor      # [E] position of each sorted edge in the caller's edge order
    t_ptr: Tensor     # [num_src + 1] row pointers of the transpose; rows are sources
    t_col: Tensor     # [E] destination of each source-sorted edge
    t_perm: Tensor    # [E] destination-sorted position of each source-sorted edge
    num_src: int
    num_dst: int

    @property
    def num_edges(self) -> int:
        return self.src.numel()

    def to_input_order(self, edge_values: Tensor) -> Tensor:
        """Re-orders per-edge values from sorted order to the caller's edge order."""
        out = torch.empty_like(edge_values)
        out[self.perm] = edge_values
        return out


def edge_endpoints(edge_index) -> Tuple[Tensor, Tensor]:
    """(source, destination) of every edge, in the order PyG's message passing visits them."""
    if isinstance(edge_index, SparseTensor):
        dst, src, _ = edge_index.coo()
        return src, dst
    if is_torch_sparse_tensor(edge_index):
        (dst, src), _ = to_edge_index(edge_index)
        return src, dst
    return edge_index[0], edge_index[1]


def build_csr_graph(edge_index, num_src: int, num_dst: int) -> CSRGraph:
    src, dst = edge_endpoints(edge_index)
    src, dst = src.long(), dst.long()
    dst_sorted, perm = torch.sort(dst, stable=True)
    src_sorted = src[perm]
    src_of_t, t_perm = torch.sort(src_sorted, stable=True)
    return CSRGraph(ptr=index2ptr(dst_sorted, num_dst), src=src_sorted, dst=dst_sorted,
                    perm=perm, t_ptr=index2ptr(src_of_t, num_src), t_col=dst_sorted[t_perm],
                    t_perm=t_perm, num_src=num_src, num_dst=num_dst)


class GraphCache:
    """Remembers the sorted form of the last graph a layer saw.

    Keyed on the identity and in-place version counter of the caller's ``edge_index`` (held
    through a weak reference, so the cache never keeps a graph alive): a training loop that
    passes the same tensor every epoch sorts it once. Nothing here is saved or pickled.
    """

    def __init__(self):
        self.clear()

    def clear(self) -> None:
        self._ref = None
        self._key = None
        self._value = None

    @staticmethod
    def _version(edge_index) -> int:
        if isinstance(edge_index, SparseTensor):
            return edge_index.storage.col()._version
        return edge_index._version

    def get(self, edge_index, key: tuple):
        if (self._ref is not None and self._ref() is edge_index
                and self._key == (self._version(edge_index), ) + key):
            return self._value
        return None

    def put(self, edge_index, key: tuple, value) -> None:
        self._ref = weakref.ref(edge_index)
        self._key = (self._version(edge_index), ) + key
        self._value = value

    def __getstate__(self):
        return {}

    def __setstate__(self, state):
        self.clear()

    def __deepcopy__(self, memo):
        return GraphCache()


def _csr(ptr: Tensor, col: Tensor, values: Tensor, shape) -> Tensor:
    return torch.sparse_csr_tensor(ptr, col, values, shape, check_invariants=False)


class CSRAggregate(torch.autograd.Function):
    """``out[i, h] = sum over edges (j -> i) of alpha[e, h] * x[j, h]``, one SpMM per head."""

    @staticmethod
    def forward(ctx, alpha: Tensor, x: Tensor, graph: CSRGraph) -> Tensor:
        num_heads, channels = x.size(1), x.size(2)
        alpha_t = alpha.t().contiguous()            # [H, E]: one contiguous value row per head
        x_t = x.transpose(0, 1).contiguous()        # [H, N_src, C]
        shape = (graph.num_dst, graph.num_src)
        out = x.new_empty(num_heads, graph.num_dst, channels)
        for h in range(num_heads):
            out[h] = _csr(graph.ptr, graph.src, alpha_t[h], shape) @ x_t[h]
        ctx.save_for_backward(alpha_t, x_t)
        ctx.graph = graph
        return out.transpose(0, 1)

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        alpha_t, x_t = ctx.saved_tensors
        graph: CSRGraph = ctx.graph
        grad_t = grad_out.transpose(0, 1).contiguous()    # [H, N_dst, C]
        grad_alpha = grad_x = None
        if ctx.needs_input_grad[0]:
            grad_alpha = alpha_t.new_empty(alpha_t.shape)
            for h in range(alpha_t.size(0)):
                pattern = _csr(graph.ptr, graph.src, alpha_t[h],
                               (graph.num_dst, graph.num_src))
                grad_alpha[h] = torch.sparse.sampled_addmm(
                    pattern, grad_t[h], x_t[h].t(), beta=0.0).values()
            grad_alpha = grad_alpha.t()
        if ctx.needs_input_grad[1]:
            grad_x = x_t.new_empty(x_t.shape)
            values_t = alpha_t[:, graph.t_perm]
            for h in range(x_t.size(0)):
                grad_x[h] = _csr(graph.t_ptr, graph.t_col, values_t[h],
                                 (graph.num_src, graph.num_dst)) @ grad_t[h]
            grad_x = grad_x.transpose(0, 1)
        return grad_alpha, grad_x, None


def csr_aggregate(alpha: Tensor, x: Tensor, graph: CSRGraph) -> Tensor:
    """Attention-weighted sum of source features per destination: [E, H] x [N_src, H, C]."""
    if graph.num_edges == 0:
        return x.new_zeros(graph.num_dst, x.size(1), x.size(2)) + 0 * x.sum()
    return CSRAggregate.apply(alpha, x, graph)


def _edge_blocks(num_edges: int, per_edge: int):
    step = max(1, SCORE_BLOCK_ELEMENTS // max(1, per_edge))
    for start in range(0, num_edges, step):
        yield slice(start, min(start + step, num_edges))


class BlockedGATv2Score(torch.autograd.Function):
    """GATv2 logits ``a . LeakyReLU(x_l[src] + x_r[dst] + W_e e)`` computed block by block.

    The per-edge [E, H, C] vector is never held whole: forward keeps only the [E, H] logits,
    backward recomputes each block's vector and accumulates the gradients.
    """

    @staticmethod
    def forward(ctx, x_l: Tensor, x_r: Tensor, att: Tensor, edge_attr: Optional[Tensor],
                w_edge: Optional[Tensor], src: Tensor, dst: Tensor,
                negative_slope: float) -> Tensor:
        num_heads, channels = x_l.size(1), x_l.size(2)
        logits = x_l.new_empty(src.numel(), num_heads)
        for block in _edge_blocks(src.numel(), num_heads * channels):
            z = _gatv2_block(x_l, x_r, edge_attr, w_edge, src, dst, block)
            logits[block] = (F.leaky_relu(z, negative_slope) * att).sum(-1)
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
            z = _gatv2_block(x_l, x_r, edge_attr, w_edge, src, dst, block)
            g = grad_logits[block].unsqueeze(-1)                      # [b, H, 1]
            grad_att += (g * F.leaky_relu(z, slope)).sum(0, keepdim=True)
            # d LeakyReLU(z)/dz is 1 where z > 0 and the slope elsewhere (as torch defines it).
            grad_z = g * att * torch.where(z > 0, 1.0, slope).to(z.dtype)
            grad_x_l.index_add_(0, src[block], grad_z)
            grad_x_r.index_add_(0, dst[block], grad_z)
            if edge_attr is not None:
                flat = grad_z.reshape(grad_z.size(0), -1)
                grad_edge_attr[block] = flat @ w_edge
                grad_w_edge += flat.t() @ edge_attr[block]
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

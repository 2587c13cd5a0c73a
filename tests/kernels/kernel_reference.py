"""Graphs and a plain-torch reference of the fused attention formulas, for the kernel tests.

The reference is PyG's message passing written out: gather per edge, LeakyReLU,
``torch_geometric.utils.softmax`` over each target's edges, dropout mask, scatter-add. It
builds E x H x C tensors on purpose; it is the meaning the kernels must reproduce.

Imported as ``kernel_reference`` (pytest puts this folder on ``sys.path``; the name differs from
``tests/nn/reference.py`` so both folders run in one session).
"""
import types
from dataclasses import dataclass
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor
from torch_geometric.utils import softmax

import gat_pyg.kernels  # noqa: F401  (registers the operators)
from gat_pyg.kernels.dispatch import operator

OPS = types.SimpleNamespace(**{name: operator(name) for name in (
    'gat_forward', 'gatv2_forward', 'attention_dropout', 'feature_dropout', 'head_scores',
    'sparse_linear', 'sparse_dropout')})
"""The forward operators as the package calls them: the device's kernel with its autograd (or
the reference where none runs). ``torch.ops.gat_pyg.*`` are the bare kernels, without autograd."""


@dataclass
class Graph:
    """A destination-sorted graph with its transpose, as the kernels take it."""
    ptr: Tensor
    src: Tensor
    t_ptr: Tensor
    t_col: Tensor
    t_perm: Tensor
    dst: Tensor        # [E] target of each sorted edge (int64), for the reference only
    perm: Tensor       # [E] position in the input edge order of each sorted edge
    num_src: int
    num_dst: int

    @property
    def num_edges(self) -> int:
        return self.src.numel()

    def args(self) -> Tuple[Tensor, ...]:
        return self.ptr, self.src, self.t_ptr, self.t_col, self.t_perm


def _pointers(index: Tensor, rows: int) -> Tensor:
    ptr = torch.zeros(rows + 1, dtype=torch.long)
    ptr[1:] = torch.bincount(index, minlength=rows).cumsum(0)
    return ptr


def sorted_graph(edge_index: Tensor, num_src: int, num_dst: int,
                 index_dtype: torch.dtype = torch.long) -> Graph:
    """Sorts ``edge_index`` (row 0 sources, row 1 targets) by target, stably, and transposes."""
    src, dst = edge_index[0].long(), edge_index[1].long()
    dst, perm = torch.sort(dst, stable=True)
    src = src[perm]
    _, t_perm = torch.sort(src, stable=True)
    cast = lambda t: t.to(index_dtype)   # noqa: E731
    return Graph(cast(_pointers(dst, num_dst)), cast(src), cast(_pointers(src, num_src)),
                 cast(dst[t_perm]), cast(t_perm), dst, perm, num_src, num_dst)


def random_edges(num_src: int, num_dst: int, num_edges: int, seed: int = 0) -> Tensor:
    """Uniform random edges: duplicates and isolated targets happen at these sizes."""
    gen = torch.Generator().manual_seed(seed)
    return torch.stack([torch.randint(0, max(num_src, 1), (num_edges, ), generator=gen),
                        torch.randint(0, max(num_dst, 1), (num_edges, ), generator=gen)])


# name -> (edge_index, num_src, num_dst)
GRAPHS = {
    'random': (random_edges(9, 9, 40, seed=1), 9, 9),
    'more_sources': (random_edges(11, 4, 30, seed=2), 11, 4),
    'more_targets': (random_edges(3, 10, 12, seed=3), 3, 10),
    # targets 0, 2, 4 and sources 3, 4 have no edge; 0 -> 1 appears three times.
    'isolated_duplicates': (torch.tensor([[0, 2, 0, 1, 0], [1, 1, 1, 3, 1]]), 5, 5),
    'no_edges': (torch.empty(2, 0, dtype=torch.long), 4, 3),
    'no_nodes': (torch.empty(2, 0, dtype=torch.long), 0, 0),
}


def gat_reference(graph: Graph, s_src: Tensor, s_dst: Optional[Tensor], s_edge: Optional[Tensor],
                  h_src: Tensor, negative_slope: float, keep: Optional[Tensor] = None,
                  p: float = 0.0) -> Tuple[Tensor, Tensor]:
    """GAT (arXiv 1710.10903) as PyG's GATConv computes it; returns (out, alpha after dropout)."""
    src, dst = graph.src.long(), graph.dst
    raw = s_src[src]
    if s_dst is not None:
        raw = raw + s_dst[dst]
    if s_edge is not None:
        raw = raw + s_edge
    return _aggregate(graph, F.leaky_relu(raw, negative_slope), h_src, keep, p)


def gatv2_reference(graph: Graph, x_l: Tensor, x_r: Tensor, att: Tensor,
                    edge_attr: Optional[Tensor], w_edge: Optional[Tensor], h_src: Tensor,
                    negative_slope: float, keep: Optional[Tensor] = None,
                    p: float = 0.0) -> Tuple[Tensor, Tensor]:
    """GATv2 (arXiv 2105.14491) as PyG's GATv2Conv computes it."""
    src, dst = graph.src.long(), graph.dst
    z = x_r[dst] + x_l[src]
    if edge_attr is not None:
        z = z + (edge_attr @ w_edge.t()).view(-1, *x_l.shape[1:])
    score = (F.leaky_relu(z, negative_slope) * att).sum(-1)
    return _aggregate(graph, score, h_src, keep, p)


def _aggregate(graph: Graph, score: Tensor, h_src: Tensor, keep: Optional[Tensor],
               p: float) -> Tuple[Tensor, Tensor]:
    alpha = softmax(score, graph.dst, num_nodes=graph.num_dst)
    if keep is not None:
        alpha = alpha * keep / (1 - p) if p < 1 else alpha * 0
    out = h_src.new_zeros(graph.num_dst, *h_src.shape[1:])
    out = out.index_add(0, graph.dst, alpha.unsqueeze(-1) * h_src[graph.src.long()])
    return out, alpha

"""Node blocks for layer-wise inference: a graph cut into runs of consecutive target nodes, each
with its full in-neighbourhood.

Layer-wise inference (:meth:`gat_pyg.models.BaseModel.inference`, PyG's
``BasicGNN.inference`` pattern) computes one layer for every node before the next layer starts.
A node's output of one layer depends only on the previous layer's outputs at the node itself and
at its in-neighbours, so a block of targets needs exactly the edges into it and the rows of their
sources. Sorting the edges by target once makes the edges of targets ``start .. end - 1`` one
contiguous slice (``ptr[start]:ptr[end]``, CSR order), so cutting the graph into blocks costs one
sort, not one search per block.

Each block is a bipartite graph, as PyG's mini-batches are: its sources are numbered with the
targets first (``n_id[:num_targets]`` are the targets themselves), so a layer that adds
self-loops for ``i < min(num_src, num_dst)`` joins each target to itself, as on the whole graph.
"""
from dataclasses import dataclass
from typing import Iterator, Optional, Tuple

import torch
from torch import Tensor


@dataclass
class Block:
    """The edges into targets ``start .. end - 1`` in local numbering.

    Attributes:
        start, end (int): The targets are the global nodes ``start .. end - 1``.
        n_id (Tensor): Global ids of the sources ``[num_src]``, the targets first.
        edge_index (Tensor): ``[2, E_b]``: row 0 indexes ``n_id``, row 1 the targets
            (``0 .. end - start - 1``).
        edge_weight (Tensor, optional): ``[E_b]`` weights of these edges, if the graph has any.
    """
    start: int
    end: int
    n_id: Tensor
    edge_index: Tensor
    edge_weight: Optional[Tensor] = None

    @property
    def size(self) -> Tuple[int, int]:
        """``(num_src, num_dst)``, the ``size`` argument of a bipartite layer call."""
        return self.n_id.numel(), self.end - self.start


class NodeBlocks:
    """A graph cut into blocks of at most ``batch_size`` consecutive target nodes.

    Args:
        edge_index (Tensor): ``[2, E]`` global edges (row 0 sources, row 1 targets), every id
            in ``[0, num_nodes)``.
        num_nodes (int): Number of nodes.
        batch_size (int): Targets per block (the last block may be smaller).
        edge_weight (Tensor, optional): ``[E]`` per-edge weights carried into the blocks
            (GCN's normalisation). (default: ``None``)
    """

    def __init__(self, edge_index: Tensor, num_nodes: int, batch_size: int,
                 edge_weight: Optional[Tensor] = None):
        self.num_nodes = num_nodes
        self.batch_size = batch_size
        edge_index = edge_index.long()
        dst = edge_index[1]
        order = torch.argsort(dst, stable=True)
        self.src = edge_index[0, order]
        self.dst = dst[order]
        self.edge_weight = edge_weight[order] if edge_weight is not None else None
        counts = torch.bincount(dst, minlength=num_nodes)
        self.ptr = torch.cat([counts.new_zeros(1), counts.cumsum(0)]).tolist()

    def __len__(self) -> int:
        return max(1, -(-self.num_nodes // self.batch_size))

    def __iter__(self) -> Iterator[Block]:
        # An empty graph still gets one (empty) block, so a layer runs and says its width.
        for start in range(0, max(self.num_nodes, 1), self.batch_size):
            yield self.block(start, min(start + self.batch_size, self.num_nodes))

    def block(self, start: int, end: int) -> Block:
        """The block of targets ``start .. end - 1``."""
        lo, hi = self.ptr[start], self.ptr[end]
        src = self.src[lo:hi]
        targets = torch.arange(start, end, device=src.device)
        outside = (src < start) | (src >= end)
        others = torch.unique(src[outside])                 # sorted, so searchsorted finds them
        local_src = torch.where(outside, (end - start) + torch.searchsorted(others, src),
                                src - start)
        edge_index = torch.stack([local_src, self.dst[lo:hi] - start])
        weight = self.edge_weight[lo:hi] if self.edge_weight is not None else None
        return Block(start, end, torch.cat([targets, others]), edge_index, weight)


def node_rows(x: Tensor, index: Tensor) -> Tensor:
    """Rows ``index`` of node features ``x``, dense or torch.sparse COO (``index_select``
    supports both; basic slicing does not support sparse tensors)."""
    return x.index_select(0, index.to(x.device))

"""Argument checks shared by the analysis functions (clear ``ValueError`` / ``TypeError``).

The checks any module needs (node counts, edge indices, shapes in messages) are the layers'
own, :mod:`gat_pyg.nn.checks`; this module adds what only the analyses take.
"""
import torch
from torch import Tensor
from torch_geometric.utils import is_torch_sparse_tensor

from gat_pyg.nn import checks
from gat_pyg.nn.checks import check_num_nodes, shape_of

__all__ = ['check_edge_index', 'check_node_mask', 'check_node_vector', 'check_num_nodes']


def check_edge_index(edge_index, num_nodes: int) -> Tensor:
    """An ``edge_index`` ``[2, E]`` (row 0 sources, row 1 targets) with indices < ``num_nodes``.

    The analyses count and group edges by target, so they take the index form only: a sparse
    adjacency would need its own (transposed) reading of rows and columns.
    """
    if isinstance(edge_index, Tensor) and is_torch_sparse_tensor(edge_index):
        raise TypeError("edge_index: expected a [2, E] index tensor, got a torch.sparse "
                        "adjacency; convert it with torch_geometric.utils.to_edge_index (and "
                        "swap its rows: sparse adjacencies are [targets, sources])")
    checks.check_graph(edge_index, num_nodes, num_nodes)
    return edge_index.long()


def check_node_vector(t, name: str, num_nodes: int) -> Tensor:
    """A 1-D tensor with one entry per node."""
    if not isinstance(t, Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor [N], got {type(t).__name__}")
    if t.dim() != 1 or t.size(0) != num_nodes:
        raise ValueError(f"{name}: expected shape [N] = [{num_nodes}], got {shape_of(t)}")
    return t


def check_node_mask(mask, num_nodes: int) -> Tensor:
    """``None`` (all nodes), a boolean ``[N]`` mask or an index tensor -> boolean ``[N]``."""
    if mask is None:
        return torch.ones(num_nodes, dtype=torch.bool)
    if not isinstance(mask, Tensor):
        raise TypeError(f"mask: expected None, a bool tensor [N] or node indices, got "
                        f"{type(mask).__name__}")
    if mask.dtype == torch.bool:
        return check_node_vector(mask, 'mask', num_nodes)
    if mask.is_floating_point() or mask.dim() != 1:
        raise ValueError(f"mask: expected a bool tensor [N] or a 1-D tensor of node indices, "
                         f"got {mask.dtype} of shape {shape_of(mask)}")
    if mask.numel() and (int(mask.min()) < 0 or int(mask.max()) >= num_nodes):
        raise ValueError(f"mask: node indices must lie in [0, {num_nodes - 1}], got "
                         f"[{int(mask.min())}, {int(mask.max())}]")
    out = torch.zeros(num_nodes, dtype=torch.bool)
    out[mask.long()] = True
    return out

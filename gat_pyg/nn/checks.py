"""Input validation shared by every layer.

Each check raises ``TypeError`` (wrong kind of object) or ``ValueError`` (right kind, wrong
shape or content) with a message that names the argument and the expected form, so misuse
fails at the layer boundary instead of deep inside a scatter kernel or as silent NaNs.
"""
import numbers
from typing import Optional, Tuple

import torch
from torch import Tensor
from torch_geometric.typing import SparseTensor
from torch_geometric.utils import is_torch_sparse_tensor

from gat_pyg.checks import check_probability

FILL_VALUE_REDUCTIONS = ('add', 'sum', 'mean', 'min', 'max', 'mul')


class EdgeFeatureError(ValueError, NotImplementedError):
    """Edge features (or edge weights) in a form the layers cannot use: a sparse adjacency with
    values, or ``edge_attr`` with a sparse adjacency and ``add_self_loops=True``. Both a
    ``ValueError`` (the package's kind for bad input) and a ``NotImplementedError`` (what PyG's
    layers raise there, so code written for them still catches it)."""


def shape_of(t: Tensor) -> list:
    """A tensor's shape as a list, as error messages print it: ``[2, 5]``. (Shared by every
    check of the package.)"""
    return list(t.shape)


def check_num_nodes(num_nodes, name: str = 'num_nodes') -> int:
    """A node count: a non-negative integer (a Python or NumPy integer, not a bool); returns it
    as an ``int``."""
    if isinstance(num_nodes, bool) or not isinstance(num_nodes, numbers.Integral) \
            or num_nodes < 0:
        raise ValueError(f"{name}: expected a non-negative integer, got {num_nodes!r}")
    return int(num_nodes)


def check_hyperparameters(out_channels: int, heads: int, dropout: float,
                          edge_dim: Optional[int], fill_value) -> None:
    """Constructor arguments every attention layer shares."""
    if isinstance(heads, bool) or not isinstance(heads, int) or heads < 1:
        raise ValueError(f"heads: expected an integer >= 1, got {heads!r}")
    if (isinstance(out_channels, bool) or not isinstance(out_channels, int)
            or out_channels < 1):
        raise ValueError(
            f"out_channels: expected an integer >= 1, got {out_channels!r}")
    check_probability(dropout, 'dropout')
    if edge_dim is not None and (isinstance(edge_dim, bool)
                                 or not isinstance(edge_dim, int) or edge_dim < 1):
        raise ValueError(f"edge_dim: expected None or an integer >= 1, got {edge_dim!r}")
    if isinstance(fill_value, str) and fill_value not in FILL_VALUE_REDUCTIONS:
        raise ValueError(f"fill_value: expected a float, a Tensor or one of "
                         f"{FILL_VALUE_REDUCTIONS}, got {fill_value!r}")


def check_in_channels(in_channels) -> None:
    def ok(c):
        return isinstance(c, int) and not isinstance(c, bool) and (c == -1 or c >= 1)

    if isinstance(in_channels, (tuple, list)):
        if len(in_channels) != 2 or not all(ok(c) for c in in_channels):
            raise ValueError("in_channels: expected a pair (source, target) of integers "
                             f">= 1 or -1 for a bipartite layer, got {in_channels!r}")
    elif not ok(in_channels):
        raise ValueError(f"in_channels: expected an integer >= 1, -1 (lazy) or a pair, "
                         f"got {in_channels!r}")


def _check_features(x, name: str, expected: int) -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor of node features, "
                        f"got {type(x).__name__}")
    if x.dim() != 2:
        raise ValueError(f"{name}: expected node features of shape [num_nodes, "
                         f"num_features], got shape {shape_of(x)}")
    if not (x.is_floating_point() or x.dtype.is_complex):
        raise TypeError(f"{name}: expected floating point features, got {x.dtype}")
    if expected != -1 and x.size(-1) != expected:
        raise ValueError(f"{name}: the layer was built for {expected} input features, "
                         f"got {x.size(-1)} (shape {shape_of(x)})")


def split_node_features(x, in_channels) -> Tuple[Tensor, Optional[Tensor]]:
    """Returns ``(x_src, x_dst)`` after checking ``x`` against the layer.

    A layer built with an ``int`` shares one projection between sources and targets; it also
    takes a pair (as in mini-batches, ``(x, x[:batch_size])``) as long as both sides have that
    width. A layer built with a pair of widths takes a pair, or one tensor that fits both.
    """
    if isinstance(x, (tuple, list)):
        if len(x) != 2:
            raise ValueError(f"x: expected a tensor or a pair (x_src, x_dst), "
                             f"got a sequence of {len(x)} items")
        x_src, x_dst = x
        if x_src is None:
            raise ValueError("x: the source features x_src of the pair must not be None")
        src_c, dst_c = (in_channels, in_channels) if isinstance(in_channels, int) \
            else in_channels
        _check_features(x_src, 'x[0] (x_src)', src_c)
        if x_dst is not None:
            _check_features(x_dst, 'x[1] (x_dst)', dst_c)
            if isinstance(in_channels, int) and x_dst.size(-1) != x_src.size(-1):
                raise ValueError(
                    f"x: this layer shares one projection (in_channels={in_channels}), so "
                    f"x_src and x_dst need the same width, got {x_src.size(-1)} and "
                    f"{x_dst.size(-1)}; build it with in_channels=(F_src, F_dst) instead")
        return x_src, x_dst
    if isinstance(in_channels, int):
        _check_features(x, 'x', in_channels)
    else:
        src_c, dst_c = in_channels
        if -1 not in in_channels and src_c != dst_c:
            if not isinstance(x, Tensor):
                _check_features(x, 'x', src_c)
            raise ValueError(
                f"x: this layer is bipartite with in_channels={tuple(in_channels)}, so it "
                f"expects a pair (x_src, x_dst), got a single tensor of shape {shape_of(x)}")
        _check_features(x, 'x', src_c if src_c != -1 else dst_c)
    return x, x


def check_size(size, x_src: Tensor, x_dst: Optional[Tensor]) -> Optional[Tuple[int, int]]:
    if size is None:
        return None
    if (not isinstance(size, (tuple, list)) or len(size) != 2
            or not all(_is_size(s) for s in size)):
        raise ValueError(f"size: expected None or a pair (num_src_nodes, num_dst_nodes) of "
                         f"non-negative integers, got {size!r}")
    if isinstance(size[0], torch.SymInt) or isinstance(size[1], torch.SymInt):
        # torch.compile / torch.export: comparing symbolic sizes would guard on them.
        return tuple(size)
    if size[0] != x_src.size(0) or (x_dst is not None and size[1] != x_dst.size(0)):
        have = (x_src.size(0), None if x_dst is None else x_dst.size(0))
        raise ValueError(f"size: {tuple(size)} disagrees with the node features, which have "
                         f"(num_src, num_dst) = {have}")
    return tuple(size)


def _is_size(value) -> bool:
    if isinstance(value, torch.SymInt):
        return True
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def check_graph(edge_index, num_src: int, num_dst: Optional[int]) -> None:
    """Checks an edge_index (LongTensor [2, E]), torch.sparse adjacency or SparseTensor.

    Sparse adjacencies follow PyG's transposed convention: rows are targets, columns sources.
    """
    if isinstance(edge_index, SparseTensor) and not isinstance(edge_index, Tensor):
        rows, cols = edge_index.sparse_sizes()
        _check_adjacency_shape((rows, cols), num_src, num_dst)
        return
    if not isinstance(edge_index, Tensor):
        raise TypeError("edge_index: expected a LongTensor of shape [2, num_edges], a "
                        "torch.sparse adjacency or a SparseTensor, got "
                        f"{type(edge_index).__name__}")
    if is_torch_sparse_tensor(edge_index):
        if edge_index.dim() != 2:
            raise ValueError("edge_index: expected a 2-D sparse adjacency [num_dst, "
                             f"num_src], got shape {shape_of(edge_index)}")
        _check_adjacency_shape(tuple(edge_index.shape), num_src, num_dst)
        return
    if edge_index.dtype.is_floating_point or edge_index.dtype.is_complex \
            or edge_index.dtype == torch.bool:
        raise TypeError(f"edge_index: expected integer node indices (torch.long), got "
                        f"{edge_index.dtype}")
    if edge_index.dim() != 2 or edge_index.size(0) != 2:
        raise ValueError(f"edge_index: expected shape [2, num_edges], got "
                         f"{shape_of(edge_index)}")
    if edge_index.numel() == 0:
        return
    # One host synchronisation for the three numbers, not three.
    low, src_max, dst_max = torch.stack([edge_index.min(), edge_index[0].max(),
                                         edge_index[1].max()]).tolist()
    if low < 0:
        raise ValueError(f"edge_index: node indices must be non-negative, found {low}")
    if src_max >= num_src:
        raise ValueError(f"edge_index: source index {src_max} is out of range for "
                         f"{num_src} source nodes (x has {num_src} rows)")
    if num_dst is not None:
        if dst_max >= num_dst:
            raise ValueError(f"edge_index: target index {dst_max} is out of range for "
                             f"{num_dst} target nodes")


def _check_adjacency_shape(shape, num_src: int, num_dst: Optional[int]) -> None:
    rows, cols = shape
    if cols != num_src or (num_dst is not None and rows != num_dst):
        expected = f"[{num_dst if num_dst is not None else 'num_dst'}, {num_src}]"
        raise ValueError(f"edge_index: a sparse adjacency is read as [num_dst, num_src] "
                         f"(rows are targets); expected {expected}, got [{rows}, {cols}]")


def check_edge_attr(edge_attr, edge_dim: Optional[int], num_edges: int) -> Optional[Tensor]:
    """Returns ``edge_attr`` as a 2-D tensor, after checking it against ``edge_dim``."""
    if edge_attr is None:
        return None
    if not isinstance(edge_attr, Tensor):
        raise TypeError(f"edge_attr: expected a torch.Tensor, got {type(edge_attr).__name__}")
    if edge_dim is None:
        raise ValueError("edge_attr: the layer was built without edge features; pass "
                         "edge_dim=<num edge features> to the constructor to use them")
    if edge_attr.dim() == 1:
        edge_attr = edge_attr.view(-1, 1)
    if edge_attr.dim() != 2 or edge_attr.size(1) != edge_dim:
        raise ValueError(f"edge_attr: expected shape [num_edges, {edge_dim}] (edge_dim="
                         f"{edge_dim}), got {shape_of(edge_attr)}")
    if edge_attr.size(0) != num_edges:
        raise ValueError(f"edge_attr: expected one row per edge ({num_edges}), got "
                         f"{edge_attr.size(0)} rows")
    return edge_attr


def num_edges_of(edge_index) -> int:
    if isinstance(edge_index, SparseTensor) and not isinstance(edge_index, Tensor):
        return edge_index.nnz()
    if is_torch_sparse_tensor(edge_index):
        return edge_index._nnz()   # private but long-standing: stored entries of any layout
    return edge_index.size(1)

r"""Building a :class:`~gat_pyg.nn.graph.PreparedGraph` from any input form.

Already-sorted inputs are not sorted again: a CSR adjacency, a ``SparseTensor``, a column-sorted
``EdgeIndex`` and an ``edge_index`` whose targets are non-decreasing (``NeighborLoader``
batches) are detected in O(E) and the self-loops are merged into their rows in O(E). Everything
else is sorted once, stably, by destination. While something records (``torch.compile``,
``torch.export``, ``torch.func``, ``torch.jit.trace``) nothing branches on index values: the
checks and the sortedness test are skipped and every input takes the general route.
"""
from typing import Optional, Tuple, Union

import torch
from torch import Tensor
from torch_geometric.typing import SparseTensor
from torch_geometric.utils import scatter

from gat_pyg.kernels.dispatch import recording
from gat_pyg.nn import checks
from gat_pyg.nn.graph.prepared import (EDGE_INDEX, EDGE_INDEX_CLASS, SPARSE_TENSOR,
                                       TORCH_SPARSE, EdgeIndex, PreparedGraph, pointers)


def _endpoints(edge_index) -> Tuple[Tensor, Tensor, Optional[Tensor], str, bool]:
    """``(src, dst, ptr, form, canonical)`` of any input form, in the caller's edge order.

    ``ptr`` is given when the input is already destination-sorted (else ``None``);
    ``canonical`` when, in addition, the sources are sorted within each row (sparse
    adjacencies), which decides where a self-loop is merged into its row.
    """
    if isinstance(edge_index, SparseTensor):
        ptr, col, _ = edge_index.csr()
        return col, None, ptr, SPARSE_TENSOR, True
    if edge_index.layout == torch.sparse_csr:
        return edge_index.col_indices(), None, edge_index.crow_indices(), 'csr', True
    if edge_index.layout == torch.sparse_coo:
        adj = edge_index.coalesce()   # a no-op for a coalesced tensor
        # A coalesced COO matrix is in row-major order, so the rows give the row pointers.
        # (_indices() would skip the coalesced check, which coalesce() just did.)
        dst, src = adj.indices()
        return src, dst, pointers(dst, adj.size(0)), 'coo', True
    if edge_index.layout == torch.sparse_csc:
        ccol, row = edge_index.ccol_indices(), edge_index.row_indices()
        src = torch.repeat_interleave(torch.arange(edge_index.size(1), device=ccol.device),
                                      ccol[1:] - ccol[:-1], output_size=row.numel())
        return src, row, None, 'csc', False
    if EdgeIndex is not None and isinstance(edge_index, EdgeIndex):
        if edge_index.is_sorted_by_col:
            (colptr, row), _ = edge_index.get_csc()   # PyG's cached CSC, no sort
            return row.as_subclass(Tensor), edge_index.as_tensor()[1], \
                colptr.as_subclass(Tensor), EDGE_INDEX_CLASS, False
        plain = edge_index.as_tensor()
        return plain[0], plain[1], None, EDGE_INDEX_CLASS, False
    src, dst = edge_index[0], edge_index[1]
    return src, dst, None, EDGE_INDEX, False


def _is_sorted(index: Tensor) -> bool:
    # One O(E) pass; torch.sort would be O(E log E) with the same answer.
    return index.numel() < 2 or bool((index[1:] >= index[:-1]).all())


def _check_values(edge_index) -> None:
    """A sparse adjacency's values would be edge weights, which attention does not read."""
    if isinstance(edge_index, SparseTensor):
        values = edge_index.storage.value()
    elif isinstance(edge_index, Tensor) and edge_index.layout in TORCH_SPARSE:
        values = edge_index.values() if edge_index.layout != torch.sparse_coo \
            else edge_index.coalesce().values()
    else:
        return
    if values is None or values.numel() == 0:
        return
    if values.dim() > 1 or bool((values != 1).any()):
        raise checks.EdgeFeatureError(
            "edge_index: this sparse adjacency stores values other than 1 (edge weights), "
            "which attention layers do not read and would silently ignore; pass edge "
            "features as edge_attr [E, edge_dim] with a [2, E] edge_index instead "
            "(edge_index, edge_attr = torch_geometric.utils.to_edge_index(adj)), or an "
            "adjacency without values (SparseTensor.set_value(None) / values of 1)")


def prepare_graph(edge_index, size: Union[int, Tuple[int, int], None] = None,
                  add_self_loops: bool = True, edge_attr: Optional[Tensor] = None,
                  fill_value='mean', edge_dim: Optional[int] = None,
                  check: bool = True) -> PreparedGraph:
    r"""Prepares ``edge_index`` once for every attention layer that will read it.

    Args:
        edge_index (Tensor or SparseTensor): ``[2, E]`` LongTensor (row 0 sources, row 1
            targets), PyG ``EdgeIndex``, torch.sparse CSR/COO/CSC adjacency
            ``[num_dst, num_src]`` (rows are targets, values must be 1), or a
            ``torch_sparse.SparseTensor`` (without values).
        size (int or (int, int), optional): Number of nodes, or ``(num_src, num_dst)``.
            Required for a ``[2, E]`` tensor (it cannot tell isolated trailing nodes);
            a sparse adjacency gives its own shape ``[num_dst, num_src]``, which ``size`` (if
            given; ``num_dst`` may be ``None``) must match.
        add_self_loops (bool, optional): Replace existing self-loops by one per node that is
            both source and target, as the layers' ``add_self_loops=True`` does.
            (default: ``True``)
        edge_attr (Tensor, optional): ``[E, D]`` (or ``[E]``) edge features, kept in sorted
            order in :attr:`PreparedGraph.edge_attr`. (default: ``None``)
        fill_value (float or Tensor or str, optional): Self-loop features; see
            :meth:`PreparedGraph.sort_edge_attr`. Must equal the layers' ``fill_value``.
            (default: ``'mean'``)
        edge_dim (int, optional): Expected width of ``edge_attr`` (checked if given).
        check (bool, optional): Validate indices (one pass over the edges and one host
            synchronisation). Validation is skipped while ``torch.compile`` traces.
            (default: ``True``)

    Returns:
        PreparedGraph

    Raises:
        TypeError: ``edge_index`` of the wrong kind or dtype.
        ValueError: wrong shape, negative or out-of-range indices, a sparse adjacency of the
            wrong shape or with values other than 1, ``edge_attr`` of the wrong shape, a CSC
            adjacency with ``add_self_loops=True``, or a missing ``size``.

    Cost: one stable sort of the destinations (none for already-sorted inputs), O(E) for
    self-loops; the transposed order is sorted on first use by backward.
    """
    num_src, num_dst = _sizes(edge_index, size)
    if check and recording() is None:
        checks.check_graph(edge_index, num_src, num_dst)
        _check_values(edge_index)
    if edge_attr is not None:
        edge_attr = checks.check_edge_attr(edge_attr, edge_dim if edge_dim is not None else
                                           (1 if edge_attr.dim() == 1 else edge_attr.size(-1)),
                                           checks.num_edges_of(edge_index))
        if add_self_loops and not (isinstance(edge_index, Tensor) and
                                   edge_index.layout == torch.strided):
            # PyG's loop utilities cannot carry edge features through a sparse adjacency.
            raise ValueError(
                "edge_attr: edge features with add_self_loops=True need a [2, E] edge_index, "
                "not a sparse adjacency (torch.sparse or SparseTensor); convert it with "
                "torch_geometric.utils.to_edge_index, or add the loops yourself")
    src, dst, ptr, form, canonical = _endpoints(edge_index)
    if form == 'csc' and add_self_loops:
        raise ValueError("edge_index: a CSC adjacency (layout torch.sparse_csc) is accepted "
                         "only with add_self_loops=False (PyG's layers reject that layout); "
                         "pass adj.to_sparse_csr() or a [2, E] edge_index")
    src = src.long() if src.dtype != torch.long else src
    if dst is not None and dst.dtype != torch.long:
        dst = dst.long()
    if ptr is None and recording() is None and _is_sorted(dst):
        ptr = pointers(dst, num_dst)
    graph = _build(src, dst, ptr, num_src, num_dst, add_self_loops, form, canonical)
    if edge_attr is not None:
        graph.edge_attr = graph.sort_edge_attr(edge_attr, fill_value)
        graph.fill_value = fill_value
    return graph


def _sizes(edge_index, size) -> Tuple[int, Optional[int]]:
    """``(num_src, num_dst)`` from ``size``; a sparse adjacency fills what ``size`` leaves out
    (``None``) from its shape ``[num_dst, num_src]``."""
    if size is None or (isinstance(size, (tuple, list)) and len(size) == 2
                        and size[1] is None):
        given_src = None if size is None else size[0]
        if isinstance(edge_index, SparseTensor):
            rows, cols = edge_index.sparse_sizes()
        elif isinstance(edge_index, Tensor) and edge_index.layout in TORCH_SPARSE:
            rows, cols = edge_index.shape[:2]
        elif size is None:
            raise ValueError("size: pass the number of nodes (or (num_src, num_dst)) with a "
                             "[2, E] edge_index; it cannot tell nodes without edges")
        else:
            return _sizes(edge_index, (given_src, given_src))
        return (cols if given_src is None else given_src), rows
    if _is_count(size):
        return _count(size), _count(size)
    if isinstance(size, (tuple, list)) and len(size) == 2 and all(_is_count(s) for s in size):
        return _count(size[0]), _count(size[1])
    raise ValueError(f"size: expected a number of nodes or a pair (num_src, num_dst) of "
                     f"non-negative integers, got {size!r}")


def _is_count(value) -> bool:
    # torch.jit.trace hands sizes over as 0-d integer tensors; torch.compile and torch.export
    # as symbolic integers, which stay symbolic (no comparison that would guard on them).
    if isinstance(value, torch.SymInt):
        return True
    if isinstance(value, Tensor) and value.dim() == 0 and not value.is_floating_point():
        value = int(value)
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _count(value):
    return value if isinstance(value, torch.SymInt) else int(value)


def _build(src: Tensor, dst: Optional[Tensor], ptr: Optional[Tensor], num_src: int,
           num_dst: int, add_self_loops: bool, form: str, canonical: bool) -> PreparedGraph:
    common = dict(num_src=num_src, num_dst=num_dst, add_self_loops=add_self_loops, form=form)
    if not add_self_loops:
        if ptr is not None:
            return PreparedGraph(ptr=ptr, src=src, perm=None, **common)
        dst_sorted, perm = torch.sort(dst, stable=True)
        return PreparedGraph(ptr=pointers(dst_sorted, num_dst), src=src[perm], perm=perm,
                             **common)

    num_loops = min(num_src, num_dst)
    if dst is None:   # sparse adjacency: rows come from the row pointers
        dst = torch.repeat_interleave(torch.arange(num_dst, device=ptr.device),
                                      ptr[1:] - ptr[:-1], output_size=src.numel())
    num_input = src.numel()
    loops = src == dst
    kept = None
    if recording() is None and not bool(loops.any()):
        pass   # nothing to remove: the input order is the kept order
    else:
        kept = ~loops
        src, dst = src[kept], dst[kept]
    arange = torch.arange(num_loops, device=src.device)

    if ptr is None or recording() is not None:
        # Unsorted input: the caller's looped order is (kept edges, loops); sort it stably.
        looped_src = torch.cat([src, arange])
        looped_dst = torch.cat([dst, arange])
        dst_sorted, perm = torch.sort(looped_dst, stable=True)
        return PreparedGraph(ptr=pointers(dst_sorted, num_dst), src=looped_src[perm],
                             perm=perm, kept=kept, num_input_edges=num_input, **common)

    # Destination-sorted input: merge one loop into each row i < num_loops in O(E) instead of
    # sorting. A [2, E] list (stable-sort semantics) gets its loop at the end of the row; a
    # sparse adjacency, whose sources are sorted within rows, at the loop's column.
    ptr_kept = pointers(dst, num_dst) if kept is not None else ptr
    row_len = ptr_kept[1:] - ptr_kept[:-1]
    if canonical:
        before = scatter((src < dst).long(), dst, 0, dim_size=num_dst, reduce='sum')
    else:
        before = row_len
    rows = torch.arange(num_dst + 1, device=src.device)
    loops_before = rows.clamp(max=num_loops)            # loops in the rows above row i
    new_ptr = ptr_kept + loops_before
    # Kept edge k of row d moves down by the loops of earlier rows, and by one more when it
    # comes after row d's own loop.
    position_in_row = torch.arange(src.numel(), device=src.device) - ptr_kept[dst]
    shift = loops_before[dst] + ((dst < num_loops) & (position_in_row >= before[dst])).long()
    new_pos = torch.arange(src.numel(), device=src.device) + shift
    loop_pos = ptr_kept[:num_loops] + arange + before[:num_loops]
    sorted_src = torch.empty(src.numel() + num_loops, dtype=src.dtype, device=src.device)
    sorted_src[new_pos] = src
    sorted_src[loop_pos] = arange
    if canonical:
        # A sparse adjacency's own entry order is the sorted order.
        return PreparedGraph(ptr=new_ptr, src=sorted_src, perm=None, kept=kept,
                             num_input_edges=num_input, **common)
    perm = torch.empty_like(sorted_src)
    perm[new_pos] = torch.arange(src.numel(), device=src.device)
    perm[loop_pos] = arange + src.numel()
    return PreparedGraph(ptr=new_ptr, src=sorted_src, perm=perm, kept=kept,
                         num_input_edges=num_input, **common)

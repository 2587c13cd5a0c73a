r"""The prepared graph: one graph in the form the attention layers compute on, built once.

Every attention layer reads the same derived structure from a graph: the edge list with its
self-loops replaced by one loop per node (when ``add_self_loops``), the edges sorted by
destination (CSR: row pointers ``ptr`` and the sources ``src``), the permutation back to the
order in which PyG reports edges (so that returned attention weights line up with the caller's
edges), the source-sorted (transposed) order that backward needs, and the edge features
permuted alike. :class:`PreparedGraph` holds all of it for one graph and one self-loop setting;
:func:`prepare_graph` builds it. It is state that belongs to the graph, not to a layer (PyG's
:class:`~torch_geometric.EdgeIndex` caches its CSR/CSC forms the same way, DGL's graphs their
formats), so a model builds it once per forward and hands it to every layer, and a training
loop may build it once for all epochs and pass it as ``edge_index``.

Already-sorted inputs are not sorted again: a CSR adjacency, a ``SparseTensor``, a column-sorted
``EdgeIndex`` and an ``edge_index`` whose targets are non-decreasing (``NeighborLoader``
batches) are detected in O(E) and the self-loops are merged into their rows in O(E). Everything
else is sorted once, stably, by destination.

:class:`GraphCache` lets a layer (or a model) that receives a plain tensor reuse the graph it
prepared on the previous call. A hit requires the *contents* to be equal (an O(E) comparison
with a private copy), so a tensor edited in place, through ``.numpy()``, ``.data`` or a view,
created under ``torch.inference_mode()`` or without a version counter, is never served a stale
graph.
"""
import logging
from typing import Optional, Tuple, Union

import torch
from torch import Tensor
from torch_geometric.typing import SparseTensor
from torch_geometric.utils import scatter
from torch_geometric.utils.sparse import index2ptr

from gat_pyg.nn import checks

try:  # PyG >= 2.5
    from torch_geometric import EdgeIndex
except ImportError:  # pragma: no cover - older PyG
    EdgeIndex = None

log = logging.getLogger(__name__)

# The forms a graph can arrive in; the layers return attention weights in the same form.
EDGE_INDEX, EDGE_INDEX_CLASS, SPARSE_TENSOR = 'edge_index', 'EdgeIndex', 'sparse_tensor'
TORCH_SPARSE = {torch.sparse_csr: 'csr', torch.sparse_coo: 'coo', torch.sparse_csc: 'csc'}


def _compiling() -> bool:
    """torch.compile or torch.jit.trace records the operations: no data-dependent branches
    (caches, sortedness checks, validation) then, only operations that work for any input."""
    return torch.compiler.is_compiling() or torch.jit.is_tracing()


class PreparedGraph:
    r"""One graph, prepared for attention: destination-sorted CSR, self-loops, transposed order.

    Build it with :func:`prepare_graph` (or let a layer or model do it) and pass it to
    :class:`~gat_pyg.GATConv`, :class:`~gat_pyg.GATv2Conv` or a model as ``edge_index``; every
    layer then skips validation, self-loop handling and sorting. A layer checks that the graph
    fits its inputs (node counts, ``add_self_loops``) and raises ``ValueError`` otherwise.

    Edges are stored in destination-sorted order (``E'`` edges, self-loops included).

    Attributes:
        num_src (int): Source nodes (columns of the adjacency).
        num_dst (int): Target nodes (rows).
        add_self_loops (bool): Whether existing self-loops were replaced by one loop for each
            node that is both a source and a target (``i < min(num_src, num_dst)``).
        ptr (Tensor): ``[num_dst + 1]`` row pointers: the edges into target ``i`` are
            ``ptr[i]:ptr[i + 1]``.
        src (Tensor): ``[E']`` source of each sorted edge.
        perm (Tensor or None): ``[E']`` position of each sorted edge in the caller's order
            (the order of :attr:`edge_index`); ``None`` when the two orders are the same. Kept
            as int32 when ``E' < 2^31``.
        edge_attr (Tensor or None): ``[E', D]`` edge features in sorted order, self-loop
            features included, if the graph was prepared with them.
        fill_value: How the self-loop features were made (see :func:`prepare_graph`).
        form (str): The input form: ``'edge_index'``, ``'EdgeIndex'``, ``'csr'``, ``'coo'``,
            ``'csc'`` or ``'sparse_tensor'``; attention weights are returned in it.
    """

    def __init__(self, *, ptr: Tensor, src: Tensor, perm: Optional[Tensor], num_src: int,
                 num_dst: int, add_self_loops: bool, form: str = EDGE_INDEX,
                 caller_index: Optional[Tensor] = None, kept: Optional[Tensor] = None,
                 num_input_edges: Optional[int] = None):
        self.ptr = ptr
        self.src = src
        # Read only to return attention or sort edge features in the caller's order: int32 when
        # it fits, which halves it (E' int64 indices are 160 MiB at E' = 21M).
        self.perm = perm if perm is None or perm.numel() >= 2**31 else perm.to(torch.int32)
        self.num_src = num_src
        self.num_dst = num_dst
        self.add_self_loops = add_self_loops
        self.form = form
        self.edge_attr: Optional[Tensor] = None
        self.fill_value = None
        # For sort_edge_attr: which input edges were kept (None: all) and their count.
        self._kept = kept
        self._num_input_edges = src.numel() if num_input_edges is None else num_input_edges
        # The caller's looped [2, E'] list when it was built anyway (else rebuilt on demand).
        self._edge_index = caller_index
        self._dst: Optional[Tensor] = None
        self._transpose: Optional[Tuple[Tensor, Tensor, Tensor]] = None
        self._blocks: dict = {}

    # Sizes and derived orders ---------------------------------------------------------------

    @property
    def num_edges(self) -> int:
        """``E'``: edges after self-loop handling."""
        return self.src.numel()

    @property
    def num_input_edges(self) -> int:
        """``E``: edges of the input, before self-loop handling (rows of its ``edge_attr``)."""
        return self._num_input_edges

    @property
    def device(self) -> torch.device:
        return self.src.device

    @property
    def dst(self) -> Tensor:
        """``[E']`` target of each sorted edge (non-decreasing), derived from :attr:`ptr` on
        first use."""
        if self._dst is None:
            self._dst = self._targets()
        return self._dst

    def _targets(self) -> Tensor:
        counts = self.ptr[1:] - self.ptr[:-1]
        return torch.repeat_interleave(torch.arange(self.num_dst, device=self.ptr.device),
                                       counts, output_size=self.num_edges)

    def transpose(self) -> Tuple[Tensor, Tensor, Tensor]:
        """The source-sorted order backward needs, computed on first use (inference never
        pays for it): ``(t_ptr [num_src + 1], t_col [E'], t_perm [E'])`` with ``t_col`` the
        target of each source-sorted edge and ``t_perm`` its position in the sorted order."""
        if self._transpose is None:
            src_of_t, t_perm = torch.sort(self.src, stable=True)
            # The targets are read here once; the native paths need them nowhere else, so they
            # are not kept unless something else asked for them (E' int64: 160 MiB at 21M).
            dst = self._dst if self._dst is not None else self._targets()
            self._transpose = (index2ptr(src_of_t, self.num_src), dst[t_perm], t_perm)
        return self._transpose

    def to_input_order(self, values: Tensor) -> Tensor:
        """Per-edge ``values`` ``[E', ...]`` from sorted order to the caller's order."""
        if self.perm is None:
            return values
        out = torch.empty_like(values)
        out[self.perm] = values
        return out

    @property
    def edge_index(self) -> Tensor:
        """``[2, E']`` edges in the caller's order (PyG's: the input edges without their
        self-loops, then one loop per node), as PyG's layers report them."""
        if self._edge_index is None:
            pairs = torch.stack([self.src, self.dst])
            if self.perm is not None:
                pairs = torch.empty_like(pairs).index_copy_(1, self.perm.long(), pairs)
            if self.form == EDGE_INDEX_CLASS:
                # PyG's layers hand an EdgeIndex input back as one.
                pairs = EdgeIndex(pairs, sparse_size=(self.num_src, self.num_dst))
            self._edge_index = pairs
        return self._edge_index

    def adjacency(self, values: Optional[Tensor] = None):
        """The graph in its input form, for PyG's ``propagate`` and for returning attention:
        the ``[2, E']`` :attr:`edge_index`, or the sparse adjacency ``[num_dst, num_src]``
        (rows are targets) of the input's layout holding ``values`` ``[E', ...]`` given in the
        caller's order (default: ones)."""
        if self.form in (EDGE_INDEX, EDGE_INDEX_CLASS):
            return self.edge_index
        size = (self.num_dst, self.num_src)
        if self.form == SPARSE_TENSOR:
            return SparseTensor(rowptr=self.ptr, col=self.src, value=values, sparse_sizes=size,
                                is_sorted=True, trust_data=True)
        if values is None:
            values = torch.ones(self.num_edges, device=self.device)
        if self.form == 'csr':
            return torch.sparse_csr_tensor(self.ptr, self.src, values,
                                           (*size, *values.shape[1:]))
        if self.form == 'coo':
            return torch.sparse_coo_tensor(torch.stack([self.dst, self.src]), values,
                                           (*size, *values.shape[1:]), is_coalesced=True)
        # CSC: the caller's order is the stored source-major order, which is the transposed
        # order (sources ascending, targets ascending within a source).
        t_ptr, t_col, _ = self.transpose()
        return torch.sparse_csc_tensor(t_ptr, t_col, values, (*size, *values.shape[1:]))

    # Edge features ---------------------------------------------------------------------------

    def sort_edge_attr(self, edge_attr: Tensor, fill_value='mean') -> Tensor:
        r"""``[E, D]`` features of the input edges -> ``[E', D]`` in sorted order, self-loops
        included.

        A self-loop's features are ``fill_value``: a number or a ``[D]`` tensor, or the
        reduction (``'add'``/``'sum'``, ``'mean'``, ``'min'``, ``'max'``, ``'mul'``) of the
        features of the node's incoming edges. The reduction runs over every target, so a
        bipartite graph with more targets than sources reduces the edges into *all* targets
        before the loops (nodes that are both source and target) take theirs; PyG's
        ``add_self_loops`` reduces over ``min(N_src, N_dst)`` slots and fails there.
        """
        if edge_attr.dim() == 1:
            edge_attr = edge_attr.view(-1, 1)
        if not self.add_self_loops:
            return edge_attr if self.perm is None else edge_attr.index_select(0, self.perm)
        kept = edge_attr if self._kept is None else edge_attr[self._kept]
        num_loops = min(self.num_src, self.num_dst)
        if isinstance(fill_value, str):
            kept_dst = self.edge_index[1, :kept.size(0)]
            loop_attr = scatter(kept, kept_dst, 0, dim_size=max(self.num_dst, num_loops),
                                reduce=fill_value)[:num_loops]
        elif isinstance(fill_value, Tensor):
            loop_attr = fill_value.to(kept).expand(num_loops, kept.size(1))
        else:
            loop_attr = kept.new_full((num_loops, kept.size(1)), float(fill_value))
        looped = torch.cat([kept, loop_attr], dim=0)
        return looped if self.perm is None else looped.index_select(0, self.perm)

    def caller_edge_attr(self) -> Optional[Tensor]:
        """:attr:`edge_attr` in the caller's order (for PyG's ``propagate``)."""
        return None if self.edge_attr is None else self.to_input_order(self.edge_attr)

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(num_src={self.num_src}, num_dst={self.num_dst}, '
                f'num_edges={self.num_edges}, add_self_loops={self.add_self_loops}, '
                f'form={self.form!r})')


# Building --------------------------------------------------------------------------------------

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
        return src, dst, index2ptr(dst, adj.size(0)), 'coo', True
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
        raise ValueError(
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
    if check and not _compiling():
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
    if ptr is None and not _compiling() and _is_sorted(dst):
        ptr = index2ptr(dst, num_dst)
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
        return int(size), int(size)
    if isinstance(size, (tuple, list)) and len(size) == 2 and all(_is_count(s) for s in size):
        return int(size[0]), int(size[1])
    raise ValueError(f"size: expected a number of nodes or a pair (num_src, num_dst) of "
                     f"non-negative integers, got {size!r}")


def _is_count(value) -> bool:
    # torch.jit.trace hands sizes over as 0-d integer tensors.
    if isinstance(value, Tensor) and value.dim() == 0 and not value.is_floating_point():
        value = int(value)
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _build(src: Tensor, dst: Optional[Tensor], ptr: Optional[Tensor], num_src: int,
           num_dst: int, add_self_loops: bool, form: str, canonical: bool) -> PreparedGraph:
    common = dict(num_src=num_src, num_dst=num_dst, add_self_loops=add_self_loops, form=form)
    if not add_self_loops:
        if ptr is not None:
            return PreparedGraph(ptr=ptr, src=src, perm=None, **common)
        dst_sorted, perm = torch.sort(dst, stable=True)
        return PreparedGraph(ptr=index2ptr(dst_sorted, num_dst), src=src[perm], perm=perm,
                             **common)

    num_loops = min(num_src, num_dst)
    if dst is None:   # sparse adjacency: rows come from the row pointers
        dst = torch.repeat_interleave(torch.arange(num_dst, device=ptr.device),
                                      ptr[1:] - ptr[:-1], output_size=src.numel())
    num_input = src.numel()
    loops = src == dst
    kept = None
    if not _compiling() and not bool(loops.any()):
        pass   # nothing to remove: the input order is the kept order
    else:
        kept = ~loops
        src, dst = src[kept], dst[kept]
    arange = torch.arange(num_loops, device=src.device)

    if ptr is None or _compiling():
        # Unsorted input: the caller's looped order is (kept edges, loops); sort it stably.
        looped_src = torch.cat([src, arange])
        looped_dst = torch.cat([dst, arange])
        dst_sorted, perm = torch.sort(looped_dst, stable=True)
        return PreparedGraph(ptr=index2ptr(dst_sorted, num_dst), src=looped_src[perm],
                             perm=perm, kept=kept, num_input_edges=num_input, **common)

    # Destination-sorted input: merge one loop into each row i < num_loops in O(E) instead of
    # sorting. A [2, E] list (stable-sort semantics) gets its loop at the end of the row; a
    # sparse adjacency, whose sources are sorted within rows, at the loop's column.
    ptr_kept = index2ptr(dst, num_dst) if kept is not None else ptr
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


# Reuse -------------------------------------------------------------------------------------------

def _index_tensors(obj) -> Tuple[Tensor, ...]:
    """The index tensors that define a graph's (or mask's) structure, as plain tensors."""
    if isinstance(obj, SparseTensor):
        return tuple(t for t in (obj.storage.rowptr(), obj.storage.col(),
                                 obj.storage.value()) if t is not None)
    if obj.layout == torch.sparse_coo:
        # Private API: _indices()/_values() read the storage as is (indices() would refuse an
        # uncoalesced tensor); on upgrades check they still exist for COO tensors.
        return (obj._indices(), obj._values())
    if obj.layout == torch.sparse_csr:
        return (obj.crow_indices(), obj.col_indices(), obj.values())
    if obj.layout == torch.sparse_csc:
        return (obj.ccol_indices(), obj.row_indices(), obj.values())
    if EdgeIndex is not None and isinstance(obj, EdgeIndex):
        return (obj.as_tensor(), )
    return (obj, )


_COMPARE_CHUNK = 1 << 22   # elements widened at a time (32 MiB of int64)


def _narrow_copy(t: Tensor) -> Tensor:
    """A private copy of ``t``; int64 values that all fit in int32 are stored as int32."""
    t = t.detach()
    if t.dtype == torch.int64 and t.numel() and \
            -2**31 <= int(t.min()) and int(t.max()) < 2**31:
        return t.to(torch.int32)
    return t.clone()


def _equal_widened(now: Tensor, then: Tensor) -> bool:
    """``torch.equal(now, then.to(now.dtype))`` without widening all of ``then`` at once."""
    if now.dtype == then.dtype:
        return torch.equal(now, then)
    now, then = now.reshape(-1), then.reshape(-1)
    for start in range(0, now.numel(), _COMPARE_CHUNK):
        stop = start + _COMPARE_CHUNK
        if not torch.equal(now[start:stop], then[start:stop].to(now.dtype)):
            return False
    return True


class GraphCache:
    r"""Remembers the last graph prepared from a tensor, and serves it only for equal contents.

    :meth:`get` compares the tensor it is given with a private copy of the one the graph was
    prepared from: same form, shape, dtype and values (``torch.equal``), same node counts and
    self-loop setting. That costs one pass over the edges (about 20 ms for E = 20M on one core,
    against seconds for sorting), and makes a hit correct whatever happened to the caller's
    tensor in between: edits through ``.numpy()``, ``.data`` or views, which the in-place
    version counter does not see, and inference tensors, which have no version counter. The copy
    costs the index memory once more, at half width: int64 indices that fit in int32 are kept as
    int32 (8 bytes per edge for a ``[2, E]`` list) and widened back chunk by chunk to compare, so
    no value can wrap around.

    While ``torch.compile`` traces, the cache is bypassed: the comparison is a data-dependent
    branch, and the compiled graph prepares its input itself. Copies and pickles of a layer or
    model start with an empty cache.
    """

    def __init__(self):
        self.clear()

    def clear(self) -> None:
        self._key = None
        self._copy: Tuple[Tuple[Tensor, torch.dtype], ...] = ()   # (copy, caller's dtype)
        self._graph: Optional[PreparedGraph] = None

    def get(self, obj, key: tuple) -> Optional[PreparedGraph]:
        """The cached graph if ``obj`` holds what the cached one was prepared from."""
        if self._graph is None or key != self._key or _compiling():
            return None
        current = _index_tensors(obj)
        if len(current) != len(self._copy):
            return None
        for now, (then, dtype) in zip(current, self._copy):
            if now.shape != then.shape or now.dtype != dtype or now.device != then.device or \
                    not _equal_widened(now, then):
                return None
        return self._graph

    def put(self, obj, key: tuple, graph: PreparedGraph) -> None:
        if _compiling():
            return
        self._copy = tuple((_narrow_copy(t), t.dtype) for t in _index_tensors(obj))
        self._key = key
        self._graph = graph

    def __getstate__(self):
        return {}

    def __setstate__(self, state):
        self.clear()

    def __deepcopy__(self, memo):
        return GraphCache()

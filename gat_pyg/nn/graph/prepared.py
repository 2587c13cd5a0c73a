r"""The prepared graph: one graph in the form the attention layers compute on, built once.

Every attention layer reads the same derived structure from a graph: the edge list with its
self-loops replaced by one loop per node (when ``add_self_loops``), the edges sorted by
destination (CSR: row pointers ``ptr`` and the sources ``src``), the permutation back to the
order in which PyG reports edges (so that returned attention weights line up with the caller's
edges), the source-sorted (transposed) order that backward needs, and the edge features
permuted alike. :class:`PreparedGraph` holds all of it for one graph and one self-loop setting.
It is state that belongs to the graph, not to a layer (PyG's
:class:`~torch_geometric.EdgeIndex` caches its CSR/CSC forms the same way, DGL's graphs their
formats), so a model builds it once per forward and hands it to every layer.
"""
from typing import Optional, Tuple

import torch
from torch import Tensor
from torch_geometric.typing import SparseTensor
from torch_geometric.utils import scatter
from torch_geometric.utils.sparse import index2ptr

from gat_pyg.kernels.dispatch import recording

try:  # PyG >= 2.5
    from torch_geometric import EdgeIndex
except ImportError:  # pragma: no cover - older PyG
    EdgeIndex = None

# The forms a graph can arrive in; the layers return attention weights in the same form.
EDGE_INDEX, EDGE_INDEX_CLASS, SPARSE_TENSOR = 'edge_index', 'EdgeIndex', 'sparse_tensor'
TORCH_SPARSE = {torch.sparse_csr: 'csr', torch.sparse_coo: 'coo', torch.sparse_csc: 'csc'}


def pointers(sorted_index: Tensor, size) -> Tensor:
    """Row pointers ``[size + 1]`` of a sorted index (PyG's ``index2ptr``). While something
    records, a search of the sorted index instead: ``index2ptr`` would make the node count a
    constant of the recorded graph (one recompilation per graph size)."""
    if recording() is not None:
        rows = torch.arange(size + 1, device=sorted_index.device, dtype=sorted_index.dtype)
        return torch.searchsorted(sorted_index, rows)
    return index2ptr(sorted_index, size)


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
        # it fits, which halves it (E' int64 indices are 160 MiB at E' = 21M). Not while
        # something records: the edge count may be symbolic there (a guard on it would
        # specialise the graph, or fail on a data-dependent size).
        if perm is not None and recording() is None and perm.numel() < 2**31:
            perm = perm.to(torch.int32)
        self.perm = perm
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
        # Derived on first use. Two threads may both compute one; they compute the same values
        # and the last assignment wins, so no lock is needed.
        self._dst: Optional[Tensor] = None
        self._transpose: Optional[Tuple[Tensor, Tensor, Tensor]] = None

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
            # The targets are read here once; the kernels need them nowhere else, so they are
            # not kept unless something else asked for them (E' int64: 160 MiB at 21M).
            dst = self._dst if self._dst is not None else self._targets()
            self._transpose = (pointers(src_of_t, self.num_src), dst[t_perm], t_perm)
        return self._transpose

    def tensors(self, backward: bool) -> Tuple[Optional[Tensor], ...]:
        """``(ptr, src, t_ptr, t_col, t_perm)`` as the attention operators take them; the
        transposed order, which only a kernel's backward reads, is ``None`` unless
        ``backward`` (so inference never sorts the edges by source)."""
        if backward:
            return (self.ptr, self.src, *self.transpose())
        return self.ptr, self.src, None, None, None

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

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(num_src={self.num_src}, num_dst={self.num_dst}, '
                f'num_edges={self.num_edges}, add_self_loops={self.add_self_loops}, '
                f'form={self.form!r})')

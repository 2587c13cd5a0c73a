r"""Reusing a prepared graph across calls that pass the same plain tensor.

:class:`GraphCache` lets a layer (or a model) that receives a plain tensor reuse the graph it
prepared on the previous call. A hit requires the *contents* to be equal (an O(E) comparison
with a private copy), so a tensor edited in place, through ``.numpy()``, ``.data`` or a view,
created under ``torch.inference_mode()`` or without a version counter, is never served a stale
graph.
"""
from typing import Callable, Optional, Tuple

import torch
from torch import Tensor
from torch_geometric.typing import SparseTensor

from gat_pyg.kernels.dispatch import recording
from gat_pyg.nn.graph.prepared import EdgeIndex, PreparedGraph


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

    :meth:`prepare` compares the tensor it is given with a private copy of the one the graph
    was prepared from: same form, shape, dtype and values (``torch.equal``), same key (node
    counts, self-loop setting). That costs one pass over the edges (about 20 ms for E = 20M on
    one core, against seconds for sorting), and makes a hit correct whatever happened to the
    caller's tensor in between: edits through ``.numpy()``, ``.data`` or views, which the
    in-place version counter does not see, and inference tensors, which have no version
    counter. The copy costs the index memory once more, at half width: int64 indices that fit
    in int32 are kept as int32 (8 bytes per edge for a ``[2, E]`` list) and widened back chunk by
    chunk to compare, so no value can wrap around.

    The key, the copy and the graph are one entry, read once and replaced as one unit, so two
    threads calling one layer (or model) on different graphs never get each other's graph.
    While something records (:func:`gat_pyg.kernels.recording`: ``torch.compile``,
    ``torch.func`` transforms, ``torch.jit.trace``) the cache is neither read nor filled: its
    comparison branches on values, and a tensor seen there (a transform's wrapper, a fake
    tensor) must not outlive the recording. Copies and pickles of a layer or model start with an
    empty cache.
    """

    def __init__(self):
        self.clear()

    def clear(self) -> None:
        """Forgets the cached graph."""
        # (key, ((copy, caller's dtype), ...), graph), or None.
        self._entry: Optional[tuple] = None

    def get(self, obj, key: tuple) -> Optional[PreparedGraph]:
        """The cached graph if ``obj`` holds what it was prepared from under ``key``."""
        if recording() is not None:
            return None
        entry = self._entry   # one read: another thread may replace the entry meanwhile
        if entry is None or entry[0] != key:
            return None
        _, copies, graph = entry
        current = _index_tensors(obj)
        if len(current) != len(copies):
            return None
        for now, (then, dtype) in zip(current, copies):
            if now.shape != then.shape or now.dtype != dtype or now.device != then.device or \
                    not _equal_widened(now, then):
                return None
        return graph

    def put(self, obj, key: tuple, graph: PreparedGraph) -> None:
        """Caches ``graph`` as prepared from ``obj`` under ``key`` (not while recording)."""
        if recording() is not None:
            return
        copies = tuple((_narrow_copy(t), t.dtype) for t in _index_tensors(obj))
        self._entry = (key, copies, graph)

    def prepare(self, obj, key: tuple, build: Callable[[], PreparedGraph]) -> PreparedGraph:
        """The cached graph for ``obj`` under ``key``, or ``build()``'s, which is then cached."""
        graph = self.get(obj, key)
        if graph is None:
            graph = build()
            self.put(obj, key, graph)
        return graph

    def __getstate__(self):
        return {}

    def __setstate__(self, state):
        self.clear()

    def __deepcopy__(self, memo):
        return GraphCache()

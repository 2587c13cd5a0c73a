"""Shared by the launch wrappers: argument checks that mirror the C++ operators' (``csrc/
common.cpp``), the verification of a graph's index contents (once per graph), block sizes and
dtype mapping.

Every check here runs before a kernel is launched. On a GPU an out-of-range index is not a
wrong number but an illegal memory access that ends the CUDA context, so index contents are
verified as the C++ kernels verify them (``ptr`` from 0 to E and non-decreasing, ``src`` /
``t_col`` / ``t_perm`` in range, the transposed order consistent with the sorted one). That
needs one device-to-host synchronisation; it is done once per graph: a graph whose five index
tensors are the same objects, unmodified (same ``_version``), as a verified one is not checked
again (the C++ kernels' ``VerifiedTransposes``).
"""
import os
import threading
import weakref
from typing import List, Optional, Sequence

import torch
from torch import Tensor

FLOAT_DTYPES = (torch.float32, torch.float64, torch.bfloat16, torch.float16)
INDEX_DTYPES = (torch.int64, torch.int32)

# Elements of a per-program [edges, heads, channels] register tile: 2048 float32 values are 16
# registers per thread at 4 warps, per tile. At 8 heads x 8 channels that is 32 edges per step
# (8 KB of gathered source rows in flight per program); ptxas (sm_90) then reports no spills
# in the forward kernels (126 registers GAT, 168 GATv2) and the GAT backward (110 / 95).
TILE_ELEMENTS = 2048
MAX_EDGE_BLOCK = 32
# Warps per program of the attention kernels.
NUM_WARPS = 4


def _pow2_from_env(name: str, default: int) -> int:
    """A launch constant overridden by an environment variable (a power of two), read once at
    import: ``GAT_PYG_TRITON_TILE`` (:data:`TILE_ELEMENTS`) and ``GAT_PYG_TRITON_WARPS``
    (:data:`NUM_WARPS`), so that a GPU run can compare launch shapes without code changes."""
    value = os.environ.get(name)
    if value is None:
        return default
    n = int(value)
    if n < 1 or n & (n - 1):
        raise ValueError(f'{name} must be a power of two, got {value!r}')
    return n


TILE_ELEMENTS = _pow2_from_env('GAT_PYG_TRITON_TILE', TILE_ELEMENTS)
NUM_WARPS = _pow2_from_env('GAT_PYG_TRITON_WARPS', NUM_WARPS)


def next_pow2(n: int) -> int:
    return 1 if n <= 1 else 1 << (int(n) - 1).bit_length()


def prev_pow2(n: int) -> int:
    return 1 if n <= 1 else 1 << (int(n).bit_length() - 1)


def edge_block(num_edges: int, num_rows: int, width: int) -> int:
    """Edges per loop step of a row program: a power of two, about the mean degree (a step
    beyond it would be masked lanes), at most 32, and small enough that ``[edges, width]``
    stays within :data:`TILE_ELEMENTS`. ``width`` = padded heads x padded channels. At least
    2 (a one-element dimension is avoided in reductions)."""
    mean = -(-num_edges // max(num_rows, 1))
    by_tile = prev_pow2(max(TILE_ELEMENTS // max(width, 1), 1))
    return max(2, min(MAX_EDGE_BLOCK, next_pow2(max(mean, 1)), by_tile))


def acc_dtype(dtype: torch.dtype) -> torch.dtype:
    """The accumulation dtype: float64 for float64, float32 otherwise."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def tl_dtype(dtype: torch.dtype):
    import triton.language as tl
    return {torch.float32: tl.float32, torch.float64: tl.float64}[dtype]


def check_float(name: str, t: Tensor, dtype: Optional[torch.dtype], sizes: Sequence[int],
                device: Optional[torch.device] = None) -> None:
    """``t`` is a tensor of ``dtype`` (any float dtype the kernels take when None) with sizes
    ``sizes`` (-1: any), on ``device``. Raises RuntimeError, as the C++ operators do."""
    if not isinstance(t, Tensor):
        raise RuntimeError(f'gat_pyg: {name} must be a tensor, got {type(t).__name__}')
    if dtype is None:
        if t.dtype not in FLOAT_DTYPES:
            raise RuntimeError(f'gat_pyg: {name} must be float32, float64, bfloat16 or '
                               f'float16, got {t.dtype}')
    elif t.dtype != dtype:
        raise RuntimeError(f'gat_pyg: {name} must be {dtype}, got {t.dtype}')
    if device is not None and t.device != device:
        raise RuntimeError(f'gat_pyg: {name} must be on {device}, got {t.device}')
    if t.dim() != len(sizes):
        raise RuntimeError(f'gat_pyg: {name} must have {len(sizes)} dimensions, got shape '
                           f'{tuple(t.shape)}')
    for d, s in enumerate(sizes):
        if s >= 0 and t.shape[d] != s:
            raise RuntimeError(f'gat_pyg: {name} has shape {tuple(t.shape)}, expected size {s} '
                               f'in dimension {d}')


def check_index(name: str, t: Tensor, dtype: torch.dtype, device: torch.device) -> None:
    if not isinstance(t, Tensor) or t.dim() != 1:
        raise RuntimeError(f'gat_pyg: {name} must be a 1-D tensor')
    if t.dtype not in INDEX_DTYPES:
        raise RuntimeError(f'gat_pyg: {name} must be int64 or int32, got {t.dtype}')
    if t.dtype != dtype:
        raise RuntimeError(f'gat_pyg: {name} must have the dtype of ptr ({dtype}), got {t.dtype}')
    if t.device != device:
        raise RuntimeError(f'gat_pyg: {name} must be on {device} (the device of the features), '
                           f'got {t.device}')
    if not t.is_contiguous():
        raise RuntimeError(f'gat_pyg: {name} must be contiguous')


class _Verified:
    """The last few graphs whose index contents passed :func:`check_graph`, held weakly."""

    def __init__(self, size: int = 8):
        self._entries: List[tuple] = []
        self._size = size
        self._lock = threading.Lock()

    @staticmethod
    def _key(tensors):
        return tuple((t.data_ptr(), t._version, t.numel()) for t in tensors)

    def contains(self, tensors) -> bool:
        key = self._key(tensors)
        with self._lock:
            for refs, k in self._entries:
                if k == key and all(r() is t for r, t in zip(refs, tensors)):
                    return True
        return False

    def add(self, tensors) -> None:
        try:
            refs = tuple(weakref.ref(t) for t in tensors)
        except TypeError:   # not weak-referenceable: not remembered
            return
        with self._lock:
            self._entries.append((refs, self._key(tensors)))
            del self._entries[:-self._size]


_verified = _Verified()


def check_graph(ptr: Tensor, src: Tensor, t_ptr: Optional[Tensor], t_col: Optional[Tensor],
                t_perm: Optional[Tensor], num_src: int, device: torch.device,
                backward: bool) -> None:
    """Dtypes, devices and shapes of the graph's index tensors, and (once per graph) their
    contents: ``ptr`` and ``src``, and with ``backward`` (which needs it) the transposed
    order. Raises RuntimeError."""
    check_index('ptr', ptr, ptr.dtype if isinstance(ptr, Tensor) else None, device)
    if ptr.numel() < 1:
        raise RuntimeError('gat_pyg: ptr must have N_dst + 1 >= 1 entries')
    check_index('src', src, ptr.dtype, device)
    given = [t is not None for t in (t_ptr, t_col, t_perm)]
    if any(given) and not all(given):
        raise RuntimeError('gat_pyg: t_ptr, t_col and t_perm must be given together '
                           '(or none of them)')
    if backward and not all(given):
        raise RuntimeError('gat_pyg: backward needs the transposed order (t_ptr, t_col, t_perm); '
                           'pass it to the forward call when gradients are needed')
    tensors = [ptr, src]
    if all(given):
        for name, t in (('t_ptr', t_ptr), ('t_col', t_col), ('t_perm', t_perm)):
            check_index(name, t, ptr.dtype, device)
        if t_ptr.numel() != num_src + 1:
            raise RuntimeError(f'gat_pyg: t_ptr must have N_src + 1 = {num_src + 1} entries '
                               f'(N_src from the source features), got {t_ptr.numel()}')
        if t_col.numel() != src.numel() or t_perm.numel() != src.numel():
            raise RuntimeError('gat_pyg: src, t_col and t_perm must have one entry per edge, '
                               f'got {src.numel()}, {t_col.numel()}, {t_perm.numel()}')
        if backward:        # forward does not read the transposed order (nor do the C++ checks)
            tensors += [t_ptr, t_col, t_perm]
    if _verified.contains(tensors):
        return
    _check_contents(tensors, num_src)
    _verified.add(tensors)


def _check_contents(tensors, num_src: int) -> None:
    ptr, src = tensors[0], tensors[1]
    num_dst, edges = ptr.numel() - 1, src.numel()

    def pointers(name, p):
        bad = (p[0] != 0) | (p[-1] != edges)
        if p.numel() > 1:
            bad = bad | (p[1:] < p[:-1]).any()
        return bad, f'gat_pyg: {name} must start at 0, end at the number of edges ({edges}) ' \
                    'and never decrease'

    def in_range(name, v, bound):
        if v.numel() == 0:
            return torch.zeros((), dtype=torch.bool, device=v.device), ''
        return (v.min() < 0) | (v.max() >= bound), \
            f'gat_pyg: {name} has an entry outside [0, {bound})'

    checks = [pointers('ptr', ptr), in_range('src', src, num_src)]
    if len(tensors) == 5:
        t_ptr, t_col, t_perm = tensors[2:]
        checks += [pointers('t_ptr', t_ptr), in_range('t_col', t_col, num_dst),
                   in_range('t_perm', t_perm, edges)]
    # One synchronisation for the simple checks ...
    flags = torch.stack([c[0] for c in checks]).tolist()
    for bad, (_, message) in zip(flags, checks):
        if bad:
            raise RuntimeError(message)
    if len(tensors) == 5 and edges:
        # ... and one for the transpose (indices now known to be in range): position k of the
        # source order holds edge e = t_perm[k] from j = src[e] to i = t_col[k], so k lies in
        # row j of t_ptr and e in row i of ptr.
        k = torch.arange(edges, device=src.device, dtype=src.dtype)
        e, i = t_perm.long(), t_col.long()
        j = src[e].long()
        mismatch = ((t_ptr[j] > k) | (t_ptr[j + 1] <= k) | (ptr[i] > e) | (ptr[i + 1] <= e)).any()
        if bool(mismatch):
            raise RuntimeError(
                'gat_pyg: t_ptr/t_col/t_perm are not the transpose of ptr/src (an edge listed '
                'under source j in t_ptr must have src[t_perm[k]] == j and lie in row t_col[k] '
                'of ptr)')


def empty_or(want: bool, like: Tensor, *sizes) -> Tensor:
    """A backward output: the full shape if wanted, else an empty tensor (``new_empty(0)``)."""
    return like.new_empty(sizes) if want else like.new_empty(0)

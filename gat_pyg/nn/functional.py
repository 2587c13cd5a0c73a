"""Dropout shared by the layers (attention coefficients) and the models (node features, dense
or sparse), with a mask sampler cheaper than ``bernoulli_``."""
import torch
from torch import Tensor

from gat_pyg import kernels


def dropout_features(x: Tensor, p: float, training: bool) -> Tensor:
    r"""Dropout on node features, for dense and for ``torch.sparse`` (COO or CSR) ``x``.

    Each stored entry is kept with probability :math:`1 - p` and scaled by :math:`1 / (1 - p)`,
    so for a sparse ``x`` the result equals dense dropout of ``x.to_dense()`` whose mask happens
    to agree on the stored entries (zeros stay zero whatever the mask says). Bag-of-words
    Planetoid features are ~1 % dense, so sampling one number per stored value instead of per
    matrix entry is what makes input dropout cheap.

    Args:
        x (Tensor): Dense ``[N, F]`` features, or a sparse COO / CSR tensor.
        p (float): Probability of zeroing an entry, in ``[0, 1]``.
        training (bool): Apply dropout only when ``True`` (as :func:`torch.nn.functional.dropout`).

    Returns:
        A tensor of the same layout as ``x``. A COO result stores only the kept entries
        (coalesced); a CSR result keeps ``x``'s structure with the dropped values set to zero.

    With the native kernels loaded (and outside torch.compile, function transforms and
    tracing), a dense CPU ``x`` of float32, float64 or bfloat16 is dropped by
    :func:`gat_pyg.kernels.feature_dropout` and a COO ``x`` whose values need no gradient by
    :func:`gat_pyg.kernels.sparse_dropout` (masks from the kernels' hash) instead of
    :func:`keep_mask`: the same distribution, other draws for a given seed.
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f'dropout_features: p must be in [0, 1], got {p}')
    if not training or p == 0.0:
        return x
    if x.layout == torch.strided:
        if p == 1.0:
            return x * 0.0
        if native_eager(x, kernels.SUPPORTED_DTYPES):
            # One native pass forward and one backward (the mask is regenerated from its seed),
            # where keep_mask costs a random tensor, a comparison, a conversion and two products.
            return kernels.feature_dropout(x, p, True)
        return x * keep_mask(x.shape, p, x.device).to(x.dtype).mul_(1.0 / (1.0 - p))
    if x.layout == torch.sparse_coo:
        x = x.coalesce()
        values = x.values()
        if native_eager(values) and not (values.requires_grad and torch.is_grad_enabled()):
            # One pass in the native library (hash mask, kept entries copied in order).
            indices, values = kernels.sparse_dropout(x.indices(), values, p)
            return torch.sparse_coo_tensor(indices, values, x.shape, is_coalesced=True,
                                           check_invariants=False)
        if p == 1.0:
            return torch.sparse_coo_tensor(x.indices()[:, :0], values[:0], x.shape,
                                           is_coalesced=True, check_invariants=False)
        # Dropping the zeroed entries costs an index_select but halves the sparse product that
        # follows (and its backward); on Cora (nnz 49,216, p 0.6) dropout + x @ W[1433, 64]
        # took 2.6 + 2.3 ms with filtering against 1.4 + 4.8 ms when the zeros were kept.
        keep = keep_mask(values.shape, p, values.device).nonzero().view(-1)
        return torch.sparse_coo_tensor(x.indices().index_select(1, keep),
                                       values.index_select(0, keep) / (1.0 - p),
                                       x.shape, is_coalesced=True, check_invariants=False)
    if x.layout == torch.sparse_csr:
        values = x.values()
        # Filtering a CSR tensor would mean rebuilding crow_indices; keeping its structure with
        # explicit zeros is simpler and CSR features are rare (Planetoid gives COO).
        if p == 1.0:
            kept = torch.zeros_like(values)
        else:
            kept = values * keep_mask(values.shape, p, values.device) / (1.0 - p)
        return torch.sparse_csr_tensor(x.crow_indices(), x.col_indices(), kept, x.shape,
                                       check_invariants=False)
    raise ValueError(f'dropout_features: x must be dense, sparse COO or sparse CSR, '
                     f'got layout {x.layout}')


def transforming() -> bool:
    """A function transform (vmap, grad, jacrev) or torch.jit.trace is active."""
    # Private API (torch._C._functorch.peek_interpreter_stack): the interpreter stack is what
    # torch.func pushes a level onto; on upgrades check that it still returns None outside
    # any transform (a test runs vmap and grad over the layers).
    return torch._C._functorch.peek_interpreter_stack() is not None or \
        torch.jit.is_tracing()


def tracing() -> bool:
    """:func:`transforming`, or torch.compile tracing."""
    return transforming() or torch.compiler.is_compiling()


def native_eager(t: Tensor, dtypes=(torch.float32, torch.float64)) -> bool:
    """Whether the native operators take ``t`` (a dense tensor, a sparse tensor's stored values,
    or the weight they multiply) in this call: the library is loaded, ``t`` is on the CPU with
    one of ``dtypes``, and no compiler, function transform or trace is recording (what those
    see are the pure-torch operations)."""
    return (kernels.available() and t.device.type == 'cpu' and t.dtype in dtypes
            and not tracing())


def keep_mask(shape, p: float, device=None) -> Tensor:
    """A boolean mask whose entries are True with probability ``1 - p`` (to within 2^-15).

    One 64-bit draw of ``random_()`` yields four 16-bit lanes; the lowest 15 bits of each lane
    are uniform, so each lane is compared with ``p * 2^15``: four mask entries per draw, where
    ``bernoulli_`` makes one draw per entry and ``rand`` one float. A paper-GAT epoch draws four
    masks (input features, two attention tensors, hidden features); for Cora's 106k attention
    entries, on one core, ``F.dropout`` took 1.2 ms, ``rand_like(x) >= p`` 0.45 ms and this
    mask with the multiply 0.25 ms (torch 2.13).
    """
    threshold = round(p * 32768)
    if threshold >= 32768:   # p = 1 (not representable as an int16 threshold): drop all
        return torch.zeros(shape, dtype=torch.bool, device=device)
    numel = 1
    for size in shape:
        numel *= size
    draws = torch.empty((numel + 3) // 4, dtype=torch.int64, device=device).random_()
    lanes = draws.view(torch.int16)[:numel].view(shape)
    return lanes.bitwise_and_(0x7FFF) >= threshold

r"""``attention_dropout`` and ``feature_dropout`` in Triton: the C++ operators' masks
(``csrc/common.cpp``), bit for bit.

.. math::
    \mathrm{out}_k = \left(x_k \cdot \tfrac{1}{1-p}\right) \cdot \mathrm{keep}_k

computed in the accumulation type (float32; float64 for float64) and rounded once to the
input's dtype, as the C++ ``DropValues``: ``keep_k`` from :mod:`.hashing` at the flat index
``k`` of the (contiguous) input, one hash per element for attention dropout
(:func:`~.hashing.keep_single`, counter ``e * H + h`` of ``alpha``), one per two elements for
feature dropout (:func:`~.hashing.keep_paired`). Both are linear in ``x``, so each is its own
backward (the integrator registers them so).

Grid: one program per block of :data:`BLOCK` elements. Nothing is saved.
"""
import torch
import triton
import triton.language as tl
from torch import Tensor

from gat_pyg.kernels.triton import _common
from gat_pyg.kernels.triton.hashing import dropout_args, keep_paired, keep_single, seed_base

BLOCK = 1024


@triton.jit(do_not_specialize=['base_lo', 'base_hi', 'threshold'])
def _dropout_kernel(x_ptr, out_ptr, n, base_lo, base_hi, threshold, scale: tl.float64,
                    PAIRED: tl.constexpr, ACC: tl.constexpr, BLOCK: tl.constexpr):
    start = tl.program_id(0).to(tl.int64) * BLOCK
    offs = start + tl.arange(0, BLOCK)
    mask = offs < n
    base = seed_base(base_lo, base_hi)
    if PAIRED:
        keep = keep_paired(base, offs, threshold)
    else:
        keep = keep_single(base, offs, threshold)
    x = tl.load(x_ptr + offs, mask=mask, other=0).to(ACC)
    # (x * scale) * keep, not a select: the C++ kernels' arithmetic (a dropped -x gives -0).
    y = (x * tl.full([], scale, ACC)) * keep.to(ACC)
    tl.store(out_ptr + offs, y.to(out_ptr.dtype.element_ty), mask=mask)


def hash_dropout(x: Tensor, p: float, seed, paired: bool, out: Tensor = None,
                 name: str = 'dropout', seed_name: str = 'seed') -> Tensor:
    """``x * keep / (1 - p)`` at ``x``'s flat index (``x`` made contiguous), into ``out``
    (a contiguous tensor like ``x``, possibly ``x`` itself) or a new tensor. ``p == 0`` returns
    a contiguous copy (or ``out`` holding ``x``), as the C++ ``hash_dropout``.

    Raises:
        RuntimeError: ``p`` outside [0, 1], or ``p > 0`` without a seed (one integer).
    """
    active, lo, hi, threshold, scale = dropout_args(p, seed, name, seed_name)
    x = x.contiguous()
    if out is None:
        out = torch.empty_like(x)
    if not active:
        if out.data_ptr() != x.data_ptr():
            out.copy_(x)
        return out
    n = x.numel()
    if n:
        acc = _common.tl_dtype(_common.acc_dtype(x.dtype))
        _dropout_kernel[(triton.cdiv(n, BLOCK), )](x, out, n, lo, hi, threshold, scale,
                                                   PAIRED=paired, ACC=acc, BLOCK=BLOCK)
    return out


def attention_dropout(alpha: Tensor, dropout: float, seed) -> Tensor:
    """The forward operators' attention dropout of ``alpha``.

    Args:
        alpha: ``[E, H]`` float tensor (the attention before dropout).
        dropout: probability ``p`` in [0, 1].
        seed: one-element integer tensor (needed when ``p > 0``).

    Returns:
        A new contiguous ``[E, H]`` tensor ``alpha * keep / (1 - p)``, the mask of counter
        ``e * H + h`` (the one ``gat_forward`` / ``gatv2_forward`` apply internally).

    Raises:
        RuntimeError: ``alpha`` not 2-D or not a supported float dtype, bad ``p`` / ``seed``.
    """
    if not isinstance(alpha, Tensor) or alpha.dim() != 2:
        raise RuntimeError('gat_pyg: alpha must be [E, H], got shape '
                           f'{tuple(getattr(alpha, "shape", ()))}')
    _common.check_float('alpha', alpha, None, (-1, -1))
    return hash_dropout(alpha, dropout, seed, paired=False)


def feature_dropout(x: Tensor, dropout: float, seed) -> Tensor:
    """Dropout of a dense tensor of any shape: ``x * keep / (1 - p)``, the mask at ``x``'s flat
    (row-major) index, two elements per hash.

    Args:
        x: float tensor of any shape (float32, float64, bfloat16, float16).
        dropout: probability ``p`` in [0, 1].
        seed: one-element integer tensor (needed when ``p > 0``).

    Returns:
        A new contiguous tensor of ``x``'s shape and dtype.

    Raises:
        RuntimeError: unsupported dtype, bad ``p`` / ``seed``.
    """
    if not isinstance(x, Tensor) or x.dtype not in _common.FLOAT_DTYPES:
        raise RuntimeError('gat_pyg: x must be float32, float64, bfloat16 or float16, got '
                           f'{getattr(x, "dtype", type(x).__name__)}')
    return hash_dropout(x, dropout, seed, paired=True)

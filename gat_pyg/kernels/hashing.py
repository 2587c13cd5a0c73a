r"""The dropout masks of every kernel, in plain torch: a counter-based hash of (seed, position).

A mask entry is a pure function of the seed and the entry's position, so it does not depend on
the device, the thread count or how a kernel splits its rows, and backward regenerates it
instead of storing it. The C++ kernels (``cpu/attend.h``, ``HashDropout``), the Triton kernels
(``triton/hashing.py``) and this module compute the same bits; the tests hold them equal bit
for bit, so a seed gives the same masks on every device and in every implementation.

The hash is SplitMix64 (Steele, Lea, Flood, "Fast splittable pseudorandom number generators",
OOPSLA 2014): ``base = mix(seed)``, and the word of counter ``c`` is
``mix(base + (c + 1) * 0x9E3779B97F4A7C15)`` (the ``c + 1``-th output of a SplitMix64 stream).
An entry is kept iff its 32-bit lane is ``>= round(p * 2^32)``, so P(keep) = 1 - p to within
2^-32, and a kept value is scaled by ``1 / (1 - p)`` (``p = 1`` keeps nothing, scale 0).

* one word per entry (:func:`keep_mask`): attention dropout (counter ``e * H + h``, the flat
  index of ``alpha [E, H]``) and sparse input dropout (counter: the stored entry's position);
  the lane is the word's upper half;
* one word per two entries (:func:`paired_keep_mask`): feature dropout and message dropout
  (counter: the flat index ``k``; entry ``k`` takes the lower half of word ``k // 2`` when ``k``
  is even, the upper half when it is odd), half the hashing for the large per-element masks.

torch has no unsigned 64-bit arithmetic on every device, so the words live in ``int64``:
addition and multiplication wrap modulo 2^64 alike, and a logical right shift is an arithmetic
one with the sign bits masked off.
"""
from typing import Optional

import torch
from torch import Tensor

GOLDEN = 0x9E3779B97F4A7C15
"""SplitMix64's increment (2^64 / golden ratio)."""
_MIX1, _MIX2 = 0xBF58476D1CE4E5B9, 0x94D049BB133111EB
_LOW32 = 0xFFFFFFFF


def as_int64(value: int) -> int:
    """An unsigned 64-bit constant as the int64 with the same bits."""
    value &= (1 << 64) - 1
    return value - (1 << 64) if value >= 1 << 63 else value


def _shr(z: Tensor, bits: int) -> Tensor:
    """Logical right shift of int64 words."""
    return (z >> bits) & ((1 << (64 - bits)) - 1)


def mix(z: Tensor) -> Tensor:
    """SplitMix64's finaliser (a bijective avalanche mix) of int64 words."""
    z = (z ^ _shr(z, 30)) * as_int64(_MIX1)
    z = (z ^ _shr(z, 27)) * as_int64(_MIX2)
    return z ^ _shr(z, 31)


def threshold(p: float) -> int:
    """The 32-bit lanes below this are dropped: ``round(p * 2^32)`` (``2^32`` for ``p >= 1``,
    which drops every entry), rounded half away from zero as the C++ ``llround``."""
    if p >= 1.0:
        return 1 << 32
    scaled = p * 4294967296.0
    return int(scaled + 0.5)


def scale(p: float) -> float:
    """The factor of a kept value: ``1 / (1 - p)``; 0 for ``p >= 1`` (so 0 * scale is not
    NaN)."""
    return 0.0 if p >= 1.0 else 1.0 / (1.0 - p)


def words(seed: Tensor, counters: Tensor) -> Tensor:
    """The hash word of each counter (int64 tensor of any shape) for ``seed`` (a one-element
    integer tensor)."""
    base = mix(seed.reshape(()).to(device=counters.device, dtype=torch.int64))
    return mix(base + (counters + 1) * as_int64(GOLDEN))


def keep_mask(seed: Tensor, p: float, numel: int, device=None) -> Tensor:
    """``[numel]`` booleans, one word per entry (attention and sparse dropout)."""
    counters = torch.arange(numel, dtype=torch.int64, device=device)
    return _shr(words(seed, counters), 32) >= threshold(p)


def paired_keep_mask(seed: Tensor, p: float, numel: int, device=None) -> Tensor:
    """``[numel]`` booleans, one word per two entries (feature and message dropout)."""
    pairs = torch.arange((numel + 1) // 2, dtype=torch.int64, device=device)
    word = words(seed, pairs)
    lanes = torch.stack([word & _LOW32, _shr(word, 32)], dim=1).reshape(-1)[:numel]
    return lanes >= threshold(p)


def drop(x: Tensor, p: float, seed: Optional[Tensor], paired: bool) -> Tensor:
    """``x * keep / (1 - p)`` with the mask of ``x``'s flat (row-major) index; ``x`` itself
    when ``seed`` is None or ``p == 0``. Differentiable in ``x`` (the mask is a constant)."""
    if seed is None or p == 0.0:
        return x
    make = paired_keep_mask if paired else keep_mask
    keep = make(seed, p, x.numel(), x.device).view(x.shape)
    # x * scale first, then the mask: the kernels' order of rounding (exact for 0/1 masks).
    return (x * scale(p)) * keep.to(x.dtype)

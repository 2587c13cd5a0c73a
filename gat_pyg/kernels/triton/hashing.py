"""The dropout hash of the C++ kernels (``csrc/attention.h``, ``HashDropout``) as Triton device
functions, and the host-side encoding of a dropout's parameters.

A dropout decision is a pure function of ``(seed, position)``::

    base    = mix(seed)                                  (seed: the int64 seed, as uint64)
    word(c) = mix(base + (c + 1) * 0x9E3779B97F4A7C15)   (SplitMix64's c-th output)
    keep    = bits >= threshold,   threshold = round(p * 2**32)

with ``mix`` SplitMix64's finaliser (Steele, Lea, Flood 2014, "Fast splittable pseudorandom
number generators"). Two ways to take the 32 bits:

* :func:`keep_single` (attention dropout, counter ``e * H + h`` of ``alpha``): the upper 32 bits
  of ``word(c)``, one hash per element;
* :func:`keep_paired` (message and feature dropout, counter = the flat element index ``k``):
  the low (``k`` even) or high (``k`` odd) 32 bits of ``word(k // 2)``, one hash per two elements.

Since the mask depends on nothing but these integers, the Triton kernels and the C++ kernels
give the same masks bit for bit, and backward regenerates a mask instead of storing it.

Kernel arguments. Triton types a Python ``int`` argument by its value (``i32`` below 2**31,
``u32``, ``i64``, ``u64`` above), which would compile a kernel once per range the seed falls
into. So :func:`dropout_args` encodes everything as values that are always ``i32``:
``base`` as two halves (reassembled by :func:`seed_base`) and the threshold biased by
``-2**31`` (compared with the biased 32 bits). A threshold of ``2**32`` or more (``p = 1``, or a
``p`` that rounds up to it) cannot be represented; it drops everything, which the kernels get
from a scale of 0 (the C++ kernels multiply by 0 there too).
"""
import math
from typing import Tuple

import triton
import triton.language as tl

GOLDEN = 0x9E3779B97F4A7C15
_M64 = (1 << 64) - 1


def mix_host(z: int) -> int:
    """SplitMix64's finaliser on a Python int (the host side of :func:`mix64`)."""
    z &= _M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M64
    return z ^ (z >> 31)


def _signed32(v: int) -> int:
    return v - (1 << 32) if v >= (1 << 31) else v


def dropout_args(p: float, seed, name: str = 'dropout',
                 seed_name: str = 'seed') -> Tuple[bool, int, int, int, float]:
    """``(active, base_lo, base_hi, threshold_biased, scale)`` for a dropout of probability
    ``p`` with ``seed`` (an integer tensor of one element, or None when ``p == 0``), checked as
    the C++ ``make_dropout`` checks them.

    ``scale`` is ``1 / (1 - p)`` in double precision (the kernels round it to their
    accumulation type, as ``static_cast<acc_t>(scale)`` does), 0 when everything is dropped.

    Raises:
        RuntimeError: ``p`` outside [0, 1], or ``p > 0`` without a seed of one integer.
    """
    p = float(p)
    if not 0.0 <= p <= 1.0:
        raise RuntimeError(f'gat_pyg: {name} must be in [0, 1], got {p}')
    if p == 0.0:
        return False, 0, 0, 0, 1.0
    if seed is None:
        raise RuntimeError(f'gat_pyg: {name} > 0 needs a {seed_name}')
    if seed.numel() != 1 or seed.dtype.is_floating_point or seed.dtype.is_complex:
        raise RuntimeError(f'gat_pyg: {seed_name} must be one integer, got shape '
                           f'{tuple(seed.shape)} of {seed.dtype}')
    # .item() on a CPU tensor does not synchronise; the layers keep their seeds on the CPU.
    base = mix_host(int(seed.item()) & _M64)
    # std::llround (halves away from zero); p * 2**32 + 0.5 is exact in double precision.
    threshold = (1 << 32) if p >= 1.0 else int(math.floor(p * 4294967296.0 + 0.5))
    if threshold > 0xFFFFFFFF:          # drops everything
        return True, _signed32(base & 0xFFFFFFFF), _signed32(base >> 32), (1 << 31) - 1, 0.0
    return (True, _signed32(base & 0xFFFFFFFF), _signed32(base >> 32), threshold - (1 << 31),
            1.0 / (1.0 - p))


@triton.jit
def mix64(z):
    """SplitMix64's finaliser on a uint64 tensor (wrapping multiplication)."""
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
    z = (z ^ (z >> 27)) * 0x94D049BB133111EB
    return z ^ (z >> 31)


@triton.jit
def seed_base(base_lo, base_hi):
    """The uint64 ``base = mix(seed)`` from its two int32 halves (see :func:`dropout_args`)."""
    lo = base_lo.to(tl.uint32, bitcast=True).to(tl.uint64)
    hi = base_hi.to(tl.uint32, bitcast=True).to(tl.uint64)
    return (hi << 32) | lo


@triton.jit
def _biased(bits32):
    # bits in [0, 2**32) (held in uint64) -> bits - 2**31 as int64, comparable with the biased
    # threshold.
    return bits32.to(tl.int64) - 2147483648


@triton.jit
def keep_single(base, counter, threshold_biased):
    """Attention dropout's decision for integer tensor ``counter`` (``e * H + h``): the upper
    32 bits of the counter's SplitMix64 word against the threshold. Returns a bool tensor."""
    word = mix64(base + (counter.to(tl.uint64) + 1) * 0x9E3779B97F4A7C15)
    return _biased(word >> 32) >= threshold_biased.to(tl.int64)


@triton.jit
def keep_paired(base, index, threshold_biased):
    """Message / feature dropout's decision for the flat element index ``index``: the low
    (even index) or high (odd index) 32 bits of the word of ``index // 2``."""
    k = index.to(tl.uint64)
    word = mix64(base + ((k >> 1) + 1) * 0x9E3779B97F4A7C15)
    bits = tl.where((k & 1) == 1, word >> 32, word & 0xFFFFFFFF)
    return _biased(bits) >= threshold_biased.to(tl.int64)

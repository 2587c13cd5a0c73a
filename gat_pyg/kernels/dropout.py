r"""The dropout operators, all drawing their masks from :mod:`gat_pyg.kernels.hashing`.

* ``attention_dropout(alpha, p, seed)``: the mask the attention operators apply inside the
  aggregation, for the attention weights a layer returns (one word per entry of
  ``alpha [E, H]``);
* ``feature_dropout(x, p, seed)``: dropout of a dense tensor of any shape (one word per two
  entries of its flat index); the models' input and hidden dropout;
* ``sparse_dropout(indices, values, p, seed)``: dropout of a sparse tensor's stored entries,
  which leaves the dropped ones out (one word per entry).

Each keeps an entry with probability ``1 - p`` and scales it by ``1 / (1 - p)``
(:func:`torch.nn.functional.dropout`'s distribution, inverted dropout); the seed is drawn from
torch's default generator, so ``torch.manual_seed`` repeats a mask bit for bit, on every device
and backend. The first two are linear in their input: their backward is the same operator on the
gradient (the mask regenerated, never stored), which is also differentiable.
"""
from typing import Tuple

import torch
from torch import Tensor

from gat_pyg.kernels import hashing
from gat_pyg.kernels.attend import INDEX_DTYPES, describe, draw_seed
from gat_pyg.kernels.dispatch import Operator


def _dense_fake(x, dropout, seed):
    return torch.empty_like(x, memory_format=torch.contiguous_format)


def _linear_backward(op_name: str):
    """The backward of a linear dropout: the same operator (and mask) on the gradient; called
    through the operator, so that a recorded backward is differentiable too."""
    def backward(args, saved_outputs, grads, needs, info):
        _, p, seed = args
        grad = grads[0]
        if grad is None or not needs[0]:
            return None, None, None
        from gat_pyg.kernels.dispatch import operator
        return operator(op_name)(grad.contiguous(), p, seed), None, None
    return backward


def _attention_reference(alpha, dropout, seed):
    return hashing.drop(alpha, dropout, seed, paired=False)


def _feature_reference(x, dropout, seed):
    return hashing.drop(x, dropout, seed, paired=True)


ATTENTION_DROPOUT = Operator(
    'attention_dropout(Tensor alpha, float dropout, Tensor? seed) -> Tensor',
    _dense_fake, _attention_reference, like=0,
    backward=_linear_backward('attention_dropout'), save_inputs=(2, ),
    differentiable_backward=_linear_backward('attention_dropout'))
FEATURE_DROPOUT = Operator(
    'feature_dropout(Tensor x, float dropout, Tensor? seed) -> Tensor',
    _dense_fake, _feature_reference, like=0, backward=_linear_backward('feature_dropout'),
    save_inputs=(2, ), differentiable_backward=_linear_backward('feature_dropout'))


def _sparse_reference(indices, values, dropout, seed):
    if seed is None or dropout == 0.0:
        return indices, values
    keep = hashing.keep_mask(seed, dropout, values.shape[0], values.device)
    kept = keep.nonzero().view(-1)
    return indices.index_select(1, kept), values.index_select(0, kept) * hashing.scale(dropout)


def _sparse_fake(indices, values, dropout, seed):
    kept = torch.library.get_ctx().new_dynamic_size()   # how many entries the mask keeps
    return indices.new_empty(indices.shape[0], kept), values.new_empty(kept, *values.shape[1:])


# Not differentiable as a kernel: values that need a gradient take the reference (an index
# selection, which autograd differentiates).
SPARSE_DROPOUT = Operator(
    'sparse_dropout(Tensor indices, Tensor values, float dropout, Tensor? seed) '
    '-> (Tensor indices, Tensor values)',
    _sparse_fake, _sparse_reference, like=1)


def feature_dropout(x: Tensor, p: float = 0.5, training: bool = True) -> Tensor:
    r"""Dropout of a dense tensor, ``x * keep / (1 - p)`` with ``keep`` ~ Bernoulli(1 - p) per
    element, from the counter-based hash (a seed drawn from torch's default generator, the
    element's flat index as counter): backward regenerates the mask instead of storing it, and
    ``torch.manual_seed`` repeats it bit for bit on every device.

    Args:
        x (Tensor): Dense floating-point features of any shape, on any device.
        p (float): Probability of zeroing an element, in ``[0, 1]``. (default: ``0.5``)
        training (bool): Apply dropout only when ``True``. (default: ``True``)

    Returns:
        A new tensor of ``x``'s shape and dtype (``x`` itself when nothing is dropped).

    Raises:
        TypeError: ``x`` not a dense floating-point tensor, ``p`` not a number.
        ValueError: ``p`` outside ``[0, 1]``.
    """
    p, seed = draw_seed(p, training, 'p')
    if not isinstance(x, Tensor):
        raise TypeError(f'x: expected a tensor, got {describe(x)}')
    if x.layout != torch.strided:
        raise TypeError(f'x: expected a dense tensor, got layout {x.layout} (sparse features: '
                        f'gat_pyg.nn.functional.dropout_features)')
    if not x.is_floating_point():
        raise TypeError(f'x: expected floating point values, got {x.dtype}')
    if seed is None:
        return x
    return FEATURE_DROPOUT(x.contiguous(), p, seed)


def sparse_dropout(indices: Tensor, values: Tensor, p: float,
                   training: bool = True) -> Tuple[Tensor, Tensor]:
    r"""Dropout of a sparse tensor's stored entries: entry ``k`` is kept with probability
    ``1 - p``, decided by the hash of ``(seed, k)``, and the kept values are scaled by
    ``1 / (1 - p)``; the dropped entries are left out.

    Args:
        indices (Tensor): ``[D, nnz]`` int64 or int32 coordinates (a COO tensor's
            ``indices()``).
        values (Tensor): ``[nnz, ...]`` floating-point values (differentiable).
        p (float): Probability of dropping an entry, in ``[0, 1]``.
        training (bool): Apply dropout only when ``True``. (default: ``True``)

    Returns:
        ``(indices [D, kept], values [kept, ...])``, the kept entries in their original order
        (a coalesced input stays coalesced); the inputs themselves when nothing is dropped.

    Raises:
        TypeError / ValueError: arguments of the wrong kind, dtype, shape or range.
    """
    p, seed = draw_seed(p, training, 'p')
    if not isinstance(indices, Tensor) or indices.dtype not in INDEX_DTYPES:
        raise TypeError(f'indices: expected an int64 or int32 tensor, got {describe(indices)}')
    if indices.dim() != 2:
        raise ValueError(f'indices: expected [D, nnz], got {describe(indices)}')
    if not isinstance(values, Tensor) or not values.is_floating_point():
        raise TypeError(f'values: expected a floating-point tensor, got {describe(values)}')
    if values.dim() < 1 or values.shape[0] != indices.shape[1]:
        raise ValueError(f'values: expected one row per column of indices '
                         f'({indices.shape[1]}), got shape {list(values.shape)}')
    if values.device != indices.device:
        raise ValueError(f'values: expected the device of indices ({indices.device}), got '
                         f'{values.device}')
    if seed is None:
        return indices, values
    return SPARSE_DROPOUT(indices.contiguous(), values.contiguous(), p, seed)

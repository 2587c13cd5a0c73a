r"""The first layer's projection of sparse bag-of-words features, ``X @ W^T`` (``X`` ~1 % dense).

``X`` (``[N, F]``) is given by its stored entries sorted by row, as a coalesced
``torch.sparse_coo_tensor`` holds them: ``row``, ``col`` (``[nnz]``, both int64 or both int32)
and ``values`` (``[nnz]``). A row may hold no entry (its output row is 0).

* forward: ``out[n] = sum_{k: row[k] = n} values[k] * W[:, col[k]]``;
* backward: ``grad_W[:, f] = sum_{k: col[k] = f} values[k] * grad_out[row[k]]`` and
  ``grad_values[k] = <grad_out[row[k]], W[:, col[k]]>``.

The C++ kernel splits rows among threads at row boundaries and, for the weight gradient, the
output channels (each thread walking all entries in order: no transposed copy of ``X``, no
atomics), so every sum has a fixed order whatever the thread count.
"""
from typing import Optional

import torch
from torch import Tensor

from gat_pyg.kernels.attend import INDEX_DTYPES, describe
from gat_pyg.kernels.dispatch import Operator, recording


def _reference(row, col, values, weight, num_rows):
    rows = values.unsqueeze(-1) * weight.t().index_select(0, col.long())
    return rows.new_zeros(num_rows, weight.shape[0]).index_add(0, row.long(), rows)


def _fake(row, col, values, weight, num_rows):
    return values.new_empty(num_rows, weight.shape[0])


def _backward_fake(grad_out, row, col, values, weight, output_mask):
    return (values.new_empty(values.shape) if output_mask[0] else values.new_empty(0),
            weight.new_empty(weight.shape) if output_mask[1] else weight.new_empty(0))


def _backward(args, saved_outputs, grads, needs, info):
    row, col, values, weight, _ = args
    if grads[0] is None:
        return (None, ) * 5
    mask = [needs[2], needs[3]]
    grad_values, grad_weight = torch.ops.gat_pyg.sparse_linear_backward(
        grads[0].contiguous(), row, col, values, weight, mask)
    return (None, None, grad_values if mask[0] else None, grad_weight if mask[1] else None,
            None)


SPARSE_LINEAR = Operator(
    'sparse_linear(Tensor row, Tensor col, Tensor values, Tensor weight, SymInt num_rows) '
    '-> Tensor', _fake, _reference, like=2, backward=_backward)
SPARSE_LINEAR_BACKWARD = Operator(
    'sparse_linear_backward(Tensor grad_out, Tensor row, Tensor col, Tensor values, '
    'Tensor weight, bool[2] output_mask) -> (Tensor grad_values, Tensor grad_weight)',
    _backward_fake)


def sparse_linear(row: Tensor, col: Tensor, values: Tensor, weight: Tensor, num_rows: int,
                  *, check: bool = True) -> Tensor:
    r"""``X @ weight^T`` for the sparse ``X`` ``[num_rows, F]`` with stored entries
    ``(row[k], col[k], values[k])``, rows sorted (non-decreasing). Differentiable in ``values``
    and ``weight`` (to any order).

    Args:
        row, col (Tensor): ``[nnz]`` int64 (or both int32) coordinates, ``row`` sorted,
            ``0 <= row < num_rows``, ``0 <= col < F``.
        values (Tensor): ``[nnz]`` floating-point stored values.
        weight (Tensor): ``[O, F]`` dense weight of ``values``' dtype (``Linear.weight``).
        num_rows (int): ``N``, the number of rows of ``X``.
        check (bool): Check the arguments first. (default: ``True``)

    Returns:
        ``[num_rows, O]`` dense tensor.

    Raises:
        TypeError / ValueError: naming the argument (wrong dtype, shape, device, unsorted
            rows, an index out of range).
    """
    if check:
        _check_linear(row, col, values, weight, num_rows)
    return SPARSE_LINEAR(row.contiguous(), col.contiguous(), values.contiguous(),
                         weight.contiguous(), num_rows)


def _check_index(name: str, t) -> None:
    if not isinstance(t, Tensor) or t.dtype not in INDEX_DTYPES:
        raise TypeError(f'{name}: expected an int64 or int32 tensor, got {describe(t)}')
    if t.dim() != 1:
        raise ValueError(f'{name}: expected a 1-D tensor, got {describe(t)}')


def _check_linear(row, col, values, weight, num_rows: Optional[int]) -> None:
    for name, t in (('row', row), ('col', col)):
        _check_index(name, t)
    if col.dtype != row.dtype:
        raise TypeError(f'col: expected the dtype of row ({row.dtype}), got {col.dtype}')
    for name, t in (('values', values), ('weight', weight)):
        if not isinstance(t, Tensor) or not t.is_floating_point():
            raise TypeError(f'{name}: expected a floating-point tensor, got {describe(t)}')
        if t.device != row.device:
            raise ValueError(f'{name}: expected the device of row ({row.device}), got '
                             f'{describe(t)}')
    if weight.dtype != values.dtype:
        raise TypeError(f'weight: expected the dtype of values ({values.dtype}), got '
                        f'{weight.dtype}')
    if values.dim() != 1 or values.shape[0] != row.shape[0] or col.shape[0] != row.shape[0]:
        raise ValueError(f'row, col, values: expected one entry each per stored value, got '
                         f'shapes {list(row.shape)}, {list(col.shape)}, {list(values.shape)}')
    if weight.dim() != 2:
        raise ValueError(f'weight: expected [O, F], got shape {list(weight.shape)}')
    if isinstance(num_rows, torch.SymInt):
        pass
    elif isinstance(num_rows, bool) or not isinstance(num_rows, int) or num_rows < 0:
        raise ValueError(f'num_rows: expected an int >= 0, got {num_rows!r}')
    if row.numel() and recording() is None:   # value checks: eager code only
        if bool((row[1:] < row[:-1]).any()):
            raise ValueError('row: expected the entries sorted by row (a coalesced COO tensor), '
                             'got a decreasing step')
        if int(row.min()) < 0 or int(row.max()) >= num_rows:
            raise ValueError(f'row: expected entries in [0, num_rows={num_rows})')
        if int(col.min()) < 0 or int(col.max()) >= weight.shape[1]:
            raise ValueError(f'col: expected entries in [0, F={weight.shape[1]}) (F = '
                             f'weight.shape[1])')

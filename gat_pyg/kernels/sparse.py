r"""Native operators for sparse input features (bag-of-words ``x``, ~1 % dense): the first
layer's projection ``X @ W^T`` with its backward, and dropout of the stored entries.

``X`` (``[N, F]``) is given by its stored entries sorted by row, as a coalesced
``torch.sparse_coo_tensor`` holds them: ``row``, ``col`` (``[nnz]``, both int64 or both int32)
and ``values`` (``[nnz]``). A row may hold no entry (its output row is 0).

* forward: ``out[n] = sum_{k: row[k] = n} values[k] * W[:, col[k]]``, rows split among threads
  at row boundaries;
* backward: ``grad_W[:, f] = sum_{k: col[k] = f} values[k] * grad_out[row[k]]``, the output
  channels split among threads, each walking all entries in order (no transposed copy of ``X``,
  no atomics); ``grad_values[k] = <grad_out[row[k]], W[:, col[k]]>`` when ``values`` needs it.

Every sum has a fixed order, so results do not depend on the thread count. On Cora (2,708 x
1,433, 49k entries, ``W`` 64 x 1,433) torch's CSR product and the transposed COO product of its
backward took ~2.8 ms together; these kernels take a small fraction of that (see the README's
Performance section).

Errors: ``TypeError`` / ``ValueError`` naming the argument (wrong dtype, shape, device, unsorted
rows, an index out of range), ``RuntimeError`` if the native library is not available.
"""
from typing import Tuple

import torch
from torch import Tensor

from gat_pyg.kernels.attention import (INDEX_DTYPES, _call, _describe, _dropout,
                                       _require_loaded)

VALUE_DTYPES = (torch.float32, torch.float64)


def sparse_linear(row: Tensor, col: Tensor, values: Tensor, weight: Tensor,
                  num_rows: int) -> Tensor:
    r"""``X @ weight^T`` for the sparse ``X`` ``[num_rows, F]`` with stored entries
    ``(row[k], col[k], values[k])``, rows sorted (non-decreasing). Differentiable in ``values``
    and ``weight`` (first derivatives).

    Args:
        row, col (Tensor): ``[nnz]`` int64 (or both int32) coordinates, ``row`` sorted,
            ``0 <= row < num_rows``, ``0 <= col < F``.
        values (Tensor): ``[nnz]`` float32 or float64 stored values.
        weight (Tensor): ``[O, F]`` dense weight of ``values``' dtype (``Linear.weight``).
        num_rows (int): ``N``, the number of rows of ``X``.

    Returns:
        ``[num_rows, O]`` dense tensor.
    """
    _require_loaded()
    try:
        return _call('sparse_linear', row.contiguous(), col.contiguous(), values.contiguous(),
                     weight.contiguous(), num_rows)
    except (RuntimeError, TypeError, AttributeError):
        _check_linear(row, col, values, weight, num_rows)
        raise


def sparse_dropout(indices: Tensor, values: Tensor, p: float,
                   training: bool = True) -> Tuple[Tensor, Tensor]:
    r"""Dropout of a sparse tensor's stored entries: entry ``k`` is kept with probability
    ``1 - p``, decided by the kernels' counter-based hash of ``(seed, k)`` (the seed drawn from
    torch's default generator, so ``torch.manual_seed`` repeats it), and the kept values are
    scaled by ``1 / (1 - p)``; the dropped entries are left out.

    Args:
        indices (Tensor): ``[D, nnz]`` int64 or int32 coordinates (a COO tensor's
            ``indices()``).
        values (Tensor): ``[nnz, ...]`` float32, float64 or bfloat16 values; not differentiable
            here (use :func:`gat_pyg.nn.functional.dropout_features` for values that need a
            gradient).
        p (float): Probability of dropping an entry, in ``[0, 1]``.
        training (bool): Apply dropout only when ``True``. (default: ``True``)

    Returns:
        ``(indices [D, kept], values [kept, ...])``, the kept entries in their original order
        (a coalesced input stays coalesced). Unchanged inputs when nothing is dropped.
    """
    p, seed = _dropout(p, training, 'p')
    if seed is None:
        return indices, values
    _require_loaded()
    if isinstance(values, Tensor) and values.requires_grad and torch.is_grad_enabled():
        raise ValueError('values: sparse_dropout is not differentiable, got values that '
                         'require grad (use gat_pyg.nn.functional.dropout_features)')
    try:
        return _call('sparse_dropout', indices, values, p, seed)
    except (RuntimeError, TypeError, AttributeError):
        _check_dropout(indices, values)
        raise


def _check_index(name: str, t) -> None:
    if not isinstance(t, Tensor) or t.dtype not in INDEX_DTYPES:
        raise TypeError(f'{name}: expected an int64 or int32 tensor, got {_describe(t)}')
    if t.device.type != 'cpu':
        raise ValueError(f'{name}: the native kernels run on the CPU, got {_describe(t)}')


def _check_linear(row, col, values, weight, num_rows) -> None:
    """Raises the error that names the argument sparse_linear refused (if a check finds it)."""
    for name, t in (('row', row), ('col', col)):
        _check_index(name, t)
        if t.dim() != 1:
            raise ValueError(f'{name}: expected a 1-D tensor, got {_describe(t)}')
    if col.dtype != row.dtype:
        raise TypeError(f'col: expected the dtype of row ({row.dtype}), got {col.dtype}')
    for name, t in (('values', values), ('weight', weight)):
        if not isinstance(t, Tensor) or t.dtype not in VALUE_DTYPES:
            raise TypeError(f'{name}: expected a float32 or float64 tensor, got {_describe(t)}')
        if t.device.type != 'cpu':
            raise ValueError(f'{name}: the native kernels run on the CPU, got {_describe(t)}')
    if weight.dtype != values.dtype:
        raise TypeError(f'weight: expected the dtype of values ({values.dtype}), got '
                        f'{weight.dtype}')
    if values.dim() != 1 or values.shape[0] != row.shape[0] or col.shape[0] != row.shape[0]:
        raise ValueError(f'row, col, values: expected one entry each per stored value, got '
                         f'shapes {list(row.shape)}, {list(col.shape)}, {list(values.shape)}')
    if weight.dim() != 2:
        raise ValueError(f'weight: expected [O, F], got shape {list(weight.shape)}')
    if isinstance(num_rows, bool) or not isinstance(num_rows, int) or num_rows < 0:
        raise ValueError(f'num_rows: expected an int >= 0, got {num_rows!r}')
    if row.numel():
        if bool((row[1:] < row[:-1]).any()):
            raise ValueError('row: expected the entries sorted by row (a coalesced COO tensor), '
                             'got a decreasing step')
        if int(row.min()) < 0 or int(row.max()) >= num_rows:
            raise ValueError(f'row: expected entries in [0, num_rows={num_rows})')
        if int(col.min()) < 0 or int(col.max()) >= weight.shape[1]:
            raise ValueError(f'col: expected entries in [0, F={weight.shape[1]}) (F = '
                             f'weight.shape[1])')


def _check_dropout(indices, values) -> None:
    _check_index('indices', indices)
    if indices.dim() != 2:
        raise ValueError(f'indices: expected [D, nnz], got {_describe(indices)}')
    if not isinstance(values, Tensor) or values.dtype not in (*VALUE_DTYPES, torch.bfloat16):
        raise TypeError(f'values: expected a float32, float64 or bfloat16 tensor, got '
                        f'{_describe(values)}')
    if values.device.type != 'cpu':
        raise ValueError(f'values: the native kernels run on the CPU, got {_describe(values)}')
    if values.dim() < 1 or values.shape[0] != indices.shape[1]:
        raise ValueError(f'values: expected one row per column of indices '
                         f'({indices.shape[1]}), got shape {list(values.shape)}')

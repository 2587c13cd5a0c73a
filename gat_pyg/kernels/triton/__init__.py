r"""Triton kernels of the ``gat_pyg`` operators, for CUDA tensors (and, under
``TRITON_INTERPRET=1``, CPU tensors through Triton's interpreter).

Each function takes exactly the arguments of the ``torch.ops.gat_pyg`` operator of the same
name (:mod:`gat_pyg.kernels.dispatch` defines them) and returns what it returns: they are the
``triton`` backend's kernels of those operators (:func:`kernels`), registered for CUDA when
``GAT_PYG_TRITON=1`` (and, with ``TRITON_INTERPRET=1``, for CPU tensors too, through Triton's
interpreter); the operators' autograd and fake kernels are the same for every backend:

==========================  ===========================================================
:func:`gat_forward`         GAT attention: scores, softmax, attention dropout, aggregation
:func:`gat_backward`        its backward (``output_mask`` of 4)
:func:`gatv2_forward`       GATv2 attention, with the optional edge term
:func:`gatv2_backward`      its backward (``output_mask`` of 6, ``merge_h_src``)
:func:`attention_dropout`   ``alpha``'s dropout with the forward operators' mask
:func:`feature_dropout`     dropout of any dense tensor (paired mask at its flat index)
:func:`head_scores`         ``s[n, h] = <x[n, h, :], att[h, :]>``
:func:`head_scores_backward`
==========================  ===========================================================

Files: :mod:`.attend_kernel` (the four attention functions; design, grid, what is saved and
the math in its docstring), :mod:`.head_scores_kernel`, :mod:`.dropout_kernel`,
:mod:`.hashing` (the dropout hash as Triton device functions); the plain-torch meaning of every
operator, which tests and the GPU check compare against, is :mod:`gat_pyg.kernels.reference`.

The same seed gives the same dropout masks as the C++ kernels, bit for bit: both compute them
from one counter-based hash of ``(seed, position)`` (:mod:`.hashing`). Results are
deterministic run to run: node-sized outputs are written by one program each (no atomics), and
parameter gradients are reduced in a fixed order.

Triton is optional (the ``gpu`` extra). This package imports without it; :func:`available`
says whether it can run, :func:`unavailable_reason` why not, and calling a kernel function
without Triton raises :class:`TritonUnavailableError` (a ``RuntimeError``). The kernel modules
import ``triton`` at their top and are imported on the first call of a function here, so
whether the kernels are interpreted is decided then: ``TRITON_INTERPRET=1`` must be set before
that first call.
"""
import importlib
import importlib.util
from typing import Optional

import torch

BACKEND = 'triton'
DTYPES = (torch.float32, torch.float64, torch.bfloat16, torch.float16)
NAMES = ('gat_forward', 'gat_backward', 'gatv2_forward', 'gatv2_backward', 'attention_dropout',
         'feature_dropout', 'head_scores', 'head_scores_backward')
"""The operators this backend has kernels of."""

__all__ = [
    'BACKEND', 'DTYPES', 'NAMES', 'kernels',
    'available', 'unavailable_reason', 'TritonUnavailableError',
    'gat_forward', 'gat_backward', 'gatv2_forward', 'gatv2_backward',
    'attention_dropout', 'feature_dropout', 'head_scores', 'head_scores_backward',
]


class TritonUnavailableError(RuntimeError):
    """A Triton kernel was called, but ``triton`` cannot be imported."""


def _find_triton() -> Optional[str]:
    """Why ``triton`` cannot be imported, or None if it can."""
    try:
        import triton                     # noqa: F401
        import triton.language            # noqa: F401
    except ImportError as error:
        return f'triton is not importable ({type(error).__name__}: {error}); install the ' \
               "'gpu' extra: pip install 'gat_pyg[gpu]' (triton>=3.6)"
    return None


def unavailable_reason() -> Optional[str]:
    """Why the Triton kernels cannot run here (None when they can)."""
    return _find_triton()


def available() -> bool:
    """Whether ``triton`` is importable, so that the kernels can run (on CUDA tensors, or on
    CPU tensors with ``TRITON_INTERPRET=1``)."""
    return _find_triton() is None


def _module(name: str):
    reason = _find_triton()
    if reason is not None:
        raise TritonUnavailableError(f'gat_pyg: the Triton kernels need triton: {reason}')
    from triton import knobs
    if knobs.runtime.interpret:
        from gat_pyg.kernels.triton import _interpreter
        _interpreter.install()
    return importlib.import_module(f'{__name__}.{name}')


def gat_forward(ptr, src, t_ptr, t_col, t_perm, s_src, s_dst, s_edge, h_src, negative_slope,
                dropout, seed, message_dropout=0.0, message_seed=None):
    """-> ``(out, alpha)``. See :func:`gat_pyg.kernels.triton.attend_kernel.gat_forward`."""
    return _module('attend_kernel').gat_forward(
        ptr, src, t_ptr, t_col, t_perm, s_src, s_dst, s_edge, h_src, negative_slope, dropout,
        seed, message_dropout, message_seed)


def gat_backward(grad_out, grad_alpha, ptr, src, t_ptr, t_col, t_perm, s_src, s_dst, s_edge,
                 h_src, alpha, negative_slope, dropout, seed, output_mask, message_dropout=0.0,
                 message_seed=None):
    """-> ``(grad_s_src, grad_s_dst, grad_s_edge, grad_h_src)``. See
    :func:`gat_pyg.kernels.triton.attend_kernel.gat_backward`."""
    return _module('attend_kernel').gat_backward(
        grad_out, grad_alpha, ptr, src, t_ptr, t_col, t_perm, s_src, s_dst, s_edge, h_src, alpha,
        negative_slope, dropout, seed, output_mask, message_dropout, message_seed)


def gatv2_forward(ptr, src, t_ptr, t_col, t_perm, x_l, x_r, att, edge_attr, w_edge, h_src,
                  negative_slope, dropout, seed, message_dropout=0.0, message_seed=None):
    """-> ``(out, alpha)``. See :func:`gat_pyg.kernels.triton.attend_kernel.gatv2_forward`."""
    return _module('attend_kernel').gatv2_forward(
        ptr, src, t_ptr, t_col, t_perm, x_l, x_r, att, edge_attr, w_edge, h_src, negative_slope,
        dropout, seed, message_dropout, message_seed)


def gatv2_backward(grad_out, grad_alpha, ptr, src, t_ptr, t_col, t_perm, x_l, x_r, att,
                   edge_attr, w_edge, h_src, alpha, negative_slope, dropout, seed, output_mask,
                   message_dropout=0.0, message_seed=None, merge_h_src=False):
    """-> ``(grad_x_l, grad_x_r, grad_att, grad_edge_attr, grad_w_edge, grad_h_src)``. See
    :func:`gat_pyg.kernels.triton.attend_kernel.gatv2_backward`."""
    return _module('attend_kernel').gatv2_backward(
        grad_out, grad_alpha, ptr, src, t_ptr, t_col, t_perm, x_l, x_r, att, edge_attr, w_edge,
        h_src, alpha, negative_slope, dropout, seed, output_mask, message_dropout, message_seed,
        merge_h_src)


def attention_dropout(alpha, dropout, seed):
    """-> ``alpha * keep / (1 - p)``. See
    :func:`gat_pyg.kernels.triton.dropout_kernel.attention_dropout`."""
    return _module('dropout_kernel').attention_dropout(alpha, dropout, seed)


def feature_dropout(x, dropout, seed):
    """-> ``x * keep / (1 - p)``. See
    :func:`gat_pyg.kernels.triton.dropout_kernel.feature_dropout`."""
    return _module('dropout_kernel').feature_dropout(x, dropout, seed)


def head_scores(x, att):
    """-> ``[N, H]``. See :func:`gat_pyg.kernels.triton.head_scores_kernel.head_scores`."""
    return _module('head_scores_kernel').head_scores(x, att)


def head_scores_backward(grad, x, att, output_mask):
    """-> ``(grad_x, grad_att)``. See
    :func:`gat_pyg.kernels.triton.head_scores_kernel.head_scores_backward`."""
    return _module('head_scores_kernel').head_scores_backward(grad, x, att, output_mask)


def kernels():
    """``{operator: (kernel, dtypes)}``, as :func:`gat_pyg.kernels.dispatch.use_backend` and
    :func:`~gat_pyg.kernels.dispatch.register_kernel` take them."""
    return {name: (globals()[name], DTYPES) for name in NAMES}

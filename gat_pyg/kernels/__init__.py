"""The operators every layer is built on, and their kernels per device (``torch.ops.gat_pyg``).

Operators (schemas, fake kernels, pure-torch references and autograd; one module each):

* :func:`gat_attention` / :func:`gatv2_attention` (:mod:`~gat_pyg.kernels.attend`): score,
  segment softmax, attention and message dropout and aggregation in one call;
* :func:`head_scores` (:mod:`~gat_pyg.kernels.head_scores`): GAT's per-node, per-head
  half-scores;
* :func:`feature_dropout` / :func:`sparse_dropout` (:mod:`~gat_pyg.kernels.dropout`): dropout
  of dense features and of a sparse tensor's stored entries;
* :func:`sparse_linear` (:mod:`~gat_pyg.kernels.sparse_linear`): the projection of sparse
  bag-of-words features.

Kernels (backends; :mod:`~gat_pyg.kernels.dispatch` says how one is chosen):

* ``native``: C++/OpenMP on the CPU (:mod:`~gat_pyg.kernels.native`; :func:`available` says
  whether it loaded, :func:`load_error` why not, ``GAT_PYG_NATIVE=0`` keeps it unloaded);
* ``csr``: pure torch on ``torch.sparse`` CSR products, for every device without a kernel
  (:mod:`~gat_pyg.kernels.csr`);
* ``triton``: Triton (:mod:`~gat_pyg.kernels.triton`), for CUDA when ``GAT_PYG_TRITON=1`` (not
  yet the default: it has not run on a GPU), and for CPU tensors too when ``TRITON_INTERPRET=1``
  is also set (Triton's interpreter: slow, for testing without a GPU).

:func:`kernel_for` and :func:`kernel_table` tell what runs where; the rest (other devices and
dtypes, function transforms, forward-mode AD) runs each operator's reference.
"""
import os

from gat_pyg.kernels import csr as _csr
from gat_pyg.kernels import native as _native
from gat_pyg.kernels import triton as _triton
from gat_pyg.kernels.attend import gat_attention, gatv2_attention
from gat_pyg.kernels.dispatch import (kernel_for, kernel_table, record_kernel, recording,
                                      reference_reason, register_kernel)
from gat_pyg.kernels.dispatch import use_backend as _use_backend
from gat_pyg.kernels.dropout import feature_dropout, sparse_dropout
from gat_pyg.kernels.head_scores import head_scores
from gat_pyg.kernels.native import available, instruction_set, load_error
from gat_pyg.kernels.sparse_linear import sparse_linear

BACKENDS = {_csr.BACKEND: _csr.kernels, _triton.BACKEND: _triton.kernels}
"""Backends whose Python kernels :func:`use_backend` can register for a device."""


def _register_triton() -> None:
    """``GAT_PYG_TRITON=1``: the Triton kernels serve CUDA, and with ``TRITON_INTERPRET=1`` the
    CPU as well (over the C++ kernels)."""
    if os.environ.get('GAT_PYG_TRITON') != '1':
        return
    why = _triton.unavailable_reason()
    if why is not None:
        raise RuntimeError(f'GAT_PYG_TRITON=1 asks for the Triton kernels, but {why}')
    devices = ['cuda'] + (['cpu'] if os.environ.get('TRITON_INTERPRET') == '1' else [])
    for device in devices:
        for name, (fn, dtypes) in _triton.kernels().items():
            register_kernel(name, device, _triton.BACKEND, fn, dtypes)


for _name, (_fn, _dtypes) in _csr.kernels().items():
    register_kernel(_name, '*', _csr.BACKEND, _fn, _dtypes)
_native.load()
_register_triton()


def use_backend(backend: str, device: str):
    """A context manager within which ``backend``'s Python kernels (``'csr'``, ``'triton'``)
    serve ``device`` (``'cpu'``, ``'cuda'``), over the kernels it had: e.g. to run the
    pure-torch CSR kernels on the CPU while the C++ library is loaded, or the Triton ones
    through Triton's interpreter (``TRITON_INTERPRET=1`` set before the first Triton call). Not
    thread-safe (for tests and comparisons).

    Raises:
        ValueError: an unknown backend.
    """
    if backend not in BACKENDS:
        raise ValueError(f'backend: expected one of {sorted(BACKENDS)}, got {backend!r}')
    return _use_backend(backend, device, BACKENDS[backend]())


__all__ = [
    'available',
    'load_error',
    'instruction_set',
    'kernel_for',
    'kernel_table',
    'use_backend',
    'recording',
    'reference_reason',
    'register_kernel',
    'record_kernel',
    'gat_attention',
    'gatv2_attention',
    'head_scores',
    'feature_dropout',
    'sparse_dropout',
    'sparse_linear',
]

"""The ``native`` backend: the C++/OpenMP CPU kernels, ``gat_pyg.kernels._C``.

The library is built with the package when a C++ compiler and torch are present at install
time (see ``setup.py``); importing it registers its kernels into the operators' schemas
(``TORCH_LIBRARY_IMPL(gat_pyg, CPU, ...)`` in ``cpu/<op>_kernel.cpp``), and :func:`load` records
them in :mod:`gat_pyg.kernels.dispatch`. Set ``GAT_PYG_NATIVE=0`` to leave it unloaded (the CPU
then runs the ``csr`` kernels and the references). Whether it loaded is logged once at debug
level on the ``gat_pyg.kernels`` logger; :func:`load_error` says why it did not.
"""
import importlib
import logging
import os
from typing import Optional

import torch

from gat_pyg.kernels.dispatch import record_kernel

log = logging.getLogger('gat_pyg.kernels')

BACKEND = 'native'
DTYPES = (torch.float32, torch.float64, torch.bfloat16)
KERNELS = {
    # operator -> dtypes its CPU kernel takes
    'gat_forward': DTYPES, 'gat_backward': DTYPES,
    'gatv2_forward': DTYPES, 'gatv2_backward': DTYPES,
    'head_scores': DTYPES, 'head_scores_backward': DTYPES,
    'attention_dropout': DTYPES, 'feature_dropout': DTYPES, 'sparse_dropout': DTYPES,
    'sparse_linear': DTYPES[:2], 'sparse_linear_backward': DTYPES[:2],
}

_LOAD_ERROR: Optional[str] = 'not loaded yet'


def load() -> None:
    """Loads the library (once) and records its kernels; afterwards :func:`load_error` is
    ``None`` or why it is unavailable."""
    global _LOAD_ERROR
    if _LOAD_ERROR != 'not loaded yet':
        return
    if os.environ.get('GAT_PYG_NATIVE') == '0':
        _LOAD_ERROR = 'disabled by GAT_PYG_NATIVE=0'
    else:
        try:
            # Loading registers the kernels. (A from-import would report a missing library as
            # a circular import of the partly initialised gat_pyg.kernels.)
            importlib.import_module('gat_pyg.kernels._C')
        except (ImportError, OSError, RuntimeError) as error:
            # ImportError: not built. OSError / RuntimeError: built against another torch.
            _LOAD_ERROR = f'{type(error).__name__}: {error}'
        else:
            _LOAD_ERROR = None
            for name, dtypes in KERNELS.items():
                record_kernel(name, 'cpu', BACKEND, dtypes, autograd=_registers_autograd(name))
    if _LOAD_ERROR is None:
        log.debug('gat_pyg native kernels loaded (%s)', instruction_set())
    else:
        log.debug('gat_pyg native kernels not available: %s', _LOAD_ERROR)


def _registers_autograd(name: str) -> bool:
    """Whether the library registered operator ``name``'s autograd for CPU tensors (C++, the
    AutogradCPU key, next to its kernel): then eager calls that need gradients run it instead
    of the Python autograd function. Asked of the dispatcher, so that this cannot drift from
    the C++ registrations (a private but long-standing torch function, which torch.library
    uses itself; a test pins the answer)."""
    return torch._C._dispatch_has_kernel_for_dispatch_key(f'gat_pyg::{name}', 'AutogradCPU')


def available() -> bool:
    """Whether the C++ library is built, importable and loaded."""
    return _LOAD_ERROR is None


def load_error() -> Optional[str]:
    """Why the C++ library is not available (``None`` when it is)."""
    return _LOAD_ERROR


def instruction_set() -> Optional[str]:
    """The instruction set the C++ kernels run with ('base', 'avx2' or 'avx512', chosen from the
    CPU; ``GAT_PYG_ISA`` caps it), or None when the library is not loaded."""
    if not available():
        return None
    return importlib.import_module('gat_pyg.kernels._C').instruction_set()

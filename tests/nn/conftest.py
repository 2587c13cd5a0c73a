"""The three routes of a layer, as one fixture: ``fast_path`` is ``'plain'`` (PyG's
``propagate``), ``'csr'`` (the pure-torch ``torch.sparse`` CSR kernels, registered over the C++
ones for the CPU while the test runs) or ``'native'`` (the C++ kernels), and the test receives
the layer's ``fast_path`` argument.

Parametrise with ``reference.FAST`` (indirect). Without the native library the ``'native'``
cases skip, saying why, unless ``GAT_PYG_EXPECT_NATIVE=1`` (CI builds the library and sets it),
which makes them fail.
"""
import pytest

from gat_pyg import kernels
from reference import require_native


@pytest.fixture
def fast_path(request):
    path = getattr(request, 'param', 'native')
    if path == 'plain':
        yield False
    elif path == 'csr':
        with kernels.use_backend('csr', 'cpu'):
            yield True
    else:
        require_native()
        yield True

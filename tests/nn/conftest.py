"""The three implementations of a layer, as one fixture: ``fast_path`` is ``'plain'`` (PyG's
``propagate``), ``'fused'`` (the pure-torch CSR path, with the native kernels hidden) or
``'native'`` (the C++ kernels), and the test receives the layer's ``fast_path`` argument.

Parametrise with ``reference.PATHS`` (indirect). Without the native library the ``'native'``
cases skip, saying why, unless ``GAT_PYG_EXPECT_NATIVE=1`` (CI builds the library and sets it),
which makes them fail.
"""
import pytest

from gat_pyg import kernels
from reference import require_native


@pytest.fixture
def fast_path(request, monkeypatch):
    path = getattr(request, 'param', 'native')
    if path == 'plain':
        return False
    if path == 'fused':
        monkeypatch.setattr(kernels, 'available', lambda: False)
        return True
    require_native()
    return True

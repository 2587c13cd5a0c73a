"""The kernel tests need the native library. Without it they skip, saying why; with
``GAT_PYG_EXPECT_NATIVE=1`` (CI, after building it) they fail instead, so a broken build cannot
pass silently. Tests marked ``without_native`` run either way.
"""
import os

import pytest

from gat_pyg import kernels

EXPECT_NATIVE = os.environ.get('GAT_PYG_EXPECT_NATIVE') == '1'


def pytest_configure(config):
    config.addinivalue_line('markers',
                            'without_native: a kernel test that does not need the native library')


@pytest.fixture(autouse=True)
def _native_library(request):
    if request.node.get_closest_marker('without_native') or kernels.available():
        return
    reason = f'gat_pyg native kernels not available: {kernels.load_error()}'
    if EXPECT_NATIVE:
        pytest.fail(f'{reason} (GAT_PYG_EXPECT_NATIVE=1 expects them built)')
    pytest.skip(reason)

"""Test-session setup shared by every test.

``GAT_PYG_WITHOUT_SCATTER=1`` hides torch_scatter before PyG is imported, so the suite can be run
once with and once without it (PyG picks its scatter/segment backend at import time).
"""
import os
import sys

if os.environ.get('GAT_PYG_WITHOUT_SCATTER') == '1':
    class _HideTorchScatter:
        def find_spec(self, name, path=None, target=None):
            if name == 'torch_scatter' or name.startswith('torch_scatter.'):
                raise ImportError('torch_scatter hidden by GAT_PYG_WITHOUT_SCATTER=1')
            return None

    sys.meta_path.insert(0, _HideTorchScatter())

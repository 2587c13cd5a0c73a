"""Runs the layer tests again in a child process without torch_scatter and without the native
kernels: the package as installed on a machine with neither.

PyG uses torch_scatter's segment kernels for the softmax when it is importable and torch's own
ops otherwise, and the layers pick the native kernels when they are loaded and the csr
kernels (pure torch) otherwise; every one of these must give the same numbers, so both set-ups are
tested in every run.
"""
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get('GAT_PYG_WITHOUT_SCATTER') == '1',
                    reason='already the run without torch_scatter')
def test_layers_without_torch_scatter_and_native_kernels():
    env = dict(os.environ, GAT_PYG_WITHOUT_SCATTER='1', GAT_PYG_NATIVE='0')
    env.pop('GAT_PYG_EXPECT_NATIVE', None)       # the child runs without them on purpose
    probe = subprocess.run(
        [sys.executable, '-c', 'import conftest, torch_geometric.typing as t, gat_pyg.kernels '
         'as k; print(t.WITH_TORCH_SCATTER, k.available())'], cwd=ROOT, env=env,
        capture_output=True, text=True)
    assert probe.stdout.strip() == 'False False', probe.stderr
    result = subprocess.run(
        [sys.executable, '-m', 'pytest', '-q', '-p', 'no:cacheprovider', 'tests/nn'],
        cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]

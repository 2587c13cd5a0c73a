"""Runs the layer tests again in a child process with torch_scatter hidden.

PyG uses torch_scatter's segment kernels for the softmax when it is importable and torch's own
ops otherwise; both code paths must give the same numbers, so both are tested in every run.
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
def test_layers_without_torch_scatter():
    env = dict(os.environ, GAT_PYG_WITHOUT_SCATTER='1')
    probe = subprocess.run(
        [sys.executable, '-c', 'import conftest, torch_geometric.typing as t; '
         'print(t.WITH_TORCH_SCATTER)'], cwd=ROOT, env=env, capture_output=True, text=True)
    assert probe.stdout.strip() == 'False', probe.stderr
    result = subprocess.run(
        [sys.executable, '-m', 'pytest', '-q', '-p', 'no:cacheprovider', 'tests/nn'],
        cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]

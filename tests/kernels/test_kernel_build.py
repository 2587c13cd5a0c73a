"""Without the native library the package still builds, imports, says so and computes (the CPU then
runs the csr kernels): GAT_PYG_NATIVE=0, GAT_PYG_NO_EXTENSION=1, no working compiler, a failing
compilation."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.without_native

PROBE = '''
import logging
logging.basicConfig(level=logging.DEBUG, format='%(name)s %(message)s')
import gat_pyg.kernels as k
import torch
print('available', k.available())
print('why:', k.load_error())
print('attention runs', k.kernel_for('gat_forward', 'cpu', torch.float32))
graph = (torch.tensor([0, 1]), torch.tensor([0]), None, None, None)
out, alpha = k.gat_attention(*graph, torch.zeros(1, 1), None, None, torch.full((1, 1, 1), 3.0))
print('computed', out.item(), alpha.item())
'''


def probe(root: Path, **env) -> subprocess.CompletedProcess:
    child_env = {key: value for key, value in os.environ.items() if key != 'GAT_PYG_NATIVE'}
    child_env.update(PYTHONPATH=str(root), **env)
    return subprocess.run([sys.executable, '-c', PROBE], cwd=root, env=child_env,
                          capture_output=True, text=True, timeout=300)


def test_native_disabled_by_environment_variable():
    result = probe(ROOT, GAT_PYG_NATIVE='0')
    assert result.returncode == 0, result.stderr
    assert 'available False' in result.stdout
    assert 'why: disabled by GAT_PYG_NATIVE=0' in result.stdout
    assert 'attention runs csr' in result.stdout and 'computed 3.0 1.0' in result.stdout
    assert 'gat_pyg.kernels gat_pyg native kernels not available' in result.stderr


@pytest.fixture
def source_tree(tmp_path) -> Path:
    """A copy of the sources without any built library."""
    for name in ('setup.py', 'pyproject.toml', 'README.md', 'LICENSE'):
        shutil.copy(ROOT / name, tmp_path / name)
    shutil.copytree(ROOT / 'gat_pyg', tmp_path / 'gat_pyg',
                    ignore=shutil.ignore_patterns('*.so', '__pycache__'))
    return tmp_path


def build_in_place(tree: Path, **env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, 'setup.py', 'build_ext', '--inplace'], cwd=tree,
                          env=dict(os.environ, MAX_JOBS='1', **env), capture_output=True,
                          text=True, timeout=600)


@pytest.mark.slow
@pytest.mark.parametrize('env,reason', [
    (dict(GAT_PYG_NO_EXTENSION='1'), 'GAT_PYG_NO_EXTENSION=1'),
    (dict(CXX='/bin/false'), "no working C++ compiler: '/bin/false'"),
])
def test_build_skips_the_extension_and_the_package_works(source_tree, env, reason):
    result = build_in_place(source_tree, **env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert f'gat_pyg: native kernels skipped ({reason})' in result.stderr
    assert not list(source_tree.glob('gat_pyg/kernels/_C*'))
    imported = probe(source_tree)
    assert imported.returncode == 0, imported.stderr
    assert 'available False' in imported.stdout
    assert "why: ModuleNotFoundError: No module named 'gat_pyg.kernels._C'" in imported.stdout
    assert 'computed 3.0 1.0' in imported.stdout


@pytest.mark.slow
def test_a_failing_compilation_skips_the_extension(source_tree, tmp_path_factory):
    """A compiler that works on a probe but fails on our sources (a broken toolchain, missing
    headers): the installation still succeeds, without the library."""
    bin_dir = tmp_path_factory.mktemp('bin')
    compiler = bin_dir / 'c++'
    compiler.write_text('#!/bin/sh\ncase "$*" in *gat_pyg*) echo "broken" >&2; exit 1;; esac\n'
                        f'exec {shutil.which("c++")} "$@"\n')
    compiler.chmod(0o755)
    result = build_in_place(source_tree, CXX=str(compiler))
    assert result.returncode == 0, result.stderr[-2000:]
    assert 'gat_pyg: native kernels skipped (building gat_pyg.kernels._C failed' in result.stderr
    assert not list(source_tree.glob('gat_pyg/kernels/_C*'))

"""Builds the optional native kernels, ``gat_pyg.kernels._C``; everything else is in pyproject.toml.

The extension is compiled against the torch found at build time, so install torch first and
build without isolation (``pip install --no-build-isolation -e .``; for development
``python setup.py build_ext --inplace``). It is skipped, with one line saying why, when torch is
not importable, when no C++ compiler works, when compiling fails, or when
``GAT_PYG_NO_EXTENSION=1``: the package then installs as pure Python and uses its torch code
paths (``gat_pyg.kernels.available()`` is False).
"""
import os
import shutil
import subprocess
import sys
import tempfile

from setuptools import setup

# The CPU kernels, one file per operator (gat_pyg/kernels/cpu/<op>_kernel.cpp, each
# registering its operators and their autograd), the shared checks, autograd helpers and the
# module.
CPU = 'gat_pyg/kernels/cpu/'
SOURCES = [CPU + name for name in ('autograd.cpp', 'common.cpp', 'module.cpp',
                                   'dropout_kernel.cpp', 'gat_kernel.cpp', 'gatv2_kernel.cpp',
                                   'head_scores_kernel.cpp', 'sparse_linear_kernel.cpp')]
SKIPPED = 'gat_pyg: native kernels skipped ({}); installing the pure-Python package'


def _skip(reason: str) -> dict:
    print(SKIPPED.format(reason), file=sys.stderr)
    return {}


def _compiler_works(compiler: str) -> bool:
    """Whether ``compiler`` turns a trivial C++ file into an object file."""
    if shutil.which(compiler.split()[0]) is None:
        return False
    with tempfile.TemporaryDirectory() as tmp:
        source = os.path.join(tmp, 'probe.cpp')
        with open(source, 'w') as f:
            f.write('int main() { return 0; }\n')
        try:
            result = subprocess.run(compiler.split() + ['-c', source, '-o',
                                                        os.path.join(tmp, 'probe.o')],
                                    capture_output=True, timeout=120)
        except (OSError, subprocess.SubprocessError):
            return False
        return result.returncode == 0


def _extension_args() -> dict:
    if os.environ.get('GAT_PYG_NO_EXTENSION') == '1':
        return _skip('GAT_PYG_NO_EXTENSION=1')
    try:
        from torch.utils.cpp_extension import BuildExtension, CppExtension
    except ImportError:
        return _skip('torch is not importable at build time; install torch first and build '
                     'with --no-build-isolation')
    compiler = os.environ.get('CXX', 'c++')
    if not _compiler_works(compiler):
        return _skip(f'no working C++ compiler: {compiler!r}')

    class OptionalBuildExtension(BuildExtension):
        """A failed compilation skips the extension instead of failing the installation."""

        def build_extensions(self):
            try:
                super().build_extensions()
            except Exception as error:   # noqa: BLE001 - any failure means "no extension"
                _skip(f'building gat_pyg.kernels._C failed: '
                      f'{str(error).splitlines()[0][:200]}')
                # Nothing left to copy in place or to put in the wheel.
                self.extensions = []

    # at::parallel_for is an inline OpenMP loop, so it needs -fopenmp here; the OpenMP runtime
    # is the one torch already loaded (not linked again, as torch_scatter does).
    # -fno-trapping-math changes no result; without it GCC will not turn the LeakyReLU selects
    # of the per-edge loops into vector blends (it keeps a branch per element).
    # -ffp-contract=fast lets the AVX2 / AVX-512 versions (cpu/simd.h) fuse a * b + c into
    # one FMA (rounded once), as GCC does by default outside ISO modes.
    extension = CppExtension(
        'gat_pyg.kernels._C', SOURCES,
        extra_compile_args={'cxx': ['-O3', '-fopenmp', '-fno-trapping-math', '-ffp-contract=fast',
                                   '-Wno-psabi', '-g0']},
        depends=[CPU + name for name in ('attend.h', 'autograd.h', 'common.h', 'simd.h')])
    return {'ext_modules': [extension],
            'cmdclass': {'build_ext': OptionalBuildExtension.with_options(use_ninja=True)}}


setup(**_extension_args())

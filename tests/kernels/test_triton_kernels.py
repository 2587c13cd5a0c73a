"""The Triton kernels (``gat_pyg.kernels.triton``) against the C++ operators, on the CPU.

What is checked: for every case of ``triton_cases.CASES`` (GAT and GATv2 forward and every
backward output, heads 1/2/8/12/16, channels 1/2/3/5/8/16/64, edge scores and edge features,
attention and message dropout, ``grad_alpha``, partial ``output_mask``, ``merge_h_src``, self-loops,
isolated targets and sources, duplicate edges, rows longer than a block, several rows per
program, bipartite graphs, graphs without edges or nodes, int32 and int64 indices, float32 and
float64; head scores; attention and feature dropout) the Triton result equals
``torch.ops.gat_pyg``'s: float32 to 1e-5, float64 to 1e-12, dropout masks and masked values
bit for bit. Misuse (dtypes, shapes, index contents, a missing or wrong transposed order,
dropout arguments) raises a RuntimeError before any kernel runs, as the C++ operators do.
Registered as the operators' kernels for the CPU (``gat_pyg.kernels.dispatch.use_backend``, in
the worker: what ``GAT_PYG_TRITON=1`` does for CUDA), the functions serve the package's
functions and autograd unchanged, and GATConv / GATv2Conv on them equal PyG's layers. The plain-torch reference
(``gat_pyg.kernels.reference``, which the GPU check compares against) is held to the
C++ operators on the same cases. A second worker compiles every kernel variant for NVIDIA GPUs
(sm_90) without one, so that a kernel the interpreter accepts but the compiler would
not is caught here too. Without Triton, the package still imports and says why it cannot run.

Why a worker process. Triton decides at ``@triton.jit`` time, i.e. when a kernel module is
imported, whether its kernels are interpreted (``TRITON_INTERPRET=1``) or compiled. Setting the
variable in this process would be too late if anything in the session imported the kernel
modules first (and would change how every later-imported Triton kernel of the session runs).
So one subprocess, started with ``TRITON_INTERPRET=1``, runs all cases through the interpreter
and saves its results; the tests here rebuild each case's inputs (deterministic in the case)
and compare one case each. bfloat16 / float16 are not interpreted (no bfloat16 arithmetic in
the interpreter); they are compiled here and checked on a GPU by ``scripts/gpu_check.sh``.
"""
import importlib.util
import json
import os
import re
import subprocess
import sys

import pytest
import torch

import gat_pyg.kernels  # noqa: F401  (loads the C++ operators, torch.ops.gat_pyg)
import triton_cases
from triton_cases import BY_NAME, CASE_NAMES, error_cases, run

ops = torch.ops.gat_pyg
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HAS_TRITON = importlib.util.find_spec('triton') is not None
# Without triton these tests skip; with GAT_PYG_EXPECT_TRITON=1 (CI, after installing the gpu
# extra) they fail instead, as GAT_PYG_EXPECT_NATIVE=1 does for the native library.
EXPECT_TRITON = os.environ.get('GAT_PYG_EXPECT_TRITON') == '1'


def _no_triton():
    if EXPECT_TRITON:
        pytest.fail('triton is not installed (GAT_PYG_EXPECT_TRITON=1 expects it)')
    pytest.skip('triton is not installed')


needs_triton = pytest.mark.skipif(not HAS_TRITON and not EXPECT_TRITON,
                                  reason='triton is not installed')
EXACT_KINDS = ('mask_gat', 'mask_gatv2', 'dropout')


def _worker(mode: str, path, timeout: int = 600) -> None:
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join([ROOT] + [p for p in [env.get('PYTHONPATH')] if p])
    if mode == 'interpret':
        env['TRITON_INTERPRET'] = '1'
    else:
        env.pop('TRITON_INTERPRET', None)
    proc = subprocess.run([sys.executable, triton_cases.__file__, mode, str(path)], env=env,
                          capture_output=True, text=True, timeout=timeout)
    if proc.returncode:
        pytest.fail(f'the {mode} worker failed:\n{proc.stdout}\n{proc.stderr}')


@pytest.fixture(scope='module')
def interpreted(tmp_path_factory):
    if not HAS_TRITON:
        _no_triton()
    path = tmp_path_factory.mktemp('triton') / 'interpreted.pt'
    _worker('interpret', path)
    return torch.load(path)


def _compare(case, got, want):
    assert len(got) == len(want)
    tol = 1e-12 if case['dtype'] == torch.float64 else 1e-5
    for k, (a, b) in enumerate(zip(got, want)):
        assert a.shape == b.shape and a.dtype == b.dtype, (k, a.shape, b.shape)
        if case['kind'] in EXACT_KINDS:
            assert torch.equal(a, b), f'result {k} differs'
        else:
            torch.testing.assert_close(a, b, atol=tol, rtol=tol, msg=lambda m: f'result {k}: {m}')


def _not_trivial(case, want):
    """The case tests something: its outputs are not all zero where edges exist, and its
    dropout masks keep some values and drop others."""
    kind = case['kind']
    if kind in ('gat', 'gatv2') and case['graph'] not in ('no_edges', 'no_nodes'):
        assert want[1].abs().sum() > 0
        assert (want[0].abs().sum() > 0) == (case.get('p', 0.0) < 1)   # p = 1 drops all
        assert any(g.numel() and g.abs().sum() > 0 for g in want[2:])
    if kind in ('mask_gat', 'mask_gatv2'):
        kept = want[0].ne(0).double().mean()
        assert 0 < kept < 1
        assert want[1].eq(1).all()          # one edge per target
    if kind == 'scores' and case['nodes']:
        assert want[0].abs().sum() > 0


@needs_triton
@pytest.mark.parametrize('name', CASE_NAMES)
def test_interpreted_kernels_equal_the_cpp_operators(interpreted, name):
    case = BY_NAME[name]
    result = interpreted[name]
    assert 'error' not in result, result.get('error')
    want = run(case, ops)
    _not_trivial(case, want)
    _compare(case, result['outputs'], want)


@needs_triton
@pytest.mark.parametrize('name,call,pattern', error_cases(), ids=[c[0] for c in error_cases()])
def test_misuse_raises_runtime_errors_as_the_cpp_operators_do(interpreted, name, call, pattern):
    result = interpreted[f'error:{name}']
    assert result['raised'] == 'RuntimeError', result
    assert re.search(pattern, result['message']), result['message']
    with pytest.raises(RuntimeError):
        call(ops)


@needs_triton
def test_registered_as_the_operators_kernels_through_autograd_and_wrappers(interpreted):
    """In the worker, the Triton functions were registered as the operators' CPU kernels
    (use_backend, as GAT_PYG_TRITON=1 registers them for CUDA): the package's functions and the
    operators' autograd then reach every operator and give the C++ kernels' results, and the
    layers on them equal PyG's (checked in the worker)."""
    result = interpreted['dispatch']
    assert 'error' not in result, result.get('error')
    assert result['called'] == sorted(triton_cases.OPERATORS)
    # 18 tensors of the functions, then 2 x (output, attention, 8 or 9 gradients) of the layers.
    assert len(result['before']) == len(result['after']) == 37
    for k, (a, b) in enumerate(zip(result['after'], result['before'])):
        torch.testing.assert_close(a, b, atol=1e-12, rtol=1e-12, msg=lambda m: f'{k}: {m}')


@pytest.mark.parametrize('name', CASE_NAMES)
def test_reference_equals_the_cpp_operators(name):
    from gat_pyg.kernels import reference
    case = BY_NAME[name]
    got, want = run(case, reference), run(case, ops)
    if case['kind'] in EXACT_KINDS:
        _compare(case, got, want)
        return
    # The reference rounds in another order (PyG's), and builds E x H x C products.
    tol = 1e-10 if case['dtype'] == torch.float64 else 2e-5
    assert len(got) == len(want)
    for k, (a, b) in enumerate(zip(got, want)):
        assert a.shape == b.shape, (k, a.shape, b.shape)
        torch.testing.assert_close(a, b, atol=tol, rtol=tol, msg=lambda m: f'result {k}: {m}')


def test_reference_masks_equal_the_cpp_operators_on_larger_tensors():
    from gat_pyg.kernels import reference
    x = torch.randn(301, 67)
    for p, seed in ((0.25, 3), (0.6, -(2**40) - 5)):
        s = torch.tensor(seed)
        assert torch.equal(reference.feature_dropout(x, p, s), ops.feature_dropout(x, p, s))
        assert torch.equal(reference.attention_dropout(x, p, s), ops.attention_dropout(x, p, s))


@needs_triton
def test_kernels_compile_for_nvidia_gpus(tmp_path):
    """Every kernel variant the cases launch (float32 cases also in bfloat16, a few in float16)
    compiles to a cubin for sm_90 (H100 / H200); nothing is run."""
    if not HAS_TRITON:
        _no_triton()
    for arch in ('90', ):
        os.environ['GAT_PYG_COMPILE_ARCH'] = arch
        try:
            _worker('compile', tmp_path / f'compiled{arch}.json')
        finally:
            os.environ.pop('GAT_PYG_COMPILE_ARCH', None)
        with open(tmp_path / f'compiled{arch}.json') as f:
            report = json.load(f)
        if report['setup_error']:
            pytest.skip('cannot compile without a GPU with this Triton: '
                        + report['setup_error'].strip().splitlines()[-1])
        assert not report['errors'], '\n'.join(f'{k}:\n{v}' for k, v in report['errors'].items())
        assert set(report['compiled']) >= {
            '_forward_kernel', '_backward_rows_kernel', '_backward_sources_kernel',
            '_sum_partials_kernel', '_dropout_kernel', '_scores_kernel',
            '_scores_backward_kernel'}


@pytest.mark.without_native
def test_package_imports_and_says_why_without_triton(monkeypatch):
    import importlib

    import gat_pyg.kernels as kernels_package
    monkeypatch.setattr(kernels_package, 'triton', getattr(kernels_package, 'triton', None),
                        raising=False)
    for name in [n for n in sys.modules if n.startswith('gat_pyg.kernels.triton')]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, 'triton', None)      # import triton -> ImportError
    package = importlib.import_module('gat_pyg.kernels.triton')
    assert not package.available()
    assert 'triton is not importable' in package.unavailable_reason()
    assert 'gpu' in package.unavailable_reason()
    x = torch.randn(4, 2, 3)
    with pytest.raises(package.TritonUnavailableError, match='the Triton kernels need triton'):
        package.head_scores(x, torch.randn(2, 3))
    assert issubclass(package.TritonUnavailableError, RuntimeError)
    # The reference needs no Triton.
    from gat_pyg.kernels import reference
    torch.testing.assert_close(reference.head_scores(x, torch.ones(2, 3)), x.sum(-1))

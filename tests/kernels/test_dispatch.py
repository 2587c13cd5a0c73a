"""Which implementation each operator runs, pinned: eager code, inference mode, torch.compile
(fullgraph), torch.func.vmap, torch.jit.trace and forward-mode AD, on the CPU and (skipped
without one) on CUDA; the kernel table; use_backend; the schemas exist without the C++ library.

A kernel call shows as the operator itself (``gat_pyg::gat_forward``) to a dispatch mode and in a
compiled graph; the reference shows as torch's own operations instead.
"""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from gat_pyg import kernels
from gat_pyg.models import GAT, GATv2

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.without_native

FORWARD = ('gat_forward', 'gatv2_forward', 'head_scores', 'feature_dropout',
           'attention_dropout', 'sparse_dropout', 'sparse_linear')


class OperatorsSeen(TorchDispatchMode):
    """The package's operators a call dispatches (a kernel shows as its operator)."""

    def __init__(self):
        super().__init__()
        self.names = set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func.namespace == 'gat_pyg':
            self.names.add(func.__name__.split('.')[0])
        return func(*args, **(kwargs or {}))


def model_and_inputs(kind='gat', device='cpu'):
    torch.manual_seed(0)
    model = {'gat': GAT, 'gatv2': GATv2}[kind](12, 4, 3, heads=2, dropout=0.5, attn_dropout=0.5,
                                               message_dropout=0.5)
    x = (torch.rand(20, 12) * (torch.rand(20, 12) < 0.3)).to_sparse().to(device)
    edge_index = torch.randint(0, 20, (2, 60)).to(device)
    return model.to(device), x, edge_index


def native_expected() -> bool:
    return kernels.available()


@pytest.mark.parametrize('kind', ['gat', 'gatv2'])
def test_eager_training_step_runs_every_kernel(kind):
    if not native_expected():
        pytest.skip(f'native kernels not available: {kernels.load_error()}')
    model, x, edge_index = model_and_inputs(kind)
    with OperatorsSeen() as seen:
        model(x, edge_index).sum().backward()
    expected = {'sparse_dropout', 'sparse_linear', 'feature_dropout', f'{kind}_forward',
                f'{kind}_backward', 'sparse_linear_backward'}
    if kind == 'gat':
        expected |= {'head_scores', 'head_scores_backward'}
    assert expected <= seen.names, seen.names
    for name in expected:
        assert kernels.kernel_for(name, 'cpu', torch.float32) == 'native'


def test_inference_mode_runs_the_kernels():
    if not native_expected():
        pytest.skip(f'native kernels not available: {kernels.load_error()}')
    model, x, edge_index = model_and_inputs()
    model.eval()
    with torch.inference_mode(), OperatorsSeen() as seen:
        model(x, edge_index)
    assert {'sparse_linear', 'head_scores', 'gat_forward'} <= seen.names
    assert not any(name.endswith('_backward') for name in seen.names)


@pytest.mark.parametrize('transform', ['vmap', 'jit.trace', 'forward AD'])
def test_transforms_run_the_references(transform):
    """Under vmap, jit.trace and forward-mode AD no kernel runs: every operator takes its
    reference, which those understand."""
    model, _, edge_index = model_and_inputs()
    model.eval()
    x = torch.randn(20, 12)
    with OperatorsSeen() as seen:
        if transform == 'vmap':
            out = torch.func.vmap(lambda t: model(t, edge_index))(x.expand(2, 20, 12))
        elif transform == 'jit.trace':
            traced = torch.jit.trace(model, (x, edge_index), check_trace=False)
        else:
            with torch.autograd.forward_ad.dual_level():
                dual = torch.autograd.forward_ad.make_dual(x, torch.ones_like(x))
                out = torch.autograd.forward_ad.unpack_dual(model(dual, edge_index)).tangent
    assert seen.names == set(), seen.names
    if transform == 'jit.trace':
        assert 'gat_pyg::' not in str(traced.graph)
        out = traced(x, edge_index)
    assert torch.isfinite(out).all()


def test_compile_fullgraph_traces_the_kernels_as_operators():
    """torch.compile takes the eager route: the kernels appear in the graph as operators
    (fullgraph, training mode with every dropout on)."""
    if not native_expected():
        pytest.skip(f'native kernels not available: {kernels.load_error()}')
    torch._dynamo.reset()
    model, x, edge_index = model_and_inputs()
    graphs = []

    def backend(gm, example_inputs):
        graphs.append(gm)
        return gm.forward

    compiled = torch.compile(model, fullgraph=True, backend=backend)
    compiled(x.to_dense(), edge_index).sum().backward()
    # The kernels' calls sit in the bodies of their autograd functions (submodules).
    code = '\n'.join(m.code for gm in graphs for m in gm.modules()
                     if isinstance(m, torch.fx.GraphModule))
    for name in ('gat_forward', 'head_scores', 'feature_dropout'):
        assert f'gat_pyg.{name}' in code, name


def test_kernel_table_and_use_backend():
    table = kernels.kernel_table()
    # The csr backend serves every device for the attention and the sparse projection; the
    # node scores and the dropouts have no csr kernel (their reference runs without the C++
    # library), so without it they are not in the table at all.
    with_csr = {'gat_forward', 'gatv2_forward', 'sparse_linear'}
    assert {name for name in table if '*' in table[name]} == with_csr
    assert all(table[name]['*'] == 'csr (float32, float64)' for name in with_csr)
    if native_expected():
        assert set(table) == set(FORWARD)
        assert all(table[name]['cpu'].startswith('native (float32, float64') for name in FORWARD)
        assert table['gat_forward']['cpu'] == 'native (float32, float64, bfloat16)'
    elif not kernels.available():
        assert set(table) == with_csr
    with kernels.use_backend('csr', 'cpu'):
        assert kernels.kernel_for('gat_forward', 'cpu', torch.float32) == 'csr'
        assert kernels.kernel_for('gat_forward', 'cpu', torch.bfloat16) is None   # reference
    assert kernels.kernel_for('gat_forward', 'cpu', torch.float32) == \
        ('native' if native_expected() else 'csr')
    assert kernels.kernel_for('gat_forward', 'meta', torch.float32) == 'csr'
    with pytest.raises(ValueError, match="backend: expected one of"):
        kernels.use_backend('cuda-magic', 'cpu')


def test_the_schemas_exist_without_the_native_library():
    """The operators are defined in Python, so another backend can register kernels into them
    when the C++ library is not built."""
    code = ('import torch, gat_pyg.kernels as k\n'
            'print(k.available(), hasattr(torch.ops.gat_pyg, "gat_forward"), '
            'k.kernel_for("gat_forward", "cpu", torch.float32))')
    env = dict(os.environ, GAT_PYG_NATIVE='0', PYTHONPATH=str(ROOT))
    result = subprocess.run([sys.executable, '-c', code], env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.stdout.split() == ['False', 'True', 'csr'], result.stderr


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA device')
def test_cuda_without_a_cuda_kernel_runs_the_csr_kernels():
    model, x, edge_index = model_and_inputs(device='cuda')
    backend = kernels.kernel_for('gat_forward', 'cuda', torch.float32)
    assert backend in ('csr', 'triton')
    with OperatorsSeen() as seen:
        model(x, edge_index).sum().backward()
    assert 'gat_forward' in seen.names

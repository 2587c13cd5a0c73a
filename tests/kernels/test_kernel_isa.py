"""The kernels are compiled for three instruction sets (baseline x86-64, AVX2, AVX-512) and run
the widest the CPU has; GAT_PYG_ISA caps the choice. Each version must compute the formula:
a child process per instruction set checks the vectorised shapes against the reference."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gat_pyg import kernels

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]

CHILD = '''
import sys
import torch
sys.path.insert(0, {here!r})
from gat_pyg import kernels
from gat_pyg.kernels import gat_attention, gatv2_attention
from kernel_reference import gat_reference, gatv2_reference, random_edges, sorted_graph

print(kernels.instruction_set())
graph = sorted_graph(random_edges(70, 60, 500, seed=4), 70, 60)
gen = torch.Generator().manual_seed(0)

def randn(*shape):
    return torch.randn(*shape, generator=gen, dtype=torch.float64).requires_grad_()

def check(native, reference, inputs):
    narrow = [t.detach().float().requires_grad_() for t in inputs]
    torch.manual_seed(1)
    out, alpha = native(*narrow)
    keep = alpha.detach().ne(0).double()
    ref_out, ref_alpha = reference(*inputs, keep=keep)
    torch.testing.assert_close(out.double(), ref_out, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(alpha.double(), ref_alpha, atol=1e-5, rtol=1e-5)
    weight = torch.randn(out.shape, generator=gen, dtype=torch.float64)
    got = torch.autograd.grad((out.double() * weight).sum() + alpha.double().sum(), narrow)
    want = torch.autograd.grad((ref_out * weight).sum() + ref_alpha.sum(), inputs)
    for a, b in zip(got, want):
        torch.testing.assert_close(a.double(), b, atol=1e-4, rtol=1e-4)

p = 0.3
for heads, channels in [(8, 8), (1, 7), (1, 8), (3, 5)]:
    n_src, n_dst, e = graph.num_src, graph.num_dst, graph.num_edges
    check(lambda *x: gat_attention(*graph.args(), *x, 0.2, p, True),
          lambda *x, keep: gat_reference(graph, *x, 0.2, keep, p),
          [randn(n_src, heads), randn(n_dst, heads), randn(e, heads),
           randn(n_src, heads, channels)])
    check(lambda *x: gatv2_attention(*graph.args(), *x, 0.2, p, True),
          lambda *x, keep: gatv2_reference(graph, *x, 0.2, keep, p),
          [randn(n_src, heads, channels), randn(n_dst, heads, channels), randn(heads, channels),
           randn(e, 3), randn(heads * channels, 3), randn(n_src, heads, channels)])
# The dropout masks are integer hashes: the same bits under every instruction set.
from kernel_reference import OPS as ops  # noqa: E402
keep_att = ops.attention_dropout(torch.ones(1000, 3), 0.3, torch.tensor(9)).ne(0)
keep_features = ops.feature_dropout(torch.ones(123, 17, dtype=torch.bfloat16), 0.6,
                                    torch.tensor(2)).ne(0)
signature = [int(k.nonzero().sum()) for k in (keep_att, keep_features)]
print('ok', *signature)
'''


MASKS = {}


@pytest.mark.parametrize('isa', ['base', 'avx2', 'avx512'])
def test_each_instruction_set_computes_the_formula(isa):
    env = dict(os.environ, GAT_PYG_ISA=isa, PYTHONPATH=str(ROOT), OMP_NUM_THREADS='1')
    result = subprocess.run([sys.executable, '-c', CHILD.format(here=str(HERE))], env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    ran, status, *signature = result.stdout.split()
    # The CPU may lack the wider sets: then the widest it has runs.
    order = ['base', 'avx2', 'avx512']
    assert order.index(ran) <= order.index(isa)
    assert status == 'ok'
    MASKS[isa] = signature
    assert all(other == signature for other in MASKS.values())


def test_instruction_set_names_the_running_version():
    assert kernels.instruction_set() in ('base', 'avx2', 'avx512')


def test_an_unknown_instruction_set_is_refused():
    env = dict(os.environ, GAT_PYG_ISA='sse9', PYTHONPATH=str(ROOT))
    code = 'from gat_pyg import kernels; kernels.instruction_set()'
    result = subprocess.run([sys.executable, '-c', code], env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode != 0
    assert 'GAT_PYG_ISA must be base, avx2 or avx512' in result.stderr

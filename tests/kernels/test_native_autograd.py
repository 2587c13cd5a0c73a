"""The native library's own autograd (C++, ``gat_pyg/kernels/cpu/autograd.h``) against the
Python autograd function that implements the same rule for the other backends: eager calls
record the C++ node, its gradients equal the Python function's bit for bit (they call the same
backward kernels), its recorded backward (``create_graph=True``) goes through
``gat_pyg::<op>_vjp`` and passes gradgradcheck, and ``strict`` refuses that by name."""
import pytest
import torch

from torch.utils._python_dispatch import TorchDispatchMode

from gat_pyg.kernels import dispatch
from gat_pyg.kernels.dispatch import operator
from kernel_reference import GRAPHS, sorted_graph

NATIVE_AUTOGRAD = ('gat_forward', 'gatv2_forward', 'head_scores', 'sparse_linear',
                   'attention_dropout', 'feature_dropout')


def randn(*shape, seed):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=gen, dtype=torch.float64).requires_grad_()


@pytest.fixture(scope='module')
def graph():
    return sorted_graph(*GRAPHS['more_targets'])   # bipartite, with isolated targets


def cases(graph):
    """``{operator: (differentiable inputs, arguments(*inputs))}``: every optional input given,
    every argument spelled out (as ``Operator.__call__`` completes them)."""
    g, h, c = graph, 2, 3
    seed, seed2 = torch.tensor(11), torch.tensor(12)
    row, col = torch.tensor([0, 0, 2, 3, 3]), torch.tensor([1, 4, 0, 2, 3])
    return {
        'gat_forward': (
            [randn(g.num_src, h, seed=1), randn(g.num_dst, h, seed=2),
             randn(g.num_edges, h, seed=3), randn(g.num_src, h, c, seed=4)],
            lambda *t: (*g.args(), *t, 0.2, 0.3, seed, 0.4, seed2)),
        'gatv2_forward': (
            [randn(g.num_src, h, c, seed=1), randn(g.num_dst, h, c, seed=2),
             randn(h, c, seed=3), randn(g.num_edges, 2, seed=4), randn(h * c, 2, seed=5),
             randn(g.num_src, h, c, seed=6)],
            lambda *t: (*g.args(), *t, 0.2, 0.3, seed, 0.4, seed2)),
        'head_scores': ([randn(5, h, c, seed=1), randn(h, c, seed=2)], lambda *t: t),
        'sparse_linear': ([randn(5, seed=1), randn(4, 6, seed=2)],
                          lambda *t: (row, col, *t, 5)),
        'attention_dropout': ([randn(7, h, seed=1)], lambda t: (t, 0.5, seed)),
        'feature_dropout': ([randn(5, 4, seed=1)], lambda t: (t, 0.5, seed)),
    }


def first(outputs):
    return outputs[0] if isinstance(outputs, tuple) else outputs


def loss(outputs):
    # Every output counts, each through a nonlinearity (so second derivatives are not zero).
    outputs = outputs if isinstance(outputs, tuple) else (outputs, )
    return sum((o.sin() * o).sum() for o in outputs)


def test_the_kernel_table_knows_which_operators_have_native_autograd():
    recorded = {name for name, kernels in dispatch._KERNELS.items()
                if kernels.get('cpu') is not None and kernels['cpu'].autograd}
    assert recorded == set(NATIVE_AUTOGRAD)


@pytest.mark.parametrize('name', NATIVE_AUTOGRAD)
def test_eager_calls_record_the_native_autograd_node(graph, name):
    inputs, arguments = cases(graph)[name]
    op = operator(name)
    assert first(op(*arguments(*inputs))).grad_fn.name().startswith('torch::autograd::CppNode')
    # The Python function (the other backends') is a different node.
    node = first(op._function.apply(None, *arguments(*inputs))).grad_fn
    assert node.name() == f'{name}_callBackward'


@pytest.mark.parametrize('name', NATIVE_AUTOGRAD)
def test_native_gradients_equal_the_python_functions_bit_for_bit(graph, name):
    inputs, arguments = cases(graph)[name]
    op = operator(name)
    native = torch.autograd.grad(loss(op(*arguments(*inputs))), inputs)
    python = torch.autograd.grad(loss(op._function.apply(None, *arguments(*inputs))), inputs)
    for a, b in zip(native, python):
        assert torch.equal(a, b)
    # retain_graph: a second backward of the same graph gives the same bits.
    outputs = op(*arguments(*inputs))
    once = torch.autograd.grad(loss(outputs), inputs, retain_graph=True)
    twice = torch.autograd.grad(loss(outputs), inputs)
    for a, b in zip(once, twice):
        assert torch.equal(a, b)


@pytest.mark.parametrize('name', NATIVE_AUTOGRAD)
def test_native_double_backward_equals_the_python_functions_and_gradgradchecks(graph, name):
    inputs, arguments = cases(graph)[name]
    op = operator(name)

    def hessian_vector(outputs):
        grads = torch.autograd.grad(loss(outputs), inputs, create_graph=True)
        return torch.autograd.grad(sum((g * g).sum() for g in grads), inputs)

    native = hessian_vector(op(*arguments(*inputs)))
    python = hessian_vector(op._function.apply(None, *arguments(*inputs)))
    for a, b in zip(native, python):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    assert torch.autograd.gradgradcheck(lambda *t: op(*arguments(*t)), inputs)


@pytest.mark.parametrize('name', ['gat_forward', 'gatv2_forward', 'head_scores',
                                  'sparse_linear'])
def test_a_recorded_backward_runs_the_reference_not_the_backward_kernel(graph, name):
    inputs, arguments = cases(graph)[name]
    outputs = operator(name)(*arguments(*inputs))
    seen = set()

    class Seen(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            seen.add(func.__name__.split('.')[0])
            return func(*args, **(kwargs or {}))

    with Seen():
        torch.autograd.grad(loss(outputs), inputs, retain_graph=True)
    backward = name.replace('_forward', '') + '_backward'
    assert backward in seen, seen
    seen.clear()
    with Seen():
        torch.autograd.grad(loss(outputs), inputs, create_graph=True)
    # gat_pyg::<op>_vjp is CompositeImplicitAutograd: a dispatch mode sees the torch
    # operations of the reference it runs.
    assert backward not in seen and 'mul' in seen, seen


@pytest.mark.parametrize('name', NATIVE_AUTOGRAD[:4])
def test_strict_calls_refuse_a_recorded_backward_by_name(graph, name):
    inputs, arguments = cases(graph)[name]
    outputs = operator(name)(*arguments(*inputs), strict='fast_path=True')
    assert first(outputs).grad_fn.name().startswith('torch::autograd::CppNode')
    torch.autograd.grad(loss(outputs), inputs, retain_graph=True)   # first order: fine
    with pytest.raises(ValueError, match=f'fast_path=True: the kernels of {name} compute '
                                         f'first derivatives only'):
        torch.autograd.grad(loss(outputs), inputs, create_graph=True)



@pytest.mark.parametrize('route', ['native', 'python function'])
def test_gatv2_shared_input_under_saved_tensor_hooks_that_copy(graph, route):
    """GATv2Conv passes one tensor as x_l and h_src, and backward then sums both gradients in
    one buffer. Saved-tensor hooks that copy (CPU offloading, compression) unpack two
    tensors: backward computes the two gradients apart instead (it refused before), and the
    result is the same."""
    inputs, arguments = cases(graph)['gatv2_forward']
    op = operator('gatv2_forward')
    x_l = inputs[0]

    def call():
        args = list(arguments(*inputs))
        args[10] = x_l   # h_src is x_l
        args[14:16] = [0.0, None]   # no message dropout (which gives h_src its own mask)
        return op(*args) if route == 'native' else op._function.apply(None, *args)

    expected = torch.autograd.grad(loss(call()), inputs[:5])
    with torch.autograd.graph.saved_tensors_hooks(lambda t: t.clone(), lambda t: t):
        outputs = call()
    got = torch.autograd.grad(loss(outputs), inputs[:5])
    for a, b in zip(expected, got):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)

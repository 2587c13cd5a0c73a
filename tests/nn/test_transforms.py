"""Function transforms and tracing on the default path, as PyG's layers allow: torch.func.vmap
over x, torch.func.grad / jacrev of functional_call, torch.jit.trace. (The fused paths step
aside while a transform or a trace is active; the values are those of the plain path.)"""
import warnings

import pytest
import torch
from torch.func import functional_call, grad, jacrev, vmap

from reference import KINDS, OURS, features, random_graph, randomize_parameters

EDGES = random_graph(7, 7, 18, seed=1)


def layer(kind):
    torch.manual_seed(0)
    conv = OURS[kind](4, 3, heads=2)
    randomize_parameters(conv, 2)
    return conv


@pytest.mark.parametrize('kind', KINDS)
def test_vmap_over_node_features(kind):
    """Issue: ``vmap(lambda x: GATConv(4, 2, heads=2)(x, ei))(torch.randn(3, 5, 4))`` failed
    ('autograd.Function ... must override the setup_context staticmethod')."""
    conv = layer(kind)
    xs = torch.stack([features(7, 4, seed=s) for s in range(3)])
    out = vmap(lambda x: conv(x, EDGES))(xs)
    torch.testing.assert_close(out, torch.stack([conv(x, EDGES) for x in xs]),
                               atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize('kind', KINDS)
def test_grad_and_jacrev_of_functional_call(kind):
    conv = layer(kind)
    x = features(7, 4, seed=3)
    params = {k: v.detach() for k, v in conv.named_parameters()}
    grads = grad(lambda p: functional_call(conv, p, (x, EDGES)).square().sum())(params)
    conv(x, EDGES).square().sum().backward()
    for name, p in conv.named_parameters():
        torch.testing.assert_close(grads[name], p.grad, atol=1e-5, rtol=1e-5, msg=name)
    jacobian = jacrev(lambda x_: conv(x_, EDGES))(x)           # [7, 6, 7, 4]
    assert jacobian.shape == (7, 6, 7, 4)
    x_leaf = x.clone().requires_grad_()
    conv(x_leaf, EDGES)[2, 1].backward()
    torch.testing.assert_close(jacobian[2, 1], x_leaf.grad, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize('kind', KINDS)
def test_jit_trace(kind):
    """Issue: ``torch.jit.trace(GATConv(8, 4, heads=2), (x, ei))`` failed with
    'unordered_map::at'. The trace also runs on a graph with another number of edges."""
    conv = layer(kind)
    x = features(7, 4, seed=4)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')      # TracerWarnings about Python-side size checks
        traced = torch.jit.trace(conv, (x, EDGES), check_trace=False)
        other = random_graph(7, 7, 25, seed=5)
        torch.testing.assert_close(traced(x, EDGES), conv(x, EDGES), atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(traced(x, other), conv(x, other), atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize('kind', KINDS)
def test_a_first_call_inside_nested_transforms_leaves_no_cache_behind(kind):
    """Issue: a layer whose first call happened inside hessian (jacfwd of jacrev) cached the
    transform's wrapped indices, and every later jacrev / jacfwd / grad failed with an INTERNAL
    ASSERT. Transforms neither read nor fill the cache."""
    conv = layer(kind).double()
    x = features(7, 4, seed=6).double()

    def loss(x_):
        return conv(x_, EDGES).square().sum()

    hessian = torch.func.hessian(loss)(x)
    assert conv.graph_cache._entry is None
    jacobian = torch.func.jacrev(lambda x_: conv(x_, EDGES))(x)
    gradient = torch.func.grad(loss)(x)
    leaf = x.clone().requires_grad_()
    loss(leaf).backward()
    torch.testing.assert_close(gradient, leaf.grad)
    torch.testing.assert_close(jacobian.sum((0, 1)), torch.autograd.functional.jacobian(
        lambda x_: conv(x_, EDGES), x).sum((0, 1)))
    assert conv.graph_cache._entry is not None        # the eager call filled it
    torch.testing.assert_close(hessian, torch.autograd.functional.hessian(loss, x))


@pytest.mark.parametrize('kind', KINDS)
def test_torch_jit_script_is_refused_by_name(kind):
    """TorchScript cannot compile the operators' Python dispatch; a clear error says what to
    use instead, for the layer and for a model holding it."""
    conv = layer(kind)
    with pytest.raises(TypeError, match='torch.jit.script: .* is not TorchScript .* use '
                                        'torch.compile or torch.export'):
        torch.jit.script(conv)
    with pytest.raises(TypeError, match='is not TorchScript'):
        torch.jit.script(torch.nn.Sequential(conv))

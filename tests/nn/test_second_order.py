"""Second derivatives and forward-mode AD on every route of the layers, against PyG's layers with
the same weights (float64): gradgradcheck, a gradient penalty, second-order MAML, a
Hessian-vector product, jvp / jacfwd and dual numbers. On the kernel routes the forward runs a
kernel and the differentiated backward switches to the reference's differentiable
vector-Jacobian product; ``fast_path=True`` refuses that by name instead.

Issue replayed: ``g = grad((conv(x, ei)**2).sum(), x, create_graph=True)[0]; grad((g**2).sum(),
x)`` differed from PyG's by 43.5 on the default path, silently.
"""
import pytest
import torch
from torch.func import functional_call, jacfwd, jvp

from gat_pyg import kernels
from reference import KINDS, OURS, THEIRS, randomize_parameters, require_native

EDGES = torch.tensor([[0, 1, 2, 3, 4, 5, 1, 2], [1, 2, 3, 4, 5, 0, 3, 2]])   # a self-loop too
TOL = dict(atol=1e-9, rtol=1e-7)


@pytest.fixture(params=['plain', 'csr', 'native'])
def route(request):
    """fast_path=False (PyG's propagate), or the automatic choice with the csr / C++ kernels
    serving the CPU."""
    if request.param == 'plain':
        yield False
    elif request.param == 'csr':
        with kernels.use_backend('csr', 'cpu'):
            yield None
    else:
        require_native()
        yield None


def pair(kind, route, **kwargs):
    torch.manual_seed(0)
    theirs = THEIRS[kind](4, 3, heads=2, **kwargs).double()
    randomize_parameters(theirs, 1)
    ours = OURS[kind](4, 3, heads=2, fast_path=route, **kwargs).double()
    ours.load_state_dict(theirs.state_dict())
    return ours, theirs


def features(seed=2):
    return torch.randn(6, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))


def assert_same(ours: dict, theirs: dict) -> None:
    """Equal gradients, matched by parameter name (the two layers list them in other orders)."""
    assert set(ours) == set(theirs)
    for name, value in theirs.items():
        torch.testing.assert_close(ours[name], value, **TOL, msg=lambda m: f'{name}: {m}')


def test_the_kernel_routes_run_kernels(route):
    if route is None:
        assert kernels.kernel_for('gat_forward', 'cpu', torch.float64) in ('csr', 'native')


@pytest.mark.parametrize('kind', KINDS)
def test_the_issues_double_backward(kind, route):
    ours, theirs = pair(kind, route)
    results = []
    for conv in (ours, theirs):
        x = features().requires_grad_()
        g = torch.autograd.grad((conv(x, EDGES) ** 2).sum(), x, create_graph=True)[0]
        names, params = zip(*conv.named_parameters())
        grads = torch.autograd.grad((g ** 2).sum(), [x, *params])
        results.append(dict(zip(('x', ) + names, grads)))
    assert_same(*results)
    assert results[1]['x'].abs().max() > 1   # not trivially zero


@pytest.mark.parametrize('kind', KINDS)
def test_gradgradcheck(kind, route):
    ours, _ = pair(kind, route, edge_dim=2)
    edge_attr = torch.randn(EDGES.size(1), 2, dtype=torch.float64, requires_grad=True)
    x = features().requires_grad_()
    assert torch.autograd.gradgradcheck(lambda x_, e: ours(x_, EDGES, e), (x, edge_attr))


@pytest.mark.parametrize('kind', KINDS)
def test_gradient_penalty_and_hessian_vector_product(kind, route):
    """WGAN-GP / Lipschitz regularisers differentiate ||d out / d x||; an HVP differentiates a
    gradient dotted with a vector."""
    ours, theirs = pair(kind, route)
    grads = []
    for conv in (ours, theirs):
        conv.zero_grad()
        x = features().requires_grad_()
        out = conv(x, EDGES)
        g = torch.autograd.grad(out.sum(), x, create_graph=True)[0]
        (out.square().mean() + (g.norm(dim=1) - 1).square().mean()).backward()
        v = features(3)
        hvp = torch.autograd.grad((torch.autograd.grad(conv(x, EDGES).square().sum(), x,
                                                       create_graph=True)[0] * v).sum(), x)[0]
        grads.append(dict({k: p.grad.clone() for k, p in conv.named_parameters()}, hvp=hvp))
    assert_same(*grads)


@pytest.mark.parametrize('kind', KINDS)
def test_second_order_maml(kind, route):
    """One inner SGD step with create_graph, the outer loss differentiated through it."""
    ours, theirs = pair(kind, route)
    x, target = features(), features(4)[:, :1].repeat(1, 6)
    meta = []
    for conv in (ours, theirs):
        params = dict(conv.named_parameters())
        inner = (functional_call(conv, params, (x, EDGES)) - target).square().mean()
        steps = torch.autograd.grad(inner, list(params.values()), create_graph=True)
        adapted = {k: p - 0.1 * g for (k, p), g in zip(params.items(), steps)}
        outer = (functional_call(conv, adapted, (features(5), EDGES)) - target).square().mean()
        meta.append(dict(zip(params, torch.autograd.grad(outer, list(params.values())))))
    assert_same(*meta)


@pytest.mark.parametrize('kind', KINDS)
def test_forward_mode_ad(kind, route):
    ours, theirs = pair(kind, route)
    x, tangent = features(), features(6)
    expected = jvp(lambda t: theirs(t, EDGES), (x, ), (tangent, ))
    got = jvp(lambda t: ours(t, EDGES), (x, ), (tangent, ))
    for a, b in zip(got, expected):
        torch.testing.assert_close(a, b, **TOL)
    torch.testing.assert_close(jacfwd(lambda t: ours(t, EDGES))(x),
                               jacfwd(lambda t: theirs(t, EDGES))(x), **TOL)
    with torch.autograd.forward_ad.dual_level():
        dual = torch.autograd.forward_ad.make_dual(x, tangent)
        out = torch.autograd.forward_ad.unpack_dual(ours(dual, EDGES))
    torch.testing.assert_close(out.tangent, expected[1], **TOL)


@pytest.mark.parametrize('kind', KINDS)
def test_fast_path_true_refuses_what_its_kernels_cannot_give(kind, route):
    """A layer that insists on the kernels refuses double backward, forward-mode AD and
    function transforms by name (never a wrong number)."""
    if route is False:
        pytest.skip('fast_path=False is PyG\'s route')
    conv = OURS[kind](4, 3, heads=2, fast_path=True).double()
    x = features().requires_grad_()
    # Refused when the backward is recorded (create_graph=True), before any wrong number.
    with pytest.raises(ValueError, match=r'fast_path=True: .*double backward'):
        torch.autograd.grad((conv(x, EDGES) ** 2).sum(), x, create_graph=True)
    with pytest.raises(ValueError, match=r'fast_path=True: .*\(a torch.func transform \(jvp\)\)'):
        jvp(lambda t: conv(t, EDGES), (features(), ), (features(6), ))
    with pytest.raises(ValueError, match=r'fast_path=True: .*\(forward-mode AD\)'):
        with torch.autograd.forward_ad.dual_level():
            conv(torch.autograd.forward_ad.make_dual(features(), features(6)), EDGES)
    with pytest.raises(ValueError, match=r'fast_path=True: .*\(a torch.func transform \(vmap\)\)'):
        torch.func.vmap(lambda t: conv(t, EDGES))(features().expand(2, 6, 4))
    # First derivatives are the kernels' own.
    x.grad = None
    conv(x, EDGES).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()

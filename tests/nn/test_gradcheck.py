"""float64 ``torch.autograd.gradcheck`` of both layers on both paths.

The layer runs through ``torch.func.functional_call``, so the check covers the node features,
the edge features and every parameter at once, through the output and the attention weights;
``att_bias`` and ``head_input_dropout`` (its masks reseeded at every evaluation) included.
"""
import pytest
import torch
from torch.func import functional_call

from reference import FAST, OURS, features, random_graph, randomize_parameters

CASES = [
    # (kind, constructor kwargs, edge features?, bipartite?)
    ('gat', dict(heads=2, residual=True), False, False),
    ('gat', dict(heads=2, concat=False, edge_dim=2, fill_value='mean'), True, False),
    ('gat', dict(heads=2, add_self_loops=False, edge_dim=2), True, True),
    ('gat', dict(heads=2, att_bias=True, residual=True), False, False),
    ('gat', dict(heads=2, concat=False, att_bias=True, add_self_loops=False, edge_dim=2), True,
     True),
    ('gatv2', dict(heads=2, residual=True), False, False),
    ('gatv2', dict(heads=2, concat=False, edge_dim=2, fill_value='max'), True, False),
    ('gatv2', dict(heads=2, share_weights=True, negative_slope=0.3), False, False),
    ('gatv2', dict(heads=1, edge_dim=2, add_self_loops=False), True, True),
]


@FAST
@pytest.mark.parametrize('kind,kwargs,with_edge_attr,bipartite', CASES,
                         ids=[f'{c[0]}-{i}' for i, c in enumerate(CASES)])
def test_gradcheck(kind, kwargs, with_edge_attr, bipartite, fast_path):
    num_src, num_dst = (6, 4) if bipartite else (6, 6)
    in_channels = (3, 2) if bipartite else 3
    # An isolated target (1), duplicate edges and existing self-loops.
    edge_index = random_graph(num_src, num_dst, 10, seed=40, isolated=[1])
    layer = OURS[kind](in_channels, 2, fast_path=fast_path, **kwargs).double()
    randomize_parameters(layer, seed=41)

    x_src = features(num_src, 3, seed=42, dtype=torch.float64).requires_grad_()
    x_dst = features(num_dst, 2, seed=43, dtype=torch.float64).requires_grad_() \
        if bipartite else None
    edge_attr = features(edge_index.size(1), 2, seed=44, dtype=torch.float64) \
        .requires_grad_() if with_edge_attr else None
    names = [name for name, _ in layer.named_parameters()]
    params = [p.detach().clone().requires_grad_() for _, p in layer.named_parameters()]

    def fn(x_src, x_dst, edge_attr, *params):
        x = (x_src, x_dst) if bipartite else x_src
        out, (_, alpha) = functional_call(
            layer, dict(zip(names, params)), (x, edge_index),
            dict(edge_attr=edge_attr, return_attention_weights=True))
        return out, alpha

    inputs = (x_src, x_dst, edge_attr, *params)
    # The fused path's forward costs more per call (its sparse kernels start a thread pool
    # even for tiny graphs), so it is checked in fast mode: random projections u, v of the
    # Jacobian (J u numerically vs. analytically, v^T J), which a wrong entry fails too.
    assert torch.autograd.gradcheck(fn, inputs, eps=1e-6, atol=1e-6, rtol=1e-4,
                                    fast_mode=fast_path)
    # Every input must take part (gradcheck alone would also pass for a layer that, say,
    # ignored edge_attr altogether).
    present = [(name, t) for name, t in zip(['x_src', 'x_dst', 'edge_attr', *names], inputs)
               if t is not None]
    out, alpha = fn(*inputs)
    grads = torch.autograd.grad(out.sum() + alpha.pow(2).sum(), [t for _, t in present],
                                allow_unused=True)
    for (name, _), grad in zip(present, grads):
        assert grad is not None and grad.abs().sum() > 0, name


@FAST
@pytest.mark.parametrize('kind,sparse,concat', [('gat', False, True), ('gat', True, False),
                                                ('gatv2', False, False), ('gatv2', True, True)])
def test_gradcheck_with_per_head_input_dropout(kind, sparse, concat, fast_path):
    """Training mode, a mask per head of the input (dense or sparse): the projections, the
    residual and the input (dense) differentiate through the masked copies."""
    edge_index = random_graph(6, 6, 10, seed=50, isolated=[1])
    layer = OURS[kind](4, 2, heads=3, concat=concat, residual=True, head_input_dropout=0.4,
                       fast_path=fast_path).double().train()
    randomize_parameters(layer, seed=51)
    x = features(6, 4, seed=52, dtype=torch.float64)
    x = (x * (x > 0)).to_sparse() if sparse else x.requires_grad_()
    names = [name for name, _ in layer.named_parameters()]
    params = [p.detach().clone().requires_grad_() for _, p in layer.named_parameters()]

    def fn(*args):
        torch.manual_seed(53)           # the same masks at every evaluation
        inputs, params = (x, args) if sparse else (args[0], args[1:])
        return functional_call(layer, dict(zip(names, params)), (inputs, edge_index))

    inputs = tuple(params) if sparse else (x, *params)
    assert torch.autograd.gradcheck(fn, inputs, eps=1e-6, atol=1e-6, rtol=1e-4,
                                    fast_mode=fast_path)
    # The masks are on: training differs from the layer without dropout.
    with torch.no_grad():
        dropped = fn(*inputs)
        layer.eval()
        assert not torch.allclose(dropped, fn(*inputs))

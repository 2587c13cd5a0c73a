"""Devices, dtypes, autocast, torch.compile and host synchronisations, for every layer."""
import os

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from gat_pyg import DenseMaskedGATConv, GATConv, GATv2Conv, MaskedGATConv, kernels
from gat_pyg.models import GAT
from reference import features, random_graph, randomize_parameters

# Half precisions keep about 3 significant digits (bfloat16: 2-3, float16: 3-4).
TOLERANCE = {torch.float64: 1e-5, torch.float32: 1e-5, torch.bfloat16: 5e-2,
             torch.float16: 1e-2}


def layers():
    """One of each layer, as (name, layer, call(layer, x, graph))."""
    torch.manual_seed(0)
    out = []
    for name, cls, kwargs in (('gat', GATConv, dict(edge_dim=3)), ('gatv2', GATv2Conv,
                                                                  dict(edge_dim=3)),
                              ('masked', MaskedGATConv, dict(beta=0.5)),
                              ('dense', DenseMaskedGATConv, dict(beta=0.5))):
        layer = cls(8, 4, heads=2, **kwargs)
        randomize_parameters(layer, 1)
        out.append((name, layer))
    return out


def run(name, layer, x, edge_index, edge_attr, mask):
    if name in ('gat', 'gatv2'):
        return layer(x, edge_index, edge_attr)
    if name == 'masked':
        return layer(x, mask)
    return layer(x.unsqueeze(0) if x.layout == torch.strided else x.to_dense().unsqueeze(0),
                 mask)[0]


def inputs(device, dtype=torch.float32):
    edge_index = random_graph(30, 30, 90, seed=2).to(device)
    x = features(30, 8, seed=3).to(device, dtype)
    edge_attr = features(edge_index.size(1), 3, seed=4).to(device, dtype)
    mask = (torch.rand(30, 30, generator=torch.Generator().manual_seed(5)) < 0.2).to(device)
    return x, edge_index, edge_attr, mask


@pytest.mark.parametrize('dtype', [torch.float64, torch.bfloat16, torch.float16])
@pytest.mark.parametrize('sparse_x', [False, True])
def test_every_layer_runs_in_every_dtype(device, dtype, sparse_x):
    """Issue: ``GATConv(3, 2).to(torch.bfloat16)`` crashed on the default path. The automatic
    choice runs a path that supports the dtype; values match float32 to the dtype's precision,
    and backward gives finite gradients."""
    x, edge_index, edge_attr, mask = inputs(device)
    for name, layer in layers():
        layer = layer.to(device)
        expected = run(name, layer, x, edge_index, edge_attr, mask)
        low = layer.to(dtype)
        x_low = x.to(dtype)
        if sparse_x and name != 'dense':
            x_low = x_low.to_sparse()
        out = run(name, low, x_low, edge_index, edge_attr.to(dtype), mask)
        assert out.dtype == dtype
        torch.testing.assert_close(out.float(), expected, atol=TOLERANCE[dtype],
                                   rtol=TOLERANCE[dtype], msg=lambda m: f'{name}: {m}')
        out.float().square().sum().backward()
        for p_name, p in low.named_parameters():
            assert p.grad is not None and p.grad.dtype == dtype, (name, p_name)
            assert torch.isfinite(p.grad).all(), (name, p_name)


def test_fast_path_true_names_an_unsupported_dtype(device):
    from gat_pyg import kernels
    x, edge_index, _, _ = inputs(device, torch.float16)
    for cls in (GATConv, GATv2Conv):
        layer = cls(8, 4, fast_path=True).to(device, torch.float16)
        name = f'{cls.__name__[:-4].lower()}_forward'
        if kernels.kernel_for(name, device, torch.float16) is not None:
            continue
        with pytest.raises(ValueError, match=rf'^fast_path=True: no kernel can run {name} here '
                                             rf'\(no kernel takes torch.float16 on '
                                             rf'{device.type}\)'):
            layer(x, edge_index)


@pytest.mark.parametrize('sparse_x', [False, True])
def test_autocast(device, sparse_x):
    """Under autocast the layers' projections run in bfloat16, and the attention in a dtype
    each path supports: outputs near float32, gradients finite, parameters stay float32."""
    x, edge_index, edge_attr, mask = inputs(device)
    for name, layer in layers():
        layer = layer.to(device)
        expected = run(name, layer, x, edge_index, edge_attr, mask)
        given = x.to_sparse() if sparse_x and name != 'dense' else x
        with torch.autocast(device.type, dtype=torch.bfloat16):
            out = run(name, layer, given, edge_index, edge_attr, mask)
        torch.testing.assert_close(out.float(), expected, atol=5e-2, rtol=5e-2,
                                   msg=lambda m: f'{name}: {m}')
        out.float().sum().backward()
        for p in layer.parameters():
            assert p.dtype == torch.float32 and torch.isfinite(p.grad).all()


COMPILED = ['gat', 'gatv2', 'masked', 'dense', 'model']


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get('GAT_PYG_WITHOUT_SCATTER') == '1',
                    reason='compilation does not depend on torch_scatter; run once')
@pytest.mark.parametrize('name', COMPILED)
def test_torch_compile_fullgraph_matches_eager(name):
    """Issue: ``torch.compile(GATConv(3, 2), fullgraph=True)`` failed on data-dependent input
    checks. Every layer and a model, forward and backward. (One compiled module holding all of
    them trips an inductor limitation with several data-dependent sizes in one backward graph,
    so each is compiled on its own.)"""
    x, edge_index, edge_attr, mask = inputs('cpu')
    if name == 'model':
        torch.manual_seed(6)
        module = GAT(8, 4, 3, heads=2).eval()

        def call(m, x_):
            return m(x_, edge_index)
    else:
        module = dict(layers())[name]

        def call(m, x_):
            return run(name, m, x_, edge_index, edge_attr, mask)
    x_eager = x.clone().requires_grad_()
    eager = call(module, x_eager)
    eager.square().sum().backward()
    grads = {n: p.grad.clone() for n, p in module.named_parameters()}
    module.zero_grad()
    torch._dynamo.reset()
    compiled = torch.compile(module, fullgraph=True)
    x_compiled = x.clone().requires_grad_()
    out = call(compiled, x_compiled)
    torch.testing.assert_close(out, eager, atol=1e-5, rtol=1e-5)
    out.square().sum().backward()
    torch.testing.assert_close(x_compiled.grad, x_eager.grad, atol=1e-4, rtol=1e-4)
    for n, p in module.named_parameters():
        torch.testing.assert_close(p.grad, grads[n], atol=1e-4, rtol=1e-4, msg=n)


class HostSyncs(TorchDispatchMode):
    """Counts the operations that make the host wait for a tensor's value."""
    SYNCING = ('_local_scalar_dense', 'nonzero', 'equal', 'is_nonzero', 'item')

    def __init__(self):
        super().__init__()
        self.ops = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func.overloadpacket.__name__
        if name in self.SYNCING:
            self.ops.append(name)
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize('cls', [GATConv, GATv2Conv])
def test_layer_forward_on_a_prepared_graph_never_waits_for_the_device(cls):
    """Validation and graph preparation synchronise (once per graph); a layer's forward and
    backward on the prepared graph do not, on every path."""
    x, edge_index, _, _ = inputs('cpu')
    for fast_path in (None, False):
        layer = cls(8, 4, heads=2, dropout=0.5, fast_path=fast_path)
        graph = layer.prepare(edge_index, 30)
        graph.transpose()
        with HostSyncs() as probe:
            layer(x.requires_grad_(), graph).sum().backward()
        assert probe.ops == [], (fast_path, probe.ops)


def test_host_syncs_of_a_training_step():
    """The numbers the README quotes: forward + backward of the paper's GAT on a prepared graph
    with sparse features never wait with the native kernels, and once without them (the
    pure-torch input dropout drops entries of a sparse matrix: one nonzero); preparing a new
    graph waits at most three times (validation, self-loop check, sortedness check). torch's
    unfused Adam on CPU adds one per parameter (``step.item()``); the package's optimizer is
    the fused one (``gat_pyg.train.optim.make_optimizer``)."""
    edge_index = random_graph(50, 50, 200, seed=7)
    x = features(50, 12, seed=8)
    x = (x * (x > 1)).to_sparse()
    torch.manual_seed(9)
    model = GAT(12, 8, 3, heads=8, dropout=0.6, attn_dropout=0.6, message_dropout=0.6,
                act='elu')
    graph = model.prepare_graph(edge_index, 50)
    y = torch.randint(0, 3, (50, ))

    def forward_backward():
        model.zero_grad()
        torch.nn.functional.cross_entropy(model(x, graph), y).backward()

    forward_backward()     # warm-up: the transposed order is built on the first backward
    with HostSyncs() as probe:
        forward_backward()
    assert probe.ops == ([] if kernels.available() else ['nonzero']), probe.ops
    with HostSyncs() as probe:
        model.prepare_graph(edge_index.clone() + 0, 50)
    assert 1 <= len(probe.ops) <= 3, probe.ops


@pytest.mark.parametrize('kind', ['gat', 'gatv2'])
def test_layers_match_pyg_on_the_device(device, kind):
    """Outputs, attention and gradients equal PyG's layer with the same weights, on each device
    (CUDA when available)."""
    from reference import layer_pair, loss_of
    x, edge_index, edge_attr, _ = inputs(device)
    ours, theirs = layer_pair(kind, 8, 4, heads=2, edge_dim=3)
    results = []
    for layer in (ours.to(device), theirs.to(device)):
        x_in = x.clone().requires_grad_()
        out, (_, alpha) = layer(x_in, edge_index, edge_attr, return_attention_weights=True)
        (loss_of(out.cpu()) + loss_of(alpha.cpu(), seed=2)).backward()
        results.append((out, alpha, x_in.grad))
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)

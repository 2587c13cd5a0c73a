"""torch.export with dynamic node and edge counts, and torch.compile with dynamic shapes, of the
layers and models: the sizes stay symbolic (no graph per size), a fullgraph training step with
every dropout on compiles, and the compiled or exported program is right on another graph.

Issues replayed: ``torch.export.export(model, (x, edge_index), dynamic_shapes={'x': {0: N},
'edge_index': {1: E}})`` failed (the size check refused symbolic integers); ``torch.compile(model,
dynamic=True)`` compiled anew for every mini-batch size (the node count became a constant) and
``fullgraph=True`` failed in training mode (``Tensor.random_`` of the dropout masks).
"""
import pytest
import torch
from torch._dynamo.utils import counters

from gat_pyg import GATConv, GATv2Conv
from gat_pyg.models import GAT, GATv2

SIZES = [(30, 100), (45, 170), (60, 210), (33, 90)]


def graph(num_nodes, num_edges, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return (torch.randn(num_nodes, 8, generator=gen),
            torch.randint(0, num_nodes, (2, num_edges), generator=gen),
            torch.randn(num_edges, 3, generator=gen))


@pytest.mark.parametrize('strict', [False, True])
@pytest.mark.parametrize('make', [
    lambda: GAT(8, 4, 3, heads=2), lambda: GATv2(8, 4, 3, heads=2),
    lambda: GATConv(8, 4, heads=2, edge_dim=3), lambda: GATv2Conv(8, 4, heads=2, edge_dim=3),
], ids=['GAT', 'GATv2', 'GATConv+edge_attr', 'GATv2Conv+edge_attr'])
def test_export_with_dynamic_node_and_edge_counts(make, strict):
    torch.manual_seed(0)
    module = make().eval()
    x, edge_index, edge_attr = graph(*SIZES[0])
    nodes, edges = torch.export.Dim('nodes', min=2), torch.export.Dim('edges', min=2)
    if isinstance(module, (GAT, GATv2)):
        args, shapes = (x, edge_index), {'x': {0: nodes}, 'edge_index': {1: edges}}
    else:
        args = (x, edge_index, edge_attr)
        shapes = {'x': {0: nodes}, 'edge_index': {1: edges}, 'edge_attr': {0: edges}}
    program = torch.export.export(module, args, dynamic_shapes=shapes, strict=strict)
    for size in SIZES[1:]:
        x, edge_index, edge_attr = graph(*size, seed=size[0])
        inputs = (x, edge_index) if len(args) == 2 else (x, edge_index, edge_attr)
        torch.testing.assert_close(program.module()(*inputs), module(*inputs),
                                   atol=1e-6, rtol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize('model_cls', [GAT, GATv2])
def test_compile_fullgraph_dynamic_training_steps_with_dropout(model_cls):
    """One graph for every size, training mode with input, attention and message dropout; the
    compiled step's loss and gradients are those of eager code with the same seed."""
    torch._dynamo.reset()
    counters.clear()
    torch.manual_seed(0)
    model = model_cls(8, 4, 3, heads=2, num_layers=3, dropout=0.5, attn_dropout=0.5,
                      message_dropout=0.5)
    compiled = torch.compile(model, dynamic=True, fullgraph=True, backend='aot_eager')
    for size in SIZES:
        x, edge_index, _ = graph(*size, seed=size[1])
        torch.manual_seed(size[0])
        loss = compiled(x, edge_index).square().mean()
        compiled_grads = torch.autograd.grad(loss, list(model.parameters()))
        torch.manual_seed(size[0])
        expected = model(x, edge_index).square().mean()
        eager_grads = torch.autograd.grad(expected, list(model.parameters()))
        torch.testing.assert_close(loss, expected, atol=1e-5, rtol=1e-5)
        for a, b in zip(compiled_grads, eager_grads):
            torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    assert counters['stats']['unique_graphs'] == 1


@pytest.mark.slow
def test_dynamic_compile_without_fullgraph_does_not_recompile_per_size():
    """Without fullgraph, dynamo stops at the self-loop removal (a data-dependent edge count,
    as for PyG's layers), but every later size reuses the graphs of the first."""
    torch._dynamo.reset()
    counters.clear()
    torch.manual_seed(0)
    model = GAT(8, 4, 3, heads=2, num_layers=3)
    compiled = torch.compile(model, dynamic=True, backend='aot_eager')
    graphs = []
    for size in SIZES:
        x, edge_index, _ = graph(*size, seed=size[1])
        compiled(x, edge_index).sum().backward()
        graphs.append(counters['stats']['unique_graphs'])
    assert graphs[1:] == graphs[:1] * (len(SIZES) - 1), graphs


@pytest.mark.slow
def test_plain_compile_graphs_do_not_grow_with_layers_sizes_or_subclasses():
    """Plain ``torch.compile(model)`` (no ``dynamic``): torch compiles static shapes first and
    dynamic ones at the second size, and then never again; the layers share the model's
    prepared graph, so a deeper model compiles no more graphs than a shallower one (the
    issue: "recompiles per layer, past the recompile limit"). Calling a new subclass of a
    layer in eager code between compiled calls recompiles nothing, and dynamo does not warn
    of a cache it traces through (``functools.lru_cache``)."""
    import warnings

    from torch._dynamo.utils import warn_once_cache

    sizes = SIZES + [(70, 250), (25, 80)]
    counts = {}
    for num_layers in (2, 4):
        torch._dynamo.reset()
        counters.clear()
        # Private: dynamo warns once per process; forget earlier tests' warnings.
        warn_once_cache.clear()
        torch.manual_seed(0)
        model = GAT(8, 4, 3, heads=2, num_layers=num_layers)
        compiled = torch.compile(model, backend='aot_eager')
        graphs = []
        with warnings.catch_warnings():
            warnings.filterwarnings('error', message='.*lru_cache')
            for i, size in enumerate(sizes):
                x, edge_index, _ = graph(*size, seed=size[1])
                # A class the layers have not seen, called in eager code.
                subclass = type(f'Sub{num_layers}_{i}', (GATConv, ), {})
                subclass(8, 4)(x, edge_index)
                out = compiled(x, edge_index)
                out.sum().backward()
                torch.testing.assert_close(out, model(x, edge_index), atol=1e-5, rtol=1e-5)
                graphs.append(counters['stats']['unique_graphs'])
        assert graphs[2:] == [graphs[1]] * (len(sizes) - 2), graphs
        counts[num_layers] = graphs
    assert counts[2] == counts[4], counts

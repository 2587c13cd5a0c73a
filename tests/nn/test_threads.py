"""Several threads calling one layer or one model on different graphs never get each other's
graph, whatever the interleaving (the graph cache reads and replaces its entry as one unit).

Issue replayed: two threads x 3,000 calls of one GATConv(8, 4, heads=2) on two 100-node graphs,
with ``sys.setswitchinterval(1e-6)``, gave 20 wrong outputs of 6,000 (PyG's layer: 0).
"""
import sys
import threading

import pytest
import torch

import gat_pyg.nn.graph.cache as cache_module
from gat_pyg import GATConv, GATv2Conv, MaskedGATConv
from gat_pyg.models import GAT
from gat_pyg.nn.graph import GraphCache, prepare_graph

CALLS = 400


def graphs(num_nodes=100):
    gen = torch.Generator().manual_seed(0)
    return [torch.randint(0, num_nodes, (2, 400), generator=gen) for _ in range(2)]


def masks(num_nodes=100):
    gen = torch.Generator().manual_seed(1)
    return [torch.rand(num_nodes, num_nodes, generator=gen) < 0.05 for _ in range(2)]


def hammer(module, inputs, x):
    """Two threads, each calling ``module`` on its own graph CALLS times; the number of outputs
    that differ from the single-threaded one."""
    with torch.no_grad():
        expected = [module(x, g) for g in inputs]
    wrong = [0, 0]

    def work(i):
        with torch.no_grad():
            for _ in range(CALLS):
                if not torch.equal(module(x, inputs[i]), expected[i]):
                    wrong[i] += 1

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        threads = [threading.Thread(target=work, args=(i, )) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(interval)
    return sum(wrong)


@pytest.mark.slow
@pytest.mark.parametrize('make', [
    lambda: GATConv(8, 4, heads=2),
    lambda: GATv2Conv(8, 4, heads=2),
    lambda: GAT(8, 4, 3, heads=2),
], ids=['GATConv', 'GATv2Conv', 'GAT model'])
def test_layers_and_models(make):
    torch.manual_seed(0)
    module = make().eval()
    assert hammer(module, graphs(), torch.randn(100, 8)) == 0


@pytest.mark.slow
def test_masked_layer():
    torch.manual_seed(0)
    module = MaskedGATConv(8, 4, heads=2).eval()
    assert hammer(module, masks(), torch.randn(100, 8)) == 0


def test_an_entry_replaced_during_a_comparison_is_never_served(monkeypatch):
    """The interleaving that produced the wrong outputs, made deterministic: another thread
    replaces the cached entry while ``get`` compares the caller's tensor with the old one. The
    graph returned is the one that was compared (or none), never the newcomer."""
    first, second = graphs()
    graph_1, graph_2 = prepare_graph(first, 100), prepare_graph(second, 100)
    cache = GraphCache()
    key = (100, 100, True)
    cache.put(first, key, graph_1)
    real = cache_module._equal_widened

    def compare_while_another_thread_puts(now, then):
        cache.put(second, key, graph_2)
        return real(now, then)

    monkeypatch.setattr(cache_module, '_equal_widened', compare_while_another_thread_puts)
    assert cache.get(first, key) is graph_1
    assert cache.get(first, key) is None        # the entry is now the second graph's
    monkeypatch.setattr(cache_module, '_equal_widened', real)
    assert cache.get(second, key) is graph_2

"""Attention layers forward + backward on large random graphs: ours vs PyG's, three workloads.

    python benchmarks/layer.py                          # one layer, E = 1M, 4M, 20M
    python benchmarks/layer.py --edges 4000000 --layers gat --repeats 5
    python benchmarks/layer.py --workload new-graph     # a new 85k-node / 110k-edge graph per step
    python benchmarks/layer.py --workload model --edges 20000000 --repeats 1

Workloads:

* layer: one layer 64 -> 8 heads x 8 channels (the paper's hidden layer) on a random graph with
  E / 20 nodes, the same graph every step; x requires grad, so backward computes every
  gradient.
* new-graph: the same layer on a new random graph every step, shaped like a sampled mini-batch
  (--nodes 85000 --edges 110000 by default: a [10, 10] sample of 1024 targets in a 200k-node
  graph), so each step pays the graph's preparation (ours: sorting; PyG: none).
* model: the package's two-layer GAT (8 heads x 8, then 1 head x 16 classes, no dropout) on a
  graph with E / 20 nodes; PyG's layers are plugged into the very same model.

Each (workload, size, layer, implementation) runs in a child process (see
gat_pyg.bench.common). Peak memory is what the steps need above the inputs (x and the edge
index), our prepared graph included: the warm-up's cached graph is dropped before the baseline,
so the first timed step prepares it again (the median time is the steady state of a training
loop that reuses it).
"""
import argparse
import json
import logging
from typing import List, Optional

import torch

from gat_pyg.bench.common import (CaseResult, add_common_args, fmt_mib, fmt_ms, format_table,
                                  make_parser, measure, positive_int, ratio, run_alternating,
                                  set_threads, write_json)

log = logging.getLogger(__name__)

LAYERS = ('gat', 'gatv2')
IMPLS = ('ours', 'pyg')
WORKLOADS = ('layer', 'new-graph', 'model')
NEW_GRAPHS = 4
"""Graphs the new-graph workload cycles through (made before timing)."""


def random_graph(num_nodes: int, num_edges: int, gen: torch.Generator) -> torch.Tensor:
    return torch.randint(0, num_nodes, (2, num_edges), generator=gen)


def build(workload: str, layer: str, impl: str, num_edges: int, num_nodes: Optional[int],
          seed: int = 0):
    """``(module, x, graphs, forget)``: the module to time, its input features, the graph(s)
    its steps cycle through, and what drops our cached prepared graph."""
    import torch_geometric.nn as pyg_nn

    import gat_pyg
    from gat_pyg.models import GAT, GATv2
    gen = torch.Generator().manual_seed(seed)
    if num_nodes is None:
        num_nodes = max(1, num_edges // 20)
    count = NEW_GRAPHS if workload == 'new-graph' else 1
    graphs = [random_graph(num_nodes, num_edges, gen) for _ in range(count)]
    x = torch.randn(num_nodes, 64, generator=gen)
    torch.manual_seed(seed)
    if workload == 'model':
        model_cls = {'gat': GAT, 'gatv2': GATv2}[layer]
        if impl == 'pyg':
            conv = {'gat': pyg_nn.GATConv, 'gatv2': pyg_nn.GATv2Conv}[layer]
            model_cls = type(f'PyG{model_cls.__name__}', (model_cls, ), {'conv_class': conv})
        module = model_cls(64, 8, 16, heads=8, out_heads=1, act='elu', dropout=0.0,
                           attn_dropout=0.0, message_dropout=0.0)
    else:
        classes = {('gat', 'ours'): gat_pyg.GATConv, ('gat', 'pyg'): pyg_nn.GATConv,
                   ('gatv2', 'ours'): gat_pyg.GATv2Conv, ('gatv2', 'pyg'): pyg_nn.GATv2Conv}
        module = classes[(layer, impl)](64, 8, heads=8)
        x.requires_grad_()
    # Our layers and models keep the graph they prepared (PyG's have nothing to forget).
    cache = getattr(module, 'graph_cache', None)
    return module, x, graphs, (cache.clear if cache is not None else None)


def child(args) -> None:
    set_threads(args.threads)
    module, x, graphs, forget = build(args.workload, args.layers[0], args.impl, args.edges[0],
                                      args.nodes)
    steps = iter(range(1 << 62))

    def step():
        module.zero_grad(set_to_none=True)
        x.grad = None
        module(x, graphs[next(steps) % len(graphs)]).sum().backward()

    print(json.dumps(measure(step, args.repeats, forget=forget)))


def build_parser(prog: str = 'benchmarks/layer.py') -> argparse.ArgumentParser:
    """The benchmark's options; ``prog`` is how ``--help`` and usage errors name the
    command."""
    parser = make_parser(__doc__, prog)
    parser.add_argument('--workload', choices=WORKLOADS, default='layer',
                        help='layer: one layer on a fixed graph; new-graph: one layer on a new '
                             'graph every step; model: the two-layer GAT (default: layer)')
    parser.add_argument('--edges', type=positive_int, nargs='+', default=None,
                        help='graph sizes (number of edges) to run (default: 1M 4M 20M; '
                             'new-graph: 110000)')
    parser.add_argument('--nodes', type=positive_int, default=None,
                        help='nodes of each graph (default: edges / 20; new-graph: 85000)')
    parser.add_argument('--layers', nargs='+', choices=LAYERS, default=list(LAYERS),
                        help='which layers to compare (default: both)')
    parser.add_argument('--repeats', type=positive_int, default=3,
                        help='timed steps in each child, after one warm-up (default: 3)')
    parser.add_argument('--rounds', type=positive_int, default=2,
                        help='children per implementation, alternating ours/PyG (default: 2)')
    parser.add_argument('--impl', choices=IMPLS, help=argparse.SUPPRESS)
    add_common_args(parser)
    return parser


def main(argv: Optional[List[str]] = None, prog: str = 'benchmarks/layer.py'
         ) -> Optional[List[CaseResult]]:
    """Run the benchmark with the options in ``argv`` (default: ``sys.argv[1:]``); ``prog`` is how
    ``--help`` and usage errors name the command. Returns the results (``None`` in a child)."""
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    if args.child:
        return child(args)
    logging.basicConfig(level=logging.INFO, format='%(message)s')
    if args.edges is None:
        args.edges = [110_000] if args.workload == 'new-graph' else \
            [1_000_000, 4_000_000, 20_000_000]
    if args.nodes is None and args.workload == 'new-graph':
        args.nodes = 85_000

    results, rows = [], []
    for num_edges in args.edges:
        for layer in args.layers:
            nodes = [] if args.nodes is None else ['--nodes', str(args.nodes)]
            case = run_alternating('gat_pyg.bench.layer', f'{layer} E={num_edges:,}', {
                impl: ['--impl', impl, '--workload', args.workload, '--layers', layer,
                       '--edges', str(num_edges), '--repeats', str(args.repeats), *nodes]
                for impl in IMPLS}, args)
            ours, pyg = case['ours'], case['pyg']
            log.info('%s: ours %s / %s, PyG %s / %s', ours.name, fmt_ms(ours.median_ms),
                         fmt_mib(ours.peak_mib), pyg.error or fmt_ms(pyg.median_ms),
                         fmt_mib(pyg.peak_mib))
            results += [ours, pyg]
            rows.append([layer, f'{num_edges:,}', ours.error or fmt_ms(ours.median_ms),
                         pyg.error or fmt_ms(pyg.median_ms), ratio(ours.median_ms, pyg.median_ms),
                         fmt_mib(ours.peak_mib), fmt_mib(pyg.peak_mib),
                         '-' if not (ours.peak_mib and pyg.peak_mib)
                         else f'{ours.peak_mib / pyg.peak_mib:.2f}'])
    print(f'workload: {args.workload}')
    print(format_table(['layer', 'edges', 'ours', 'PyG', 'speed-up', 'ours peak',
                        'PyG peak', 'memory ratio'], rows))
    write_json(args.json, results)
    return results


if __name__ == '__main__':
    main()

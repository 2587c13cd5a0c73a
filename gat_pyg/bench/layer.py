"""One attention layer, forward + backward, on large random graphs: ours vs PyG's.

    python benchmarks/layer.py                       # E = 1M, 4M, 20M; GATConv and GATv2Conv
    python benchmarks/layer.py --edges 4000000 --layers gat --repeats 5

The layer is 64 -> 8 heads x 8 channels (the paper's hidden layer) on a random graph with
E / 20 nodes; x requires grad, so backward computes every gradient. Each (size, layer,
implementation) runs in a child process (see :mod:`gat_pyg.bench.common`).
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


def build(layer: str, impl: str, num_edges: int, seed: int = 0):
    import torch_geometric.nn as pyg_nn

    import gat_pyg
    classes = {('gat', 'ours'): gat_pyg.GATConv, ('gat', 'pyg'): pyg_nn.GATConv,
               ('gatv2', 'ours'): gat_pyg.GATv2Conv, ('gatv2', 'pyg'): pyg_nn.GATv2Conv}
    gen = torch.Generator().manual_seed(seed)
    num_nodes = max(1, num_edges // 20)
    edge_index = torch.randint(0, num_nodes, (2, num_edges), generator=gen)
    x = torch.randn(num_nodes, 64, generator=gen).requires_grad_()
    torch.manual_seed(seed)
    conv = classes[(layer, impl)](64, 8, heads=8)
    return conv, x, edge_index


def child(args) -> None:
    set_threads(args.threads)
    conv, x, edge_index = build(args.layers[0], args.impl, args.edges[0])

    def step():
        conv.zero_grad(set_to_none=True)
        x.grad = None
        conv(x, edge_index).sum().backward()

    print(json.dumps(measure(step, args.repeats)))


def build_parser(prog: str = 'benchmarks/layer.py') -> argparse.ArgumentParser:
    """The benchmark's options; ``prog`` is how ``--help`` and usage errors name the
    command."""
    parser = make_parser(__doc__, prog)
    parser.add_argument('--edges', type=positive_int, nargs='+',
                        default=[1_000_000, 4_000_000, 20_000_000],
                        help='graph sizes (number of edges) to run (default: 1M 4M 20M)')
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

    results, rows = [], []
    for num_edges in args.edges:
        for layer in args.layers:
            case = run_alternating('gat_pyg.bench.layer', f'{layer} E={num_edges:,}', {
                impl: ['--impl', impl, '--layers', layer, '--edges', str(num_edges),
                       '--repeats', str(args.repeats)] for impl in IMPLS}, args)
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
    print(format_table(['layer', 'edges', 'ours', 'PyG', 'speed-up', 'ours peak',
                        'PyG peak', 'memory ratio'], rows))
    write_json(args.json, results)
    return results


if __name__ == '__main__':
    main()

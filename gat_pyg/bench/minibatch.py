"""Mini-batch training epochs of a 2-layer GAT on a large random graph: ours vs PyG's GATConv.

    python benchmarks/minibatch.py                                 # 1M nodes, 20M edges
    python benchmarks/minibatch.py --nodes 200000 --edges 4000000  # a smaller graph

The graph is random (edges drawn uniformly, ``--features`` Gaussian features, random labels),
generated inside each child from ``--seed``. The model is :class:`gat_pyg.models.GAT` (8 heads x
8 hidden features, concatenated, then one head over the classes; dropout 0.6 on inputs and
attention, Adam); PyG's case is the very same model with ``torch_geometric.nn.GATConv`` as its
layer. Both train on the batches of one sampler, :func:`gat_pyg.train.minibatch.make_loader`
(PyG's ``NeighborLoader``, ``--num-neighbors`` per hop, ``--batch-size`` target nodes, shuffled
with a seeded generator), through :func:`gat_pyg.train.minibatch.train_batch`, the step that
``gat-pyg train --batch-size`` runs.

An "epoch" here is training on the first ``--batches`` batches of a shuffled pass (a pass over
all 1M nodes would be ~1000 batches). The batches are sampled once, before the clock starts, and
held, so the epoch times the training steps alone; the "sampling" column is what drawing those
batches took (the same sampler for both, so it is not part of the comparison). Peak memory is
what an epoch needs on top of the graph and the held batches (see :mod:`gat_pyg.bench.common`).
The defaults take about 5 minutes on two cores; ``--batches 10 --epochs 1`` about 2.
"""
import argparse
import json
import logging
import time
from typing import List, Optional

import torch

from gat_pyg.bench.common import (CaseResult, add_common_args, fmt_mib, fmt_ms, format_table,
                                  make_parser, measure, non_negative_int, positive_int, ratio,
                                  run_alternating, set_threads, write_json)

log = logging.getLogger(__name__)

# The implementations, in the order the children alternate.
IMPLS = ('ours', 'pyg')


def random_graph(nodes: int, edges: int, features: int, classes: int, seed: int):
    """A seeded random graph as a ``Data`` with every node in ``train_mask``."""
    from torch_geometric.data import Data

    gen = torch.Generator().manual_seed(seed)
    # Sources and targets are drawn one row at a time into the final tensor: 20M edges are
    # 320 MB of int64, and no temporary copy of that size is made.
    edge_index = torch.empty(2, edges, dtype=torch.long)
    for row in edge_index:
        row.random_(0, nodes, generator=gen)
    x = torch.randn(nodes, features, generator=gen)
    y = torch.randint(0, classes, (nodes, ), generator=gen)
    return Data(x=x, edge_index=edge_index, y=y, num_nodes=nodes,
                train_mask=torch.ones(nodes, dtype=torch.bool))


def build_model(impl: str, features: int, classes: int):
    import torch_geometric.nn as pyg_nn

    from gat_pyg.models import GAT

    model_cls = GAT if impl == 'ours' else type('PyGGAT', (GAT, ), {'conv_class': pyg_nn.GATConv})
    # message_dropout off: PyG's layer has no such argument, and both sides run one model.
    return model_cls(features, 8, classes, num_layers=2, heads=8, out_heads=1, act='elu',
                     dropout=0.6, attn_dropout=0.6, message_dropout=0.0)


def child(args) -> None:
    from itertools import islice

    from gat_pyg.train.config import TrainConfig
    from gat_pyg.train.loop import make_optimizer
    from gat_pyg.train.minibatch import make_loader, train_batch

    set_threads(args.threads)
    data = random_graph(args.nodes, args.edges, args.features, args.classes, args.seed)
    config = TrainConfig(batch_size=args.batch_size, num_neighbors=list(args.num_neighbors),
                         num_layers=len(args.num_neighbors), seed=args.seed)
    loader = make_loader(config, data)
    torch.manual_seed(args.seed)
    start = time.perf_counter()
    batches = list(islice(loader, args.batches))
    sampling_ms = (time.perf_counter() - start) * 1000
    model = build_model(args.impl, args.features, args.classes).train()
    optimizer = make_optimizer(model.parameters(), lr=0.005, weight_decay=5e-4)

    def epoch() -> None:
        for batch in batches:
            train_batch(model, optimizer, batch)
    print(json.dumps(dict(measure(epoch, args.epochs, warmup=1), sampling_ms=sampling_ms)))


def _neighbour_count(text: str) -> int:
    """argparse type of --num-neighbors: a count >= 1, or -1 for all neighbours."""
    if text.strip() == '-1':
        return -1
    try:
        return positive_int(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f'expected a count >= 1, or -1 for all neighbours, '
                                         f'got {text!r}') from None


def at_least_two(text: str) -> int:
    """argparse type of --classes: a classifier needs two classes at least."""
    value = positive_int(text)
    if value < 2:
        raise argparse.ArgumentTypeError(f'expected an integer >= 2, got {text!r}')
    return value


def build_parser(prog: str = 'benchmarks/minibatch.py') -> argparse.ArgumentParser:
    """The benchmark's options; ``prog`` is how ``--help`` and usage errors name the
    command."""
    parser = make_parser(__doc__, prog)
    parser.add_argument('--nodes', type=positive_int, default=1_000_000,
                        help='nodes of the random graph (default: %(default)s)')
    parser.add_argument('--edges', type=positive_int, default=20_000_000,
                        help='directed edges of the random graph (default: %(default)s)')
    parser.add_argument('--features', type=positive_int, default=64,
                        help='node features (default: %(default)s)')
    parser.add_argument('--classes', type=at_least_two, default=16,
                        help='label classes, the output width (default: %(default)s)')
    parser.add_argument('--batch-size', type=positive_int, default=1024,
                        help='target nodes per batch (default: %(default)s)')
    parser.add_argument('--num-neighbors', type=_neighbour_count, nargs='+', default=[10, 10],
                        help='neighbours sampled per hop, one per layer (default: 10 10)')
    parser.add_argument('--batches', type=positive_int, default=20,
                        help='batches per timed "epoch", sampled before timing '
                             '(default: %(default)s)')
    parser.add_argument('--epochs', type=positive_int, default=2,
                        help='timed epochs in each child, after one warm-up epoch '
                             '(default: %(default)s)')
    parser.add_argument('--rounds', type=positive_int, default=1,
                        help='children per implementation, alternating (default: %(default)s)')
    parser.add_argument('--seed', type=non_negative_int, default=0,
                        help='seed of the graph, the model and the sampler (default: 0)')
    parser.add_argument('--impl', choices=IMPLS, help=argparse.SUPPRESS)
    add_common_args(parser)
    return parser


def main(argv: Optional[List[str]] = None, prog: str = 'benchmarks/minibatch.py'
         ) -> Optional[List[CaseResult]]:
    """Run the benchmark with the options in ``argv`` (default: ``sys.argv[1:]``); ``prog`` is how
    ``--help`` and usage errors name the command. Returns the results (``None`` in a child)."""
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    if len(args.num_neighbors) != 2:
        parser.error(f'--num-neighbors: the benchmark model has 2 layers, so give 2 counts, '
                     f'got {len(args.num_neighbors)}')
    if args.child:
        return child(args)
    logging.basicConfig(level=logging.INFO, format='%(message)s')

    forwarded = [f'--{k}' for k in ('nodes', 'edges', 'features', 'classes', 'batch-size',
                                    'batches', 'epochs', 'seed')]
    common = [a for k in forwarded for a in (k, str(getattr(args, k[2:].replace('-', '_'))))]
    common += ['--num-neighbors', *map(str, args.num_neighbors)]
    name = f'{args.nodes:,} nodes / {args.edges:,} edges'
    results = run_alternating('gat_pyg.bench.minibatch', name, {
        impl: ['--impl', impl, *common] for impl in IMPLS}, args)
    ours, pyg = (results[i] for i in IMPLS)
    print(format_table(
        ['graph', 'batches', 'ours epoch', 'PyG epoch', 'speed-up', 'sampling (excluded)',
         'ours peak', 'PyG peak', 'memory ratio'],
        [[name, f'{args.batches} x {args.batch_size}', ours.error or fmt_ms(ours.median_ms),
          pyg.error or fmt_ms(pyg.median_ms), ratio(ours.median_ms, pyg.median_ms),
          fmt_ms(ours.extra.get('sampling_ms')), fmt_mib(ours.peak_mib), fmt_mib(pyg.peak_mib),
          '-' if not (ours.peak_mib and pyg.peak_mib)
          else f'{ours.peak_mib / pyg.peak_mib:.2f}']]))
    write_json(args.json, list(results.values()))
    return list(results.values())


if __name__ == '__main__':
    main()

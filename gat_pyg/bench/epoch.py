"""Paper-GAT training epochs (forward + backward + Adam) on Cora and CiteSeer: ours vs PyG's.

    python benchmarks/epoch.py                        # both datasets, GAT and GATv2
    python benchmarks/epoch.py --datasets cora --models gat --epochs 100

The model is the package's own (:class:`gat_pyg.models.GAT` / ``GATv2``) with the paper's
settings, read from ``configs/<dataset>_<model>.yaml`` (8 heads x 8 hidden, dropout 0.6 on
inputs and attention, ELU, Adam lr 0.005, weight decay 5e-4); for PyG the very same model is
built with ``torch_geometric.nn.GATConv`` / ``GATv2Conv`` as its layer. Ours runs on
its default input, sparse bag-of-words features; PyG runs on dense features (as PyG's example
does) and on torch.sparse COO features (which its ``Linear`` accepts), and the speed-up is
quoted against the faster of the two. Both run with ``message_dropout`` off (PyG's layer has
none). The "floor" is our model with each attention layer replaced by its projection alone
(same widths, heads, bias, dropout and optimizer; :class:`ProjectionOnly`): what an epoch costs
without any attention, the limit a faster attention could approach. Planetoid files come from
``GAT_PYG_PLANETOID_MIRROR``.

On a machine whose cores are busy, timings mean little (torch's threads spin while they wait
for a core): the benchmark warns when the load average exceeds the cores before it starts, and
when the floor comes out slower than the full model. Run it on an idle machine, or with
``--threads 1`` (``OMP_NUM_THREADS=1``) where other work shares the cores.
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

# (implementation, feature form) pairs, in the order the children alternate.
CASES = (('ours', 'sparse'), ('pyg', 'dense'), ('pyg', 'sparse'), ('floor', 'sparse'))


def projection_only(conv_class):
    """``conv_class`` without its attention: the projection, heads (concatenated or averaged)
    and bias of the layer, and nothing of the graph."""
    from gat_pyg.nn.functional import linear

    class ProjectionOnly(conv_class):
        def forward(self, x, edge_index, *args, **kwargs):
            src_lin = self.lin if getattr(self, 'lin', None) is not None else self.lin_l
            h = linear(src_lin, x).view(-1, self.heads, self.out_channels)
            return self.combine_heads(h)
    return ProjectionOnly


def build(dataset: str, model: str, impl: str, features: str):
    """``(model, data, config)``: the paper's model for ``dataset`` with ``impl``'s layers."""
    import torch_geometric.nn as pyg_nn

    from gat_pyg.data import load_planetoid
    from gat_pyg.models import GAT, GATv2
    from gat_pyg.train.build import model_arguments
    from gat_pyg.train.schema import TrainConfig

    data = load_planetoid(dataset, sparse=features == 'sparse')
    model_cls = {'gat': GAT, 'gatv2': GATv2}[model]
    if impl == 'pyg':
        conv = {'gat': pyg_nn.GATConv, 'gatv2': pyg_nn.GATv2Conv}[model]
        model_cls = type(f'PyG{model_cls.__name__}', (model_cls, ), {'conv_class': conv})
    elif impl == 'floor':
        conv = projection_only(model_cls.conv_class)
        model_cls = type(f'Floor{model_cls.__name__}', (model_cls, ), {'conv_class': conv})
    # message_dropout off: PyG's layer has no such argument, and both sides run one model.
    config = TrainConfig(dataset=dataset, model=model, message_dropout=0.0)
    torch.manual_seed(0)
    net = model_cls(data.num_features, config.hidden_channels, int(data.y.max()) + 1,
                    **model_arguments(config))
    return net, data, config


def child(args) -> None:
    from gat_pyg.train.fullbatch import NodeTask
    from gat_pyg.train.optim import make_optimizer

    set_threads(args.threads)
    net, data, config = build(args.datasets[0], args.models[0], args.impl, args.features)
    optimizer = make_optimizer(
        net.parameter_groups(config.weight_decay, config.weight_decay_first_layer_only),
        lr=config.lr)
    # One full-batch epoch as training runs it (the task is built per epoch, as it always was
    # timed here: a shallow copy of the graph and the model's prepared-graph lookup included).
    report = measure(lambda: NodeTask(data).train_epoch(net, optimizer), args.epochs, warmup=3)
    print(json.dumps(report))


def warn_if_floor_slower(case: str, floor_ms: Optional[float],
                         ours_ms: Optional[float]) -> bool:
    """Warn (and return ``True``) when the floor, our model with no attention at all, took
    longer than the full model: it does strictly less work, so the case's times are noise
    (another process took the cores), not a measurement."""
    if floor_ms is None or ours_ms is None or floor_ms <= ours_ms:
        return False
    log.warning('%s: the floor (no attention) took %s per epoch, longer than the full model '
                '(%s), though it does strictly less work: these timings are noise, most likely '
                'other work on the machine. Rerun on an idle machine, or with --threads 1 '
                '(OMP_NUM_THREADS=1)', case, fmt_ms(floor_ms), fmt_ms(ours_ms))
    return True


def build_parser(prog: str = 'benchmarks/epoch.py') -> argparse.ArgumentParser:
    """The benchmark's options; ``prog`` is how ``--help`` and usage errors name the
    command."""
    parser = make_parser(__doc__, prog)
    parser.add_argument('--datasets', nargs='+', choices=('cora', 'citeseer'),
                        default=['cora', 'citeseer'], help='datasets (default: both)')
    parser.add_argument('--models', nargs='+', choices=('gat', 'gatv2'),
                        default=['gat', 'gatv2'], help='models (default: both)')
    parser.add_argument('--epochs', type=positive_int, default=50,
                        help='timed epochs in each child, after 3 warm-up epochs (default: 50)')
    parser.add_argument('--rounds', type=positive_int, default=3,
                        help='children per case, alternating between cases (default: 3)')
    parser.add_argument('--impl', choices=('ours', 'pyg', 'floor'), help=argparse.SUPPRESS)
    parser.add_argument('--features', choices=('dense', 'sparse'), help=argparse.SUPPRESS)
    add_common_args(parser)
    return parser


def main(argv: Optional[List[str]] = None, prog: str = 'benchmarks/epoch.py'
         ) -> Optional[List[CaseResult]]:
    """Run the benchmark with the options in ``argv`` (default: ``sys.argv[1:]``); ``prog`` is how
    ``--help`` and usage errors name the command. Returns the results (``None`` in a child)."""
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    if args.child:
        return child(args)
    logging.basicConfig(level=logging.INFO, format='%(message)s')

    results, rows = [], []
    for dataset in args.datasets:
        for model in args.models:
            case = run_alternating('gat_pyg.bench.epoch', f'{dataset} {model}', {
                f'{impl} {features} x': ['--impl', impl, '--features', features,
                                         '--datasets', dataset, '--models', model,
                                         '--epochs', str(args.epochs)]
                for impl, features in CASES}, args)
            ours, dense, sparse, floor = case.values()
            warn_if_floor_slower(f'{dataset} {model}', floor.median_ms, ours.median_ms)
            best = min((r for r in (dense, sparse) if r.median_ms is not None),
                       key=lambda r: r.median_ms, default=None)
            log.info('%s %s: ours %s, PyG dense %s, PyG sparse %s, floor %s', dataset, model,
                     fmt_ms(ours.median_ms), fmt_ms(dense.median_ms), fmt_ms(sparse.median_ms),
                     fmt_ms(floor.median_ms))
            results += [ours, dense, sparse, floor]
            rows.append([dataset, model, fmt_ms(ours.median_ms), fmt_ms(dense.median_ms),
                         fmt_ms(sparse.median_ms),
                         ratio(ours.median_ms, best.median_ms if best else None),
                         fmt_ms(floor.median_ms),
                         ratio(floor.median_ms, best.median_ms if best else None),
                         fmt_mib(ours.peak_mib), fmt_mib(best.peak_mib if best else None)])
    print(format_table(['dataset', 'model', 'ours (sparse x)', 'PyG dense x', 'PyG sparse x',
                        'speed-up vs PyG best', 'floor (no attention)',
                        'floor vs PyG best', 'ours peak', 'PyG best peak'], rows))
    write_json(args.json, results)
    return results


if __name__ == '__main__':
    main()

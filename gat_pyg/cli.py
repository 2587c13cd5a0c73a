"""The ``gat-pyg`` command: ``train`` one configuration, ``reproduce`` the GAT paper's table.

Each subcommand is one ``add_<name>_command(subparsers)`` function registered in
:data:`COMMANDS`; it builds its parser and sets ``handler``, the function that runs it and
returns the exit status. A new subcommand (``bench``) is one more entry there.
"""
import argparse
import importlib
import logging
import sys
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence

from tqdm.contrib.logging import logging_redirect_tqdm

from gat_pyg.data.planetoid import DATASETS, MIRROR_ENV, ROOT_ENV
from gat_pyg.data.ppi import load_ppi
from gat_pyg.train.config import (INDUCTIVE_DATASETS, MODEL_NAMES, TrainConfig, config_fields,
                                  is_list_field, load_config, parse_override, type_name)
from gat_pyg.train.loop import load_data, run_dir
from gat_pyg.train.reproduce import RESULT_FILES, format_table, reproduce
from gat_pyg.train.tasks import launch

log = logging.getLogger('gat_pyg')

_OVERRIDE_PREFIX = 'override_'


def add_train_command(subparsers: Any) -> None:
    """``gat-pyg train``: one run of one configuration."""
    parser = subparsers.add_parser(
        'train', help='train one configuration',
        description='Train one model on one Planetoid dataset (or on PPI, inductively), test '
                    'its checkpoint, and write the run folder '
                    'OUT/runs/<dataset>_<model>/seed_<seed>/ (config.yaml, metrics.csv, '
                    'checkpoint.pt, result.json). Any config key can be overridden as --key '
                    'value. Under torchrun (python -m gat_pyg.train is this command) the ranks '
                    'share the training nodes and rank 0 writes the run folder.',
        parents=[_common_options()])
    parser.add_argument('--config', type=Path, default=None,
                        help='YAML config file, e.g. configs/cora_gat.yaml (none: the built-in '
                             "defaults, the paper's GAT on Cora)")
    parser.add_argument('--out', type=Path, default=Path('results'),
                        help='output folder; the run goes into OUT/runs/<dataset>_<model>/'
                             'seed_<seed>/ (default: %(default)s)')
    _add_config_overrides(parser, exclude=('sparse_features',))
    parser.set_defaults(handler=_run_train)


def add_reproduce_command(subparsers: Any) -> None:
    """``gat-pyg reproduce``: the paper's table over seeds."""
    parser = subparsers.add_parser(
        'reproduce', help="reproduce the GAT paper's accuracy table",
        description="Train each (dataset, model) with configs/<dataset>_<model>.yaml over seeds "
                    '0..RUNS-1, print mean ± std test accuracy beside the paper, and write '
                    'OUT/results.{json,csv,md} and one folder per run under OUT/runs/. Runs '
                    'already finished in OUT are skipped, so an interrupted reproduction '
                    'resumes where it stopped. Config keys other than dataset, model and seed '
                    'can be overridden for every run as --key value.',
        parents=[_common_options()])
    parser.add_argument('--datasets', nargs='+', default=['cora', 'citeseer'],
                        choices=list(DATASETS), metavar='NAME',
                        help=f"datasets, any of {', '.join(DATASETS)} (default: %(default)s)")
    parser.add_argument('--models', nargs='+', default=list(MODEL_NAMES),
                        choices=list(MODEL_NAMES), metavar='NAME',
                        help=f"models, any of {', '.join(MODEL_NAMES)} (default: %(default)s)")
    parser.add_argument('--runs', type=int, default=10,
                        help='seeds per (dataset, model): 0..RUNS-1 (default: %(default)s)')
    parser.add_argument('--out', type=Path, default=Path('results'),
                        help='output folder, reused: finished runs are skipped '
                             '(default: %(default)s)')
    parser.add_argument('--config-dir', type=Path, default=None,
                        help='folder of the <dataset>_<model>.yaml files (default: configs/ '
                             'of the source checkout, else ./configs)')
    _add_config_overrides(parser, exclude=('dataset', 'model', 'seed', 'sparse_features',
                                           'graphs_per_batch'))
    parser.set_defaults(handler=_run_reproduce)


BENCHMARKS = {
    'epoch': 'gat_pyg.bench.epoch',
    'layer': 'gat_pyg.bench.layer',
    'minibatch': 'gat_pyg.bench.minibatch',
    'ddp': 'gat_pyg.bench.ddp',
}
"""``gat-pyg bench NAME`` -> the module whose ``main(argv)`` runs it (``benchmarks/NAME.py``)."""


def add_bench_command(subparsers: Any) -> None:
    """``gat-pyg bench``: our layers against PyG's, timed in the same run."""
    parser = subparsers.add_parser(
        'bench', help="time our layers against PyG's",
        description="Run one benchmark (the same as python benchmarks/NAME.py from a source "
                    "checkout): 'epoch' = paper-GAT training epochs on Cora and CiteSeer, "
                    "'layer' = one layer forward + backward on random graphs with 1M-20M "
                    "edges. Every case runs in a child process; the table gives medians, "
                    "speed-ups and peak memory. 'gat-pyg bench NAME --help' lists its options.")
    parser.add_argument('benchmark', choices=sorted(BENCHMARKS), help='which benchmark')
    parser.add_argument('options', nargs=argparse.REMAINDER,
                        help="the benchmark's own options")
    parser.set_defaults(handler=_run_bench)


COMMANDS: Dict[str, Callable[[Any], None]] = {
    'train': add_train_command,
    'reproduce': add_reproduce_command,
    'bench': add_bench_command,
}
"""Subcommand name -> function adding its parser."""


def build_parser() -> argparse.ArgumentParser:
    """The ``gat-pyg`` parser with every registered subcommand."""
    parser = argparse.ArgumentParser(
        prog='gat-pyg', description='Graph attention networks for PyTorch Geometric: train '
                                    "models and reproduce the GAT paper's results.")
    subparsers = parser.add_subparsers(dest='command', required=True, metavar='COMMAND')
    for add_command in COMMANDS.values():
        add_command(subparsers)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of the ``gat-pyg`` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        overrides = _collect_overrides(args)
    except ValueError as err:
        parser.error(str(err))
    logging.basicConfig(level=getattr(args, 'log_level', 'info').upper(), stream=sys.stderr,
                        format='%(levelname)s %(name)s: %(message)s')
    with logging_redirect_tqdm():
        try:
            return args.handler(args, overrides)
        except (ValueError, TypeError, OSError) as err:
            # Bad configs, checksum mismatches and missing data: the message says what to do.
            log.error('%s', err)
            return 1


def _run_train(args: argparse.Namespace, overrides: Dict[str, Any]) -> int:
    config = (load_config(args.config, overrides) if args.config is not None
              else TrainConfig.from_dict(overrides))
    folder = run_dir(args.out, config)
    # How the run trains (one process or this rank of torchrun, full or mini-batch, on which
    # device) is the dispatch's decision; the command only says how to read the data.
    result = launch(config, lambda: _load_train_data(args, config), folder,
                    progress=not args.no_progress)
    if result is None:          # a torchrun rank other than 0: rank 0 prints and writes
        return 0
    score = {'acc': 'Test acc (%)', 'micro_f1': 'Test micro-F1 (%)'}[result.metric]
    print(f'| Dataset | Model | Seed | {score} | Val {score[5:]} | Checkpoint epoch | Epochs '
          '| Time (s) |\n|---|---|---:|---:|---:|---:|---:|---:|\n'
          f'| {result.dataset} | {result.model} | {result.seed} | {100 * result.test_acc:.1f} '
          f'| {100 * result.val_acc:.1f} | {result.best_epoch} | {result.epochs} '
          f'| {result.seconds:.1f} |')
    log.info('wrote %s', folder)
    return 0


def _load_train_data(args: argparse.Namespace, config: TrainConfig) -> Any:
    if config.dataset not in INDUCTIVE_DATASETS:
        return load_data(config, root=args.data_root, mirror=args.mirror,
                         verify=not args.no_verify)
    for flag, given in (('--mirror', args.mirror is not None), ('--no-verify', args.no_verify)):
        if given:
            raise ValueError(f'{flag} applies to the Planetoid files only, not to '
                             f'{config.dataset!r} (read from --data-root)')
    return load_ppi(args.data_root)


def _run_reproduce(args: argparse.Namespace, overrides: Dict[str, Any]) -> int:
    rows = reproduce(args.datasets, args.models, args.runs, args.out,
                     config_dir=args.config_dir, overrides=overrides, root=args.data_root,
                     mirror=args.mirror, verify=not args.no_verify,
                     progress=not args.no_progress)
    print(format_table(rows), end='')
    log.info('wrote %s and one folder per run under %s', ', '.join(
        str(args.out / name) for name in RESULT_FILES), args.out / 'runs')
    return 0


def _run_bench(args: argparse.Namespace, overrides: Dict[str, Any]) -> int:
    importlib.import_module(BENCHMARKS[args.benchmark]).main(args.options)
    return 0


def _common_options() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group('data and output')
    group.add_argument('--data-root', default=None,
                       help=f'dataset root (default: ${ROOT_ENV}, else '
                            '~/.cache/gat_pyg/planetoid)')
    group.add_argument('--mirror', default=None,
                       help='folder or URL holding the flat ind.<name>.* Planetoid files '
                            f'(default: ${MIRROR_ENV}, else the upstream repository)')
    group.add_argument('--no-verify', action='store_true',
                       help='load raw files without checking their SHA-256 (they are pickles: '
                            'only for files you trust)')
    group.add_argument('--dense-features', action='store_true',
                       help='keep node features dense (default: torch.sparse: the same model, '
                            'faster; dropout masks and so seeded runs differ)')
    group.add_argument('--no-progress', action='store_true', help='hide the progress bars')
    group.add_argument('--log-level', default='info',
                       choices=['debug', 'info', 'warning', 'error'],
                       help='logging level (default: %(default)s)')
    return parent


def _add_config_overrides(parser: argparse.ArgumentParser, exclude: Sequence[str]) -> None:
    group = parser.add_argument_group(
        'config overrides', 'each replaces the key of the same name in the config file; '
                            'dashes or underscores both work (--weight-decay, --weight_decay)')
    for f in config_fields():
        if f.name in exclude:
            continue
        names = [f'--{f.name}']
        if '_' in f.name:
            names.insert(0, f"--{f.name.replace('_', '-')}")
        extra: List[str] = []
        if f.metadata['choices']:
            extra.append(f"one of {', '.join(f.metadata['choices'])}")
        if f.metadata['models']:
            extra.append(f"models {', '.join(f.metadata['models'])} only")
        if f.metadata.get('datasets'):
            extra.append(f"datasets {', '.join(f.metadata['datasets'])} only")
        if f.type is bool:
            extra.append('true or false')
        extra.append(f'built-in default {f.default}')
        # A list key takes its items as separate words (--num-neighbors 10 10); they reach
        # parse_override as one list. Its metavar names the item type.
        words = dict(nargs='+') if is_list_field(f) else {}
        metavar = type_name(f.type).replace('list of ', '').replace(' or null', '').upper()
        group.add_argument(*names, dest=_OVERRIDE_PREFIX + f.name, default=argparse.SUPPRESS,
                           metavar=metavar, help=f"{f.metadata['help']} ({'; '.join(extra)})",
                           **words)


def _collect_overrides(args: argparse.Namespace) -> Dict[str, Any]:
    # Typed through the config module, so a CLI value meets the same checks as a YAML one.
    overrides = {name[len(_OVERRIDE_PREFIX):]: parse_override(name[len(_OVERRIDE_PREFIX):], text)
                 for name, text in vars(args).items() if name.startswith(_OVERRIDE_PREFIX)}
    if getattr(args, 'dense_features', False):
        overrides['sparse_features'] = False
    return overrides


if __name__ == '__main__':
    sys.exit(main())

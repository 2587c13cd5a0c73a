"""The ``gat-pyg`` command: ``train`` one configuration, ``reproduce`` the GAT paper's table,
``bench`` our layers against PyG's.

Each subcommand is one ``add_<name>_command(subparsers)`` function registered in
:data:`COMMANDS`; it builds its parser and sets ``handler``, the function that runs it and
returns the exit status. Handlers import what they run, and ``train`` and ``reproduce`` read
and check every config (and the run folders) before they import torch: this module imports no
torch, so ``gat-pyg --help``, argument errors and config errors answer at once (the package's
``__init__`` files import lazily, see :mod:`gat_pyg._lazy`).

Exit status: 0 done, 1 an error the message explains (bad config, missing data, unwritable
folder, a missing optional package), 2 a command-line usage error, 130 interrupted (Ctrl-C).
Errors are one line, first, never a traceback, naming the argument or key, where its value came
from, the closest known name and what to do; a usage error adds one line saying where the
options are listed (not the usage block). ``--help`` lists the options in groups, the common
ones first.
"""
import argparse
import logging
import os
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Sequence

import gat_pyg
from gat_pyg.data.names import DATASETS, DEFAULT_ROOT, MIRROR_ENV, ROOT_ENV
from gat_pyg.train.config import resolve_config
from gat_pyg.train.overrides import parse_override
from gat_pyg.train.schema import (COMMAND_LINE, GROUPS, INDUCTIVE_DATASETS, MODEL_NAMES,
                                  REQUIRED, config_fields, is_list_field, neutral_default,
                                  type_name)
from gat_pyg.train.suggestions import closest_option, did_you_mean

if TYPE_CHECKING:
    from gat_pyg.train.schema import TrainConfig

log = logging.getLogger('gat_pyg')

_OVERRIDE_PREFIX = 'override_'
TRAIN_OUT = Path('train-results')
"""``gat-pyg train``'s default output folder: apart from ``reproduce``'s, so a single run never
lands in (and replaces) a seed folder of a reproduction's table."""
REPRODUCE_OUT = Path('results')
"""``gat-pyg reproduce``'s default output folder."""
INTERRUPTED = 130
"""Exit status after Ctrl-C (128 + SIGINT), as shells report it."""


def add_train_command(subparsers: Any) -> None:
    """``gat-pyg train``: one run of one configuration."""
    parser = subparsers.add_parser(
        'train', help='train one configuration',
        usage='%(prog)s [--config FILE] [--dataset NAME] [--model NAME] [--seed N] '
              '[--out DIR] [--KEY VALUE ...]',
        description='Train one model on one Planetoid dataset (or on PPI, inductively), test '
                    'its checkpoint, and write the run folder '
                    'OUT/runs/<dataset>_<model>/seed_<seed>/ (config.yaml, metrics.csv, '
                    'checkpoint.pt, result.json). Without --config the settings are '
                    'configs/<dataset>_<model>.yaml for the --dataset and --model given '
                    '(default cora and gat), the paper\'s settings for that pair. Any config '
                    'key can be overridden as --key value. Under torchrun (python -m '
                    'gat_pyg.train is this command) the ranks share the training nodes and '
                    'rank 0 writes the run folder.')
    common = parser.add_argument_group('common options')
    common.add_argument('--config', type=Path, default=None, metavar='FILE',
                        help='YAML config file, e.g. configs/cora_gat.yaml; keys it leaves out '
                             'come from configs/<dataset>_<model>.yaml of its dataset and model '
                             '(default: that file for --dataset and --model). A file may not be '
                             'combined with a --model (--dataset) that does not use all its '
                             'keys: that is an error naming the right file')
    _add_config_overrides(parser, common, exclude=('sparse_features',))
    common.add_argument('--out', type=Path, default=TRAIN_OUT,
                        help='output folder; the run goes into OUT/runs/<dataset>_<model>/'
                             'seed_<seed>/ (default: %(default)s, apart from reproduce\'s '
                             'results)')
    _add_file_options(parser)
    parser.set_defaults(handler=_run_train, command_parser=parser,
                        interrupted=_train_interrupted)


def add_reproduce_command(subparsers: Any) -> None:
    """``gat-pyg reproduce``: the paper's table over seeds."""
    parser = subparsers.add_parser(
        'reproduce', help="reproduce the GAT paper's accuracy table",
        usage='%(prog)s [--datasets NAME ...] [--models NAME ...] [--runs N] [--out DIR] '
              '[--KEY VALUE ...]',
        description="Train each (dataset, model) with configs/<dataset>_<model>.yaml over seeds "
                    '0..RUNS-1, print mean ± std test accuracy beside the paper (with the '
                    "mean's standard error and the runs that stopped early), and write "
                    'OUT/results.{json,csv,md} and one folder per run under OUT/runs/. Runs '
                    'already finished in OUT are skipped, so an interrupted reproduction '
                    'resumes where it stopped; a finished run with other settings is an error '
                    'unless --overwrite. Config keys other than dataset, model and seed '
                    'can be overridden for every run as --key value.')
    common = parser.add_argument_group('common options')
    common.add_argument('--datasets', nargs='+', default=['cora', 'citeseer'],
                        type=_name_of(DATASETS, 'dataset'), metavar='NAME',
                        help=f"datasets, any of {', '.join(DATASETS)}, any case "
                             '(default: %(default)s)')
    common.add_argument('--models', nargs='+', default=list(MODEL_NAMES),
                        type=_name_of(MODEL_NAMES, 'model'), metavar='NAME',
                        help=f"models, any of {', '.join(MODEL_NAMES)}, any case "
                             '(default: %(default)s)')
    common.add_argument('--runs', type=_positive_int, default=10,
                        help='seeds per (dataset, model): 0..RUNS-1 (default: %(default)s)')
    _add_config_overrides(parser, common, exclude=('dataset', 'model', 'seed',
                                                   'sparse_features', 'graphs_per_batch'))
    common.add_argument('--out', type=Path, default=REPRODUCE_OUT,
                        help='output folder, reused: finished runs are skipped '
                             '(default: %(default)s)')
    _add_file_options(parser)
    parser.set_defaults(handler=_run_reproduce, command_parser=parser,
                        interrupted=_reproduce_interrupted)
    parser.instead = {f'--{key}': why for key, why in REPRODUCE_INSTEAD.items()}


REPRODUCE_INSTEAD = {
    'seed': 'reproduce trains seeds 0..RUNS-1 of every pair: choose how many with --runs '
            "(one run of one seed is 'gat-pyg train --seed N')",
}
"""Config keys ``reproduce`` sets itself, and what to write instead of ``--key``: the closest
option by spelling would mislead (``--seed`` is nearest to ``--heads``). (``--dataset`` and
``--model`` need no advice: argparse reads them as ``--datasets`` / ``--models``.)"""


BENCHMARKS = {
    'epoch': ('gat_pyg.bench.epoch', 'paper-GAT / GATv2 training epochs on Cora and CiteSeer'),
    'layer': ('gat_pyg.bench.layer', 'layers forward + backward on random graphs: one layer '
                                     '(1M-20M edges), a new graph per step, the two-layer '
                                     'model'),
    'minibatch': ('gat_pyg.bench.minibatch', 'mini-batch GAT epochs (NeighborLoader batches '
                                             'sampled beforehand) on a 1M-node / 20M-edge '
                                             'random graph'),
    'ddp': ('gat_pyg.bench.ddp', 'data-parallel mini-batch training at 1 and 2 torchrun '
                                 'processes: seed nodes per second'),
}
"""``gat-pyg bench NAME`` -> (the module whose ``main(argv, prog)`` runs it, i.e.
``benchmarks/NAME.py``; what it measures)."""


def add_bench_command(subparsers: Any) -> None:
    """``gat-pyg bench``: our layers against PyG's, timed in the same run."""
    listing = '; '.join(f"'{name}' = {what}" for name, (_, what) in BENCHMARKS.items())
    parser = subparsers.add_parser(
        'bench', help="time our layers against PyG's",
        description=f'Run one benchmark (the same as python benchmarks/NAME.py from a source '
                    f'checkout): {listing}. Every case runs in a child process; the table '
                    "gives medians, speed-ups and peak memory. 'gat-pyg bench NAME --help' "
                    'lists its options. Run on an idle machine: where other work shares the '
                    'cores, pass --threads 1 (or set OMP_NUM_THREADS=1); a benchmark warns when '
                    'the load average exceeds the cores.')
    parser.add_argument('benchmark', choices=list(BENCHMARKS), help='which benchmark')
    parser.add_argument('options', nargs=argparse.REMAINDER,
                        help="the benchmark's own options")
    parser.set_defaults(handler=_run_bench, command_parser=parser,
                        interrupted=lambda args: 'no table was printed')


COMMANDS: Dict[str, Callable[[Any], None]] = {
    'train': add_train_command,
    'reproduce': add_reproduce_command,
    'bench': add_bench_command,
}
"""Subcommand name -> function adding its parser."""


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line, first: ``gat-pyg train: error: ...``, with
    the closest option for an unknown one, then where to read the options (not the usage
    block, which would push the line that matters off the top of a small terminal)."""
    instead: Dict[str, str] = {}
    """``{'--option': what to write instead}`` for options this command does not take."""

    def error(self, message: str):
        if message.startswith('unrecognized arguments:'):
            message += _suggest_options(self, message.split(':', 1)[1].split())
        self.exit(2, f"{self.prog}: error: {message}\n(run '{self.prog} --help' for the "
                     'options)\n')


def build_parser() -> argparse.ArgumentParser:
    """The ``gat-pyg`` parser with every registered subcommand."""
    parser = _Parser(
        prog='gat-pyg', description='Graph attention networks for PyTorch Geometric: train '
                                    "models, reproduce the GAT paper's results, benchmark the "
                                    "layers against PyG's.")
    parser.add_argument('--version', action='version',
                        version=f'gat-pyg {gat_pyg.__version__}')
    subparsers = parser.add_subparsers(dest='command', required=True, metavar='COMMAND',
                                       parser_class=_Parser)
    for add_command in COMMANDS.values():
        add_command(subparsers)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of the ``gat-pyg`` console script; returns the exit status."""
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    command_parser = args.command_parser
    if unknown:
        # Reported by the subcommand, so the usage shown is the subcommand's.
        command_parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    try:
        overrides = _collect_overrides(args)
    except ValueError as err:
        command_parser.error(str(err))
    logging.basicConfig(level=getattr(args, 'log_level', 'info').upper(), stream=sys.stderr,
                        format='%(levelname)s %(name)s: %(message)s')
    warnings.showwarning = _log_warning
    if hasattr(args, 'no_progress'):
        # Bars only on a terminal: redrawn into a log file they are thousands of lines.
        args.no_progress = args.no_progress or not sys.stderr.isatty()
    from tqdm.contrib.logging import logging_redirect_tqdm

    with logging_redirect_tqdm():
        try:
            if getattr(args, 'out', None) is not None and writes_outputs():
                check_writable(args.out, '--out')
            return args.handler(args, overrides)
        except KeyboardInterrupt as interrupt:
            log.error('interrupted: %s', args.interrupted(args, interrupt))
            return INTERRUPTED
        except (ValueError, TypeError) as err:
            # Bad configs, checksum mismatches: the message says what and where.
            log.error('%s', err)
            return 1
        except OSError as err:
            # Missing data or config files, unwritable folders, failed downloads.
            log.error('%s', describe_os_error(err))
            return 1
        except ImportError as err:
            # An optional dependency a setting needs (torch_sparse for mini-batch training).
            log.error('%s; install it (README, "Install"), or run without the setting that '
                      'needs it', err)
            return 1


def _log_warning(message, category, filename, lineno, file=None, line=None) -> None:
    # A library's warning as one log line, like every other message (not two lines with the
    # source line that raised it).
    logging.getLogger('py.warnings').warning('%s: %s', category.__name__, message)


def _train_config(args: argparse.Namespace, overrides: Dict[str, Any]):
    """The run's config: --config (or the pair's file) with the command line's overrides."""
    return resolve_config(args.config, overrides, config_dir=args.config_dir,
                          overrides_origin=COMMAND_LINE)


def _check_run_folder(folder: Path, overwrite: bool) -> None:
    """Refuse to replace a finished run (one with a ``result.json``) unless ``--overwrite``."""
    from gat_pyg.train.results import RESULT_FILE

    if (folder / RESULT_FILE).is_file():
        if not overwrite:
            raise ValueError(f'{folder} already holds a finished run ({RESULT_FILE} is there); '
                             'pass --overwrite to replace it, or choose another --out')
        log.warning('replacing the finished run in %s (--overwrite)', folder)
    elif folder.is_dir() and any(folder.iterdir()):
        log.info('replacing the unfinished run in %s', folder)


def _run_train(args: argparse.Namespace, overrides: Dict[str, Any]) -> int:
    from gat_pyg.train.results import run_dir

    # The config and the run folder are checked before torch is imported: a typo is reported
    # in a fraction of a second, not after the seconds torch takes to load.
    config = _train_config(args, overrides)
    folder = run_dir(args.out, config)
    _check_run_folder(folder, args.overwrite)
    from gat_pyg.train.tasks import launch

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


def _load_train_data(args: argparse.Namespace, config: 'TrainConfig') -> Any:
    from gat_pyg.data.ppi import load_ppi
    from gat_pyg.train.build import load_data

    if config.dataset not in INDUCTIVE_DATASETS:
        return load_data(config, root=args.data_root, mirror=args.mirror,
                         verify=not args.no_verify)
    for flag, given in (('--mirror', args.mirror is not None), ('--no-verify', args.no_verify)):
        if given:
            raise ValueError(f'{flag} applies to the Planetoid files only, not to '
                             f'{config.dataset!r} (read from --data-root)')
    return load_ppi(args.data_root)


def _run_reproduce(args: argparse.Namespace, overrides: Dict[str, Any]) -> int:
    from gat_pyg.train.reproduce import RESULT_FILES, format_table, reproduce

    rows = reproduce(args.datasets, args.models, args.runs, args.out,
                     config_dir=args.config_dir, overrides=overrides, root=args.data_root,
                     mirror=args.mirror, verify=not args.no_verify,
                     progress=not args.no_progress, overwrite=args.overwrite,
                     overrides_origin=COMMAND_LINE)
    print(format_table(rows), end='')
    log.info('wrote %s and one folder per run under %s', ', '.join(
        str(args.out / name) for name in RESULT_FILES), args.out / 'runs')
    return 0


def _run_bench(args: argparse.Namespace, overrides: Dict[str, Any]) -> int:
    import importlib

    module, _ = BENCHMARKS[args.benchmark]
    importlib.import_module(module).main(args.options, prog=f'gat-pyg bench {args.benchmark}')
    return 0


def _train_interrupted(args: argparse.Namespace, interrupt: BaseException) -> str:
    return (f'the run did not finish (its folder under {args.out / "runs"} has no result.json); '
            'run the same command again to train it from the start')


def _reproduce_interrupted(args: argparse.Namespace, interrupt: BaseException) -> str:
    done = getattr(interrupt, 'finished', None)
    total = getattr(interrupt, 'total', None)
    counted = f'{done} of {total} runs are finished in {args.out}' if total is not None \
        else f'the runs finished so far are in {args.out}'
    return (f'{counted}; run the same command again to resume: finished runs are skipped, '
            'the interrupted one starts over')


def writes_outputs() -> bool:
    """Whether this process writes the run's files: always, except a ``torchrun`` rank other
    than 0 (``RANK``), whose rank 0 writes them. Only that process probes ``--out``: probes of
    several ranks at once raced, one removing the folder it had just created while another
    checked it (``cannot write there: file exists``)."""
    return os.environ.get('RANK', '0') == '0'


def check_writable(folder: Path, option: str) -> None:
    """Refuse, before any work, an output folder that cannot be created or written: create it
    (and its missing parents), write and delete a probe file, and remove again the folders it
    created, so that a run failing later on a bad config leaves nothing behind.

    Raises:
        OSError: naming ``option``, the folder and why (a file in the way, a read-only file
            system, no permission).
    """
    import tempfile

    folder = Path(folder)
    created = []
    missing = folder.absolute()
    while not missing.exists() and missing != missing.parent:
        created.append(missing)
        missing = missing.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as err:
        in_the_way = next((p for p in folder.absolute().parents if p.exists()), None)
        if in_the_way is not None and not in_the_way.is_dir():
            why = f'{in_the_way} is a file, not a folder'
        else:
            why = err.strerror or str(err)
            why = why[0].lower() + why[1:]
            if err.filename and Path(err.filename) != folder:
                why += f' ({err.filename})'
        raise OSError(f'{option} {folder}: cannot write there: {why}; choose another folder '
                      f'with {option}') from None
    finally:
        for path in created:                      # the deepest first; only if still empty
            try:
                path.rmdir()
            except OSError:
                break


def describe_os_error(err: OSError) -> str:
    """One line for an ``OSError``: our own messages as they are; the system's ``[Errno 30]
    Read-only file system: 'x'`` as ``x: read-only file system``."""
    if err.strerror and err.filename:
        return f'{err.filename}: {err.strerror[0].lower()}{err.strerror[1:]}'
    return str(err)


def _add_file_options(parser: argparse.ArgumentParser) -> None:
    """The options of ``train`` and ``reproduce`` about files, output and logging, listed last
    in ``--help``."""
    group = parser.add_argument_group('files, output and logging')
    group.add_argument('--overwrite', action='store_true',
                       help='replace finished runs in OUT (train: the run folder; reproduce: '
                            'runs trained with other settings); without it they are an error')
    group.add_argument('--config-dir', type=Path, default=None, metavar='DIR',
                       help='folder of the <dataset>_<model>.yaml files (default: the configs '
                            'shipped in the package, configs/ in a source checkout)')
    group.add_argument('--data-root', default=None, metavar='DIR',
                       help=f'dataset root (default: ${ROOT_ENV}, else {DEFAULT_ROOT})')
    group.add_argument('--mirror', default=None,
                       help='folder or URL holding the flat ind.<name>.* Planetoid files '
                            f'(default: ${MIRROR_ENV}, else the upstream repository)')
    group.add_argument('--no-verify', action='store_true',
                       help='load raw files without checking their SHA-256 (they are pickles: '
                            'only for files you trust)')
    group.add_argument('--dense-features', action='store_true',
                       help='keep node features dense (default: torch.sparse: the same model, '
                            'faster; dropout masks and so seeded runs differ)')
    group.add_argument('--no-progress', action='store_true',
                       help='hide the progress bars (they are shown only when stderr is a '
                            'terminal)')
    group.add_argument('--log-level', default='info',
                       choices=['debug', 'info', 'warning', 'error'],
                       help='logging level (default: %(default)s)')


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected an integer >= 1, got {text!r}') from None
    if value < 1:
        raise argparse.ArgumentTypeError(f'expected an integer >= 1, got {value}')
    return value


def _name_of(names: Sequence[str], kind: str) -> Callable[[str], str]:
    """An argparse type accepting any of ``names`` in any case (as the Python API does)."""
    def name(text: str) -> str:
        if text.lower() not in names:
            raise argparse.ArgumentTypeError(f'unknown {kind} {text!r}'
                                             f'{did_you_mean(text, list(names))}; expected one '
                                             f"of {', '.join(names)}")
        return text.lower()
    name.__name__ = kind
    return name


def _suggest_options(parser: argparse.ArgumentParser, words: Sequence[str]) -> str:
    """What to write instead of each unknown option among ``words``: the parser's own advice
    for options it refuses on purpose (``reproduce --seed``), else the closest option by
    spelling or by meaning (``--learning-rate`` -> ``--lr``)."""
    options = list(parser._option_string_actions)
    hints = []
    for word in words:
        if not word.startswith('--'):
            continue
        option = word.split('=')[0]
        instead = getattr(parser, 'instead', {}).get(option.replace('_', '-'))
        if instead:
            hints.append(f'{option}: {instead}')
            continue
        close = closest_option(option, options)
        if close:
            hints.append(f'{option} -> {close}')
    if not hints:
        return ''
    if all(' -> ' in hint for hint in hints):
        return f" (did you mean: {', '.join(hints)}?)"
    return f" ({'; '.join(hints)})"


def _add_config_overrides(parser: argparse.ArgumentParser, common: Any,
                          exclude: Sequence[str]) -> None:
    """One ``--key`` (and ``--key_with_underscores``) option per config key, in the groups of
    the schema (:data:`gat_pyg.train.schema.GROUPS`); the ``run`` keys go into ``common``."""
    groups = {'run': common}
    for name in GROUPS[1:]:
        groups[name] = parser.add_argument_group(
            f'config overrides: {name}', 'each replaces the key of the same name in the config '
                                         'file' if name == GROUPS[1] else None)
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
        default = neutral_default(f)
        extra.append("default: the config file's" if default is REQUIRED else
                     f"default: the config file's, else {default}")
        # A list key takes its items as separate words (--num-neighbors 10 10); they reach
        # parse_override as one list. Its metavar names the item type.
        words = dict(nargs='+') if is_list_field(f) else {}
        metavar = type_name(f.type).replace('list of ', '').replace(' or null', '').upper()
        groups[f.metadata['group']].add_argument(
            *names, dest=_OVERRIDE_PREFIX + f.name, default=argparse.SUPPRESS, metavar=metavar,
            help=f"{f.metadata['help']} ({'; '.join(extra)})", **words)


def _collect_overrides(args: argparse.Namespace) -> Dict[str, Any]:
    # Typed through the config module, so a CLI value meets the same checks as a YAML one.
    overrides = {name[len(_OVERRIDE_PREFIX):]: parse_override(name[len(_OVERRIDE_PREFIX):], text)
                 for name, text in vars(args).items() if name.startswith(_OVERRIDE_PREFIX)}
    if getattr(args, 'dense_features', False):
        overrides['sparse_features'] = False
    return overrides


if __name__ == '__main__':
    sys.exit(main())

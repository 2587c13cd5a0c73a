"""Reproduce the GAT paper's transductive table: every (dataset, model) over seeds ``0..runs-1``.

Output folder::

    out/results.json   {"rows": [{dataset, model, runs, mean, std, paper, seconds, test_acc}]}
    out/results.csv    the same rows without the per-seed list
    out/results.md     the table printed by the CLI
    out/runs/<dataset>_<model>/seed_<k>/   one run: config.yaml, metrics.csv, checkpoint.pt,
                                           result.json (see :func:`gat_pyg.train.train_run`)

Every file is written atomically, and a run folder's ``result.json`` is written last, so a rerun
with the same ``out`` skips the runs that finished (with the same config) and trains the rest.
A finished run with another config is not replaced unless asked (``overwrite``): the check runs
before anything trains. Interrupted (Ctrl-C), :func:`reproduce` raises
:class:`ReproduceInterrupted`, which says how many runs had finished.
"""
import json
import logging
import statistics
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from torch_geometric.data import Data
from tqdm.auto import tqdm

from gat_pyg.data.planetoid import planetoid_name
from gat_pyg.train.config import MODEL_NAMES, TrainConfig, config_path, load_config
from gat_pyg.train.atomic import atomic_write_csv, atomic_write_json, atomic_write_text
from gat_pyg.train.loop import RESULT_FILE, RunResult, load_data, run_dir
from gat_pyg.train.tasks import train_run

log = logging.getLogger(__name__)

PAPER_ACCURACY: Dict[Tuple[str, str], float] = {
    ('cora', 'gat'): 0.830, ('citeseer', 'gat'): 0.725, ('pubmed', 'gat'): 0.790,
    ('cora', 'gcn'): 0.815, ('citeseer', 'gcn'): 0.703, ('pubmed', 'gcn'): 0.790,
    ('cora', 'mlp'): 0.551, ('citeseer', 'mlp'): 0.465, ('pubmed', 'mlp'): 0.714,
}
"""Mean test accuracy in Table 3 of the GAT paper (GATv2 is not in it)."""
RESULT_FILES = ('results.json', 'results.csv', 'results.md')
RUNS_DIR = 'runs'
_FIXED_BY_REPRODUCE = ('dataset', 'model', 'seed')
_CSV_COLUMNS = ('dataset', 'model', 'runs', 'mean', 'std', 'paper', 'seconds')


@dataclass
class ResultRow:
    """One (dataset, model) line of the table; accuracies are fractions, ``std`` is the
    population standard deviation over seeds, ``seconds`` the summed run times."""
    dataset: str
    model: str
    runs: int
    mean: float
    std: float
    paper: Optional[float]
    seconds: float
    test_acc: List[float]


class ReproduceInterrupted(KeyboardInterrupt):
    """Ctrl-C during :func:`reproduce`: ``finished`` of the ``total`` runs had finished (their
    folders hold a ``result.json``; rerunning skips them)."""

    def __init__(self, finished: int, total: int):
        super().__init__(f'{finished} of {total} runs finished')
        self.finished = finished
        self.total = total


def reproduce(
    datasets: Sequence[str],
    models: Sequence[str],
    runs: int,
    out: Union[str, Path],
    *,
    config_dir: Optional[Union[str, Path]] = None,
    overrides: Optional[Mapping[str, Any]] = None,
    root: Optional[Union[str, Path]] = None,
    mirror: Optional[str] = None,
    verify: bool = True,
    progress: bool = True,
    overwrite: bool = False,
    overrides_origin: str = 'overrides',
) -> List[ResultRow]:
    """Train every (dataset, model) over seeds ``0..runs-1`` with ``configs/<dataset>_<model>.yaml``
    and write the table (see the module docstring for the files).

    Args:
        datasets: Planetoid names (``'cora'``, ``'citeseer'``, ``'pubmed'``).
        models: Model names (``'gat'``, ``'gatv2'``, ``'gcn'``, ``'mlp'``).
        runs (int): Seeds per (dataset, model).
        out: Output folder; finished runs already in it are reused.
        config_dir: Folder of the YAML configs.
            (default: :func:`gat_pyg.train.config.default_config_dir`)
        overrides: Config values applied on top of every file (not ``dataset``, ``model`` or
            ``seed``, which the command sets).
        root, mirror, verify: As :func:`gat_pyg.data.load_planetoid`.
        progress (bool): Show progress bars (all runs, and each run's epochs).
        overwrite (bool): Retrain finished runs in ``out`` whose config differs from this
            call's; without it they are an error, raised before anything trains.
            (default: ``False``)
        overrides_origin (str): How error messages name where ``overrides`` came from (the
            CLI: ``'command line'``). (default: ``'overrides'``)

    Returns:
        The table's rows, in the order of ``datasets`` then ``models``.

    Raises:
        ValueError: a bad argument or config, or a finished run with another config in ``out``
            (without ``overwrite``).
        ReproduceInterrupted: Ctrl-C; finished runs stay finished.
    """
    if runs < 1:
        raise ValueError(f'reproduce: runs must be >= 1, got {runs}')
    overrides = dict(overrides or {})
    fixed = sorted(set(overrides) & set(_FIXED_BY_REPRODUCE))
    if fixed:
        raise ValueError(f"reproduce: overrides may not set {', '.join(fixed)}; use the "
                         'datasets / models / runs arguments')
    datasets = [planetoid_name(name).lower() for name in datasets]
    models = [str(model).lower() for model in models]
    for model in models:
        if model not in MODEL_NAMES:
            raise ValueError(f"reproduce: unknown model {model!r}; expected one of "
                             f"{', '.join(MODEL_NAMES)}")
    out = Path(out)
    # Read every config, and look at every run folder, before training anything, so a typo or
    # a clash with earlier runs fails in a second, not an hour.
    plan = [load_config(config_path(dataset, model, config_dir),
                        dict(overrides, dataset=dataset, model=model, seed=seed),
                        overrides_origin=overrides_origin)
            for dataset in datasets for model in models for seed in range(runs)]
    finished = {}
    for config in plan:
        folder = run_dir(out, config)
        result, stored = finished_run(folder, config), stored_config(folder)
        if result is not None:
            finished[folder] = result
        elif stored is not None and not overwrite:
            raise ValueError(f'{folder} holds a finished run trained with other settings '
                             f'({_differences(stored, config.to_dict())}); pass --overwrite '
                             '(overwrite=True) to retrain it, or choose another --out')

    results: Dict[Tuple[str, str], List[RunResult]] = {}
    graphs: Dict[Tuple[Any, ...], Data] = {}
    done = 0
    try:
        with tqdm(plan, desc='reproduce', unit='run', disable=not progress) as bar:
            for config in bar:
                bar.set_postfix_str(f'{config.dataset}/{config.model} seed {config.seed}')
                folder = run_dir(out, config)
                result = finished.get(folder)
                if result is not None:
                    log.info('skipping %s (finished)', folder)
                else:
                    if stored_config(folder) is not None:
                        log.warning('retraining %s: it was trained with other settings '
                                    '(--overwrite)', folder)
                    log.info('training %s', folder)
                    data = _graph(graphs, config, root, mirror, verify)
                    result = train_run(config, data, folder, progress=progress)
                done += 1
                results.setdefault((config.dataset, config.model), []).append(result)
    except KeyboardInterrupt:
        raise ReproduceInterrupted(done, len(plan)) from None

    rows = [summarise(dataset, model, results[dataset, model])
            for dataset in datasets for model in models]
    write_results(out, rows)
    return rows


def finished_run(folder: Path, config: TrainConfig) -> Optional[RunResult]:
    """The result stored in ``folder`` if that run finished with exactly ``config``."""
    if stored_config(folder) != config.to_dict():
        return None
    return RunResult(**json.loads((folder / RESULT_FILE).read_text())['result'])


def stored_config(folder: Path) -> Optional[Dict[str, Any]]:
    """The config of the finished run in ``folder`` (``None``: no finished run there). An
    unreadable ``result.json`` (not written by this package: ours are atomic) counts as none,
    with a warning."""
    path = folder / RESULT_FILE
    if not path.is_file():
        return None
    try:
        stored = json.loads(path.read_text())
        RunResult(**stored['result'])
        return dict(stored['config'])
    except (ValueError, KeyError, TypeError) as err:
        log.warning('%s is unreadable (%s); training the run again', path, err)
        return None


def _differences(stored: Mapping[str, Any], wanted: Mapping[str, Any]) -> str:
    keys = [k for k in dict.fromkeys([*wanted, *stored]) if stored.get(k) != wanted.get(k)]
    return ', '.join(f'{k}: {stored.get(k)!r} there, {wanted.get(k)!r} now' for k in keys)


def summarise(dataset: str, model: str, results: Sequence[RunResult]) -> ResultRow:
    """Mean, std and total time of one (dataset, model)'s runs, beside the paper's number."""
    accs = [r.test_acc for r in sorted(results, key=lambda r: r.seed)]
    return ResultRow(dataset=dataset, model=model, runs=len(accs),
                     mean=statistics.fmean(accs), std=statistics.pstdev(accs),
                     paper=PAPER_ACCURACY.get((dataset, model)),
                     seconds=round(sum(r.seconds for r in results), 1), test_acc=accs)


def format_table(rows: Sequence[ResultRow]) -> str:
    """The rows as a Markdown table, accuracies in percent."""
    lines = ['| Dataset | Model | Runs | Test accuracy (%) | Paper (%) | Time (s) |',
             '|---|---|---:|---:|---:|---:|']
    for r in rows:
        paper = f'{100 * r.paper:.1f}' if r.paper is not None else '—'
        lines.append(f'| {r.dataset} | {r.model} | {r.runs} | {100 * r.mean:.1f} ± '
                     f'{100 * r.std:.1f} | {paper} | {r.seconds:.1f} |')
    return '\n'.join(lines) + '\n'


def write_results(out: Path, rows: Sequence[ResultRow]) -> None:
    """Write ``results.json``, ``results.csv`` and ``results.md`` into ``out`` atomically."""
    atomic_write_json(out / 'results.json', {'rows': [asdict(r) for r in rows]})
    atomic_write_csv(out / 'results.csv', _CSV_COLUMNS,
                     [{k: v for k, v in asdict(r).items() if k in _CSV_COLUMNS} for r in rows])
    atomic_write_text(out / 'results.md', format_table(rows))


def _graph(cache: Dict[Tuple[Any, ...], Data], config: TrainConfig, root: Any, mirror: Any,
           verify: bool) -> Data:
    # Fixed splits are shared by all seeds; a random split is drawn per seed.
    key: Tuple[Any, ...] = (config.dataset, config.split, config.sparse_features)
    if config.split == 'random':
        key += (config.seed,)
    if key not in cache:
        cache[key] = load_data(config, root=root, mirror=mirror, verify=verify)
    return cache[key]

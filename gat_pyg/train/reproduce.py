"""Reproduce the GAT paper's transductive table: every (dataset, model) over seeds ``0..runs-1``.

Output folder::

    out/results.json   {"rows": [{dataset, model, runs, mean, std, sem, early, paper, seconds,
                                  test_acc}]}
    out/results.csv    the same rows without the per-seed lists
    out/results.md     the table printed by the CLI
    out/runs/<dataset>_<model>/seed_<k>/   one run: config.yaml, metrics.csv, checkpoint.pt,
                                           result.json (see :func:`gat_pyg.train.train_run`)

Every file is written atomically, and a run folder's ``result.json`` is written last, so a rerun
with the same ``out`` skips the runs that finished (with the same config) and trains the rest.
A finished run with another config is not replaced unless asked (``overwrite``): the check runs
before anything trains. Interrupted (Ctrl-C), :func:`reproduce` raises
:class:`ReproduceInterrupted`, which says how many runs had finished.

Beside each mean the table gives its standard error and the runs that **stopped early**, so that
a gap to the paper can be judged at a glance: a few seeds give a wide error, and one run whose
stopping rule settled early (the GAT rule's Cora seed 1 tests its checkpoint of epoch 58 of 994,
79.4 %) moves a 10-seed mean by 0.4 points. What counts as early is the stopping rule's own
notion (:func:`stopped_early`).

Every config is read, and every run folder looked at, before torch is imported, so a typo fails
at once; torch and PyG load when the first run trains.
"""
import json
import logging
import math
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from gat_pyg.data.names import DATASETS
from gat_pyg.train.atomic import atomic_write_csv, atomic_write_json, atomic_write_text
from gat_pyg.train.config import load_config
from gat_pyg.train.config_files import config_path
from gat_pyg.train.results import RESULT_FILE, RunResult, run_dir
from gat_pyg.train.schema import MODEL_NAMES, TrainConfig

log = logging.getLogger(__name__)

PAPER_ACCURACY: Dict[Tuple[str, str], float] = {
    ('cora', 'gat'): 0.830, ('citeseer', 'gat'): 0.725, ('pubmed', 'gat'): 0.790,
    ('cora', 'gcn'): 0.815, ('citeseer', 'gcn'): 0.703, ('pubmed', 'gcn'): 0.790,
    ('cora', 'mlp'): 0.551, ('citeseer', 'mlp'): 0.465, ('pubmed', 'mlp'): 0.714,
}
"""Mean test accuracy in Table 3 of the GAT paper (GATv2 is not in it)."""
RESULT_FILES = ('results.json', 'results.csv', 'results.md')
_FIXED_BY_REPRODUCE = ('dataset', 'model', 'seed')
_CSV_COLUMNS = ('dataset', 'model', 'runs', 'mean', 'std', 'sem', 'early_runs', 'paper',
                'seconds')


@dataclass
class ResultRow:
    """One (dataset, model) line of the table; accuracies are fractions.

    Attributes:
        runs (int): Seeds trained.
        mean, std (float): Mean and population standard deviation over the seeds.
        paper (float or None): The paper's mean (Table 3), if it reports the pair.
        seconds (float): The summed run times.
        test_acc (List[float]): Per seed, in seed order.
        sem (float or None): Standard error of ``mean``: the sample standard deviation
            (``n - 1``) over the square root of ``runs``; ``None`` for one run.
        early (List[int]): The seeds whose run stopped early (:func:`stopped_early`).
    """
    dataset: str
    model: str
    runs: int
    mean: float
    std: float
    paper: Optional[float]
    seconds: float
    test_acc: List[float]
    sem: Optional[float] = None
    early: List[int] = field(default_factory=list)


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
    out = Path(out)
    # Read every config, and look at every run folder, before training anything (and before
    # torch is imported), so a typo or a clash with earlier runs fails in a second, not an hour.
    plan = plan_runs(datasets, models, runs, config_dir=config_dir, overrides=overrides,
                     overrides_origin=overrides_origin)
    datasets = list(dict.fromkeys(c.dataset for c in plan))
    models = list(dict.fromkeys(c.model for c in plan))
    finished = {}
    for config in plan:
        folder = run_dir(out, config)
        result, stored = finished_run(folder, config, config_dir), stored_config(folder)
        if result is not None:
            finished[folder] = result
        elif stored is not None and not overwrite:
            raise ValueError(f'{folder} holds a finished run trained with other settings '
                             f'({_differences(stored, config.to_dict())}); pass --overwrite '
                             '(overwrite=True) to retrain it, or choose another --out')

    from tqdm.auto import tqdm

    from gat_pyg.train.tasks import train_run

    results: Dict[Tuple[str, str], List[RunResult]] = {}
    graphs: Dict[Tuple[Any, ...], Any] = {}
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

    configs = {(c.dataset, c.model): c for c in plan}
    rows = [summarise(dataset, model, results[dataset, model], configs[dataset, model])
            for dataset in datasets for model in models]
    write_results(out, rows)
    return rows


def plan_runs(datasets: Sequence[str], models: Sequence[str], runs: int, *,
              config_dir: Optional[Union[str, Path]] = None,
              overrides: Optional[Mapping[str, Any]] = None,
              overrides_origin: str = 'overrides') -> List[TrainConfig]:
    """The config of every run of a reproduction, in training order: for each dataset, each
    model, seeds ``0..runs-1``, each ``configs/<dataset>_<model>.yaml`` with ``overrides``
    (and the seed) on top. Reads files only (no torch).

    Raises:
        ValueError: ``runs`` < 1, overrides of ``dataset`` / ``model`` / ``seed``, an unknown
            name (datasets: the Planetoid ones), or a bad config.
        FileNotFoundError: a pair without a config file in ``config_dir``.
    """
    if isinstance(runs, bool) or not isinstance(runs, int) or runs < 1:
        raise ValueError(f'reproduce: runs must be >= 1, got {runs!r}')
    overrides = dict(overrides or {})
    fixed = sorted(set(overrides) & set(_FIXED_BY_REPRODUCE))
    if fixed:
        raise ValueError(f"reproduce: overrides may not set {', '.join(fixed)}; use the "
                         'datasets / models / runs arguments')
    for name in datasets:
        if str(name).lower() not in DATASETS:
            raise ValueError(f'reproduce: unknown Planetoid dataset {name!r}: expected one of '
                             f"{', '.join(DATASETS)} (case-insensitive)")
    for model in models:
        if str(model).lower() not in MODEL_NAMES:
            raise ValueError(f"reproduce: unknown model {model!r}; expected one of "
                             f"{', '.join(MODEL_NAMES)}")
    return [load_config(config_path(dataset, model, config_dir),
                        dict(overrides, dataset=dataset.lower(), model=model.lower(), seed=seed),
                        overrides_origin=overrides_origin, config_dir=config_dir)
            for dataset in datasets for model in models for seed in range(runs)]


def stopped_early(result: RunResult, config: TrainConfig) -> bool:
    """Whether a run stopped early, in its stopping rule's own sense.

    - ``gat`` (``epochs`` is a mere ceiling; the rule tests its checkpoint): the tested
      checkpoint is from the first ``patience`` epochs, i.e. no later epoch had both the best
      validation accuracy and the best validation loss so far, however long training went on.
    - ``gcn`` (tests the last model): the rule ended the run before ``epochs``.
    - ``none``: never.
    """
    if config.early_stopping == 'gat':
        return result.best_epoch < config.patience
    if config.early_stopping == 'gcn':
        return result.epochs < config.epochs
    return False


def finished_run(folder: Path, config: TrainConfig,
                 config_dir: Optional[Union[str, Path]] = None) -> Optional[RunResult]:
    """The result stored in ``folder`` if that run finished with exactly ``config``
    (:func:`same_settings`; ``config_dir`` as :class:`TrainConfig`'s)."""
    stored = stored_config(folder)
    if stored is None or not same_settings(stored, config, config_dir):
        return None
    return RunResult(**json.loads((folder / RESULT_FILE).read_text())['result'])


def same_settings(stored: Mapping[str, Any], config: TrainConfig,
                  config_dir: Optional[Union[str, Path]] = None) -> bool:
    """Whether a run whose folder stored the resolved config ``stored`` trained ``config``.
    A key the schema gained after the run was written (``act``) is resolved from the pair's file
    as for any config, so an older finished run still counts as finished when its settings
    are the same; a stored config the schema no longer reads counts as different."""
    if dict(stored) == config.to_dict():
        return True
    try:
        return TrainConfig.from_dict(stored, config_dir=config_dir) == config
    except (TypeError, ValueError, FileNotFoundError):
        return False


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


def summarise(dataset: str, model: str, results: Sequence[RunResult],
              config: TrainConfig) -> ResultRow:
    """Mean, spread, standard error, early stops and total time of one (dataset, model)'s runs
    (trained with ``config`` but for the seed), beside the paper's number."""
    ordered = sorted(results, key=lambda r: r.seed)
    accs = [r.test_acc for r in ordered]
    sem = statistics.stdev(accs) / math.sqrt(len(accs)) if len(accs) > 1 else None
    return ResultRow(dataset=dataset, model=model, runs=len(accs),
                     mean=statistics.fmean(accs), std=statistics.pstdev(accs),
                     paper=PAPER_ACCURACY.get((dataset, model)),
                     seconds=round(sum(r.seconds for r in results), 1), test_acc=accs,
                     sem=sem, early=[r.seed for r in ordered if stopped_early(r, config)])


def format_table(rows: Sequence[ResultRow]) -> str:
    """The rows as a Markdown table, accuracies in percent: mean ± standard deviation over
    seeds, the mean's standard error, the runs that stopped early (with their seeds, the first
    five), the paper's mean and the summed time."""
    lines = ['| Dataset | Model | Runs | Test accuracy (%) | Std. error | Stopped early '
             '| Paper (%) | Time (s) |',
             '|---|---|---:|---:|---:|---|---:|---:|']
    for r in rows:
        paper = f'{100 * r.paper:.1f}' if r.paper is not None else '—'
        sem = f'{100 * r.sem:.2f}' if r.sem is not None else '—'
        early = str(len(r.early))
        if r.early:
            shown = ', '.join(map(str, r.early[:5])) + (', ...' if len(r.early) > 5 else '')
            early += f" (seed{'s' if len(r.early) > 1 else ''} {shown})"
        lines.append(f'| {r.dataset} | {r.model} | {r.runs} | {100 * r.mean:.1f} ± '
                     f'{100 * r.std:.1f} | {sem} | {early} | {paper} | {r.seconds:.1f} |')
    return '\n'.join(lines) + '\n'


def write_results(out: Path, rows: Sequence[ResultRow]) -> None:
    """Write ``results.json``, ``results.csv`` and ``results.md`` into ``out`` atomically."""
    atomic_write_json(out / 'results.json', {'rows': [asdict(r) for r in rows]})
    atomic_write_csv(out / 'results.csv', _CSV_COLUMNS,
                     [{**{k: v for k, v in asdict(r).items() if k in _CSV_COLUMNS},
                       'early_runs': len(r.early)} for r in rows])
    atomic_write_text(out / 'results.md', format_table(rows))


def _graph(cache: Dict[Tuple[Any, ...], Any], config: TrainConfig, root: Any, mirror: Any,
           verify: bool) -> Any:
    # Fixed splits are shared by all seeds; a random split is drawn per seed.
    key: Tuple[Any, ...] = (config.dataset, config.split, config.sparse_features)
    if config.split == 'random':
        key += (config.seed,)
    if key not in cache:
        from gat_pyg.train.build import load_data

        cache[key] = load_data(config, root=root, mirror=mirror, verify=verify)
    return cache[key]

"""Reproduce the GAT paper's transductive table: every (dataset, model) over seeds ``0..runs-1``.

Output folder::

    out/results.json   {"rows": [{dataset, model, runs, mean, std, paper, seconds, test_acc}]}
    out/results.csv    the same rows without the per-seed list
    out/results.md     the table printed by the CLI
    out/runs/<dataset>_<model>/seed_<k>/   one run: config.yaml, metrics.csv, checkpoint.pt,
                                           result.json (see :func:`gat_pyg.train.train_run`)

Every file is written atomically, and a run folder's ``result.json`` is written last, so a rerun
with the same ``out`` skips the runs that finished (with the same config) and trains the rest.
"""
import json
import logging
import statistics
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from torch_geometric.data import Data
from tqdm.auto import tqdm

import gat_pyg
from gat_pyg.data.planetoid import planetoid_name
from gat_pyg.train.config import MODEL_NAMES, TrainConfig, load_config
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


def default_config_dir() -> Path:
    """``configs/`` of the source checkout this package runs from, else ``./configs``."""
    beside_package = Path(gat_pyg.__file__).resolve().parent.parent / 'configs'
    return beside_package if beside_package.is_dir() else Path('configs')


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
) -> List[ResultRow]:
    """Train every (dataset, model) over seeds ``0..runs-1`` with ``configs/<dataset>_<model>.yaml``
    and write the table (see the module docstring for the files).

    Args:
        datasets: Planetoid names (``'cora'``, ``'citeseer'``, ``'pubmed'``).
        models: Model names (``'gat'``, ``'gatv2'``, ``'gcn'``, ``'mlp'``).
        runs (int): Seeds per (dataset, model).
        out: Output folder; finished runs already in it are reused.
        config_dir: Folder of the YAML configs. (default: :func:`default_config_dir`)
        overrides: Config values applied on top of every file (not ``dataset``, ``model`` or
            ``seed``, which the command sets).
        root, mirror, verify: As :func:`gat_pyg.data.load_planetoid`.
        progress (bool): Show progress bars (all runs, and each run's epochs).

    Returns:
        The table's rows, in the order of ``datasets`` then ``models``.
    """
    if runs < 1:
        raise ValueError(f'reproduce: runs must be >= 1, got {runs}')
    overrides = dict(overrides or {})
    fixed = sorted(set(overrides) & set(_FIXED_BY_REPRODUCE))
    if fixed:
        raise ValueError(f"reproduce: overrides may not set {', '.join(fixed)}; use the "
                         'datasets / models / runs arguments')
    datasets = [planetoid_name(name).lower() for name in datasets]
    for model in models:
        if model not in MODEL_NAMES:
            raise ValueError(f"reproduce: unknown model {model!r}; expected one of "
                             f"{', '.join(MODEL_NAMES)}")
    out = Path(out)
    config_dir = Path(config_dir) if config_dir is not None else default_config_dir()
    # Read every config before training anything, so a typo fails in a second, not an hour.
    plan = [load_config(config_dir / f'{dataset}_{model}.yaml',
                        dict(overrides, dataset=dataset, model=model, seed=seed))
            for dataset in datasets for model in models for seed in range(runs)]

    results: Dict[Tuple[str, str], List[RunResult]] = {}
    graphs: Dict[Tuple[Any, ...], Data] = {}
    with tqdm(plan, desc='reproduce', unit='run', disable=not progress) as bar:
        for config in bar:
            bar.set_postfix_str(f'{config.dataset}/{config.model} seed {config.seed}')
            folder = run_dir(out, config)
            result = finished_run(folder, config)
            if result is not None:
                log.info('skipping %s (finished)', folder)
            else:
                log.info('training %s', folder)
                data = _graph(graphs, config, root, mirror, verify)
                result = train_run(config, data, folder, progress=progress)
            results.setdefault((config.dataset, config.model), []).append(result)

    rows = [summarise(dataset, model, results[dataset, model])
            for dataset in datasets for model in models]
    write_results(out, rows)
    return rows


def finished_run(folder: Path, config: TrainConfig) -> Optional[RunResult]:
    """The result stored in ``folder`` if that run finished with exactly ``config``."""
    path = folder / RESULT_FILE
    if not path.is_file():
        return None
    try:
        stored = json.loads(path.read_text())
        if stored['config'] != config.to_dict():
            log.warning('%s was trained with another config; training it again', folder)
            return None
        return RunResult(**stored['result'])
    except (ValueError, KeyError, TypeError) as err:
        log.warning('%s is unreadable (%s); training the run again', path, err)
        return None


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

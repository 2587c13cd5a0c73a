"""What a run leaves behind: its result and its folder.

A run folder (``out/runs/<dataset>_<model>/seed_<seed>/``) holds ``config.yaml`` (written
first), ``metrics.csv``, ``checkpoint.pt`` and ``result.json`` (written last: a folder holding
it is a finished run); each file is written atomically (:mod:`gat_pyg.train.atomic`).

This module imports no torch, so the command line can check a run folder before torch loads.
"""
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Dict, Tuple, Union

from gat_pyg.train.schema import TrainConfig

CONFIG_FILE = 'config.yaml'
METRICS_FILE = 'metrics.csv'
CHECKPOINT_FILE = 'checkpoint.pt'
RESULT_FILE = 'result.json'
"""Written last: a run folder holding it is a finished run."""


@dataclass
class RunResult:
    """What a finished run reports. ``test_acc`` / ``val_acc`` hold the score named by
    ``metric``: accuracy (``'acc'``) for node classification, micro-F1 (``'micro_f1'``) for the
    multi-label PPI; both are fractions. ``best_epoch`` is the (0-based) epoch of the tested
    checkpoint, ``epochs`` the number of epochs trained, ``device`` where the (main) process
    trained (``'cpu'``, ``'cuda:0'``) and ``processes`` how many trained together."""
    dataset: str
    model: str
    seed: int
    test_acc: float
    val_acc: float
    val_loss: float
    best_epoch: int
    epochs: int
    seconds: float
    metric: str = 'acc'
    device: str = 'cpu'
    processes: int = 1

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)


def metric_columns(metric: str) -> Tuple[str, ...]:
    """The ``metrics.csv`` header of a run scored by ``metric`` (``'acc'``, ``'micro_f1'``):
    ``epoch, train_loss, train_<metric>, val_loss, val_<metric>, checkpoint, seconds``."""
    return ('epoch', 'train_loss', f'train_{metric}', 'val_loss', f'val_{metric}', 'checkpoint',
            'seconds')


def run_dir(out: Union[str, Path], config: TrainConfig) -> Path:
    """The folder of ``config``'s run under an output folder:
    ``out/runs/<dataset>_<model>/seed_<seed>``."""
    return Path(out) / 'runs' / f'{config.dataset}_{config.model}' / f'seed_{config.seed}'

"""Per-epoch metrics of a training run (the ``metrics.csv`` that :func:`gat_pyg.train.fit`
writes into a run folder), as arrays ready to plot."""
import csv
from pathlib import Path
from typing import Dict, Union

import numpy as np


def read_metrics(path: Union[str, Path]) -> Dict[str, np.ndarray]:
    """Columns of a run's ``metrics.csv`` (or of the run folder holding it) as float arrays:
    ``epoch``, ``train_loss``, ``train_acc``, ``val_loss``, ``val_acc``, ``checkpoint``,
    ``seconds`` (``*_micro_f1`` instead of ``*_acc`` for PPI)."""
    path = Path(path)
    if path.is_dir():
        path = path / 'metrics.csv'
    if not path.is_file():
        raise FileNotFoundError(f"path: no metrics.csv at {path}; pass a run folder written by "
                                f"gat_pyg.train.train_run(..., out_dir=...) or its metrics.csv")
    with open(path, newline='') as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise ValueError(f"{path}: holds no epoch")
    return {key: np.array([float(row[key]) for row in rows]) for key in rows[0]}

"""Training: typed configs, the paper's stopping rules, one dispatch deciding how a run trains
(full-batch or mini-batch, one process or torchrun, transductive or inductive), the devices and
precisions it trains in, and the reproduction table. ``python -m gat_pyg.train`` is
``gat-pyg train``."""
from gat_pyg.train.config import TrainConfig, load_config, parse_override
from gat_pyg.train.device import Precision, resolve_device
from gat_pyg.train.early_stopping import (Decision, EarlyStopping, GATStopping, NoStopping,
                                          WindowStopping, make_stopping)
from gat_pyg.train.inductive import micro_f1
from gat_pyg.train.loop import (NodeTask, Replicas, RunResult, Task, build_model, fit,
                                load_checkpoint, load_data, run_dir)
from gat_pyg.train.reproduce import (PAPER_ACCURACY, ResultRow, format_table, reproduce,
                                     write_results)
from gat_pyg.train.tasks import (RunKind, launch, make_task, run_kind, train_inductive,
                                 train_run)

__all__ = ['Decision', 'EarlyStopping', 'GATStopping', 'NoStopping', 'NodeTask',
           'PAPER_ACCURACY', 'Precision', 'Replicas', 'ResultRow', 'RunKind', 'RunResult',
           'Task', 'TrainConfig', 'WindowStopping', 'build_model', 'fit', 'format_table',
           'launch', 'load_checkpoint', 'load_config', 'load_data', 'make_stopping',
           'make_task', 'micro_f1', 'parse_override', 'reproduce', 'resolve_device', 'run_dir',
           'run_kind', 'train_inductive', 'train_run', 'write_results']

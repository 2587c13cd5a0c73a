"""Training: typed configs, the paper's stopping rules, one run (full-batch, multi-process or
inductive), and the reproduction table. ``python -m gat_pyg.train`` is ``gat-pyg train``."""
from gat_pyg.train.config import TrainConfig, load_config, parse_override
from gat_pyg.train.early_stopping import (Decision, EarlyStopping, GATStopping, NoStopping,
                                          WindowStopping, make_stopping)
from gat_pyg.train.inductive import micro_f1, train_inductive
from gat_pyg.train.loop import (NodeTask, Replicas, RunResult, Task, build_model, fit,
                                load_checkpoint, load_data, run_dir, train_run)
from gat_pyg.train.reproduce import (PAPER_ACCURACY, ResultRow, format_table, reproduce,
                                     write_results)

__all__ = ['Decision', 'EarlyStopping', 'GATStopping', 'NoStopping', 'NodeTask',
           'PAPER_ACCURACY', 'Replicas', 'ResultRow', 'RunResult', 'Task', 'TrainConfig',
           'WindowStopping', 'build_model', 'fit', 'format_table', 'load_checkpoint',
           'load_config', 'load_data', 'make_stopping', 'micro_f1', 'parse_override',
           'reproduce', 'run_dir', 'train_inductive', 'train_run', 'write_results']

"""Training: typed configs, the paper's stopping rules, one run, and the reproduction table."""
from gat_pyg.train.config import TrainConfig, load_config, parse_override
from gat_pyg.train.early_stopping import (Decision, EarlyStopping, GATStopping, NoStopping,
                                          WindowStopping, make_stopping)
from gat_pyg.train.loop import (RunResult, build_model, load_checkpoint, load_data, run_dir,
                                train_run)
from gat_pyg.train.reproduce import (PAPER_ACCURACY, ResultRow, format_table, reproduce,
                                     write_results)

__all__ = ['Decision', 'EarlyStopping', 'GATStopping', 'NoStopping', 'PAPER_ACCURACY',
           'ResultRow', 'RunResult', 'TrainConfig', 'WindowStopping', 'build_model',
           'format_table', 'load_checkpoint', 'load_config', 'load_data', 'make_stopping',
           'parse_override', 'reproduce', 'run_dir', 'train_run', 'write_results']

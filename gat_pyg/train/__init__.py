"""Training: typed configs, the paper's stopping rules, one run (full-batch, multi-process or
inductive), and the reproduction table. ``python -m gat_pyg.train`` is ``gat-pyg train``.

Names are imported on first use (see :mod:`gat_pyg._lazy`), so the command line can read the
config schema without importing torch.
"""
from gat_pyg._lazy import lazy_exports

_exports, __getattr__, __dir__ = lazy_exports(__name__, {
    'gat_pyg.train.config': ['TrainConfig', 'load_config', 'parse_override', 'resolve_config'],
    'gat_pyg.train.early_stopping': ['Decision', 'EarlyStopping', 'GATStopping', 'NoStopping',
                                     'WindowStopping', 'make_stopping'],
    'gat_pyg.train.inductive': ['micro_f1', 'train_inductive'],
    'gat_pyg.train.loop': ['NodeTask', 'Replicas', 'RunResult', 'Task', 'build_model', 'fit',
                           'load_checkpoint', 'load_data', 'run_dir', 'train_run'],
    'gat_pyg.train.reproduce': ['PAPER_ACCURACY', 'ResultRow', 'format_table', 'reproduce',
                                'write_results'],
})

__all__ = sorted(_exports)

"""Training: typed configs, the paper's stopping rules, one dispatch deciding how a run trains
(full-batch or mini-batch, one process or torchrun, transductive or inductive), the devices and
precisions it trains in, and the reproduction table. ``python -m gat_pyg.train`` is
``gat-pyg train``.

Names are imported on first use (see :mod:`gat_pyg._lazy`), so the command line can read the
config schema without importing torch.
"""
from gat_pyg._lazy import lazy_exports

_exports, __getattr__, __dir__ = lazy_exports(__name__, {
    'gat_pyg.train.config': ['TrainConfig', 'load_config', 'parse_override', 'resolve_config'],
    'gat_pyg.train.device': ['Precision', 'resolve_device'],
    'gat_pyg.train.early_stopping': ['Decision', 'EarlyStopping', 'GATStopping', 'NoStopping',
                                     'WindowStopping', 'make_stopping'],
    'gat_pyg.train.inductive': ['micro_f1'],
    'gat_pyg.train.loop': ['NodeTask', 'Replicas', 'RunResult', 'Task', 'build_model', 'fit',
                           'load_checkpoint', 'load_data', 'run_dir'],
    'gat_pyg.train.reproduce': ['PAPER_ACCURACY', 'ResultRow', 'format_table', 'reproduce',
                                'write_results'],
    'gat_pyg.train.tasks': ['RunKind', 'launch', 'make_task', 'run_kind', 'train_inductive',
                            'train_run'],
})

__all__ = sorted(_exports)

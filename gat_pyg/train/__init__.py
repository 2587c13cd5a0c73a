"""Training: typed configs, the paper's stopping rules, one dispatch deciding how a run trains
(full-batch or mini-batch, one process or torchrun, transductive or inductive), the devices and
precisions it trains in, and the reproduction table. ``python -m gat_pyg.train`` is
``gat-pyg train``.

Modules, by job: the config's schema and its one resolver (``schema``), its files and their
``extends`` chains (``config_files``), files plus overrides (``config``), command-line text
(``overrides``), "did you mean" (``suggestions``); the dispatch (``tasks``), the loop
(``loop``: ``fit`` and the ``Task`` it consumes), the data sides (``fullbatch``,
``minibatch``, ``distributed``, ``inductive``), the processes (``replicas``), what a config
builds (``build``), the optimizer (``optim``), checkpoints (``checkpoint``), run folders and
results (``results``), devices (``device``), stopping rules (``early_stopping``), progress bars
(``progress``), atomic files (``atomic``) and the paper's table (``reproduce``).

Names are imported on first use (see :mod:`gat_pyg._lazy`), so the command line can read the
config schema without importing torch.
"""
from gat_pyg._lazy import lazy_exports

_exports, __getattr__, __dir__ = lazy_exports(__name__, {
    'gat_pyg.train.schema': ['TrainConfig'],
    'gat_pyg.train.config': ['load_config', 'resolve_config'],
    'gat_pyg.train.overrides': ['parse_override'],
    'gat_pyg.train.device': ['Precision', 'resolve_device'],
    'gat_pyg.train.early_stopping': ['Decision', 'EarlyStopping', 'GATStopping', 'NoStopping',
                                     'WindowStopping', 'make_stopping'],
    'gat_pyg.train.inductive': ['micro_f1'],
    'gat_pyg.train.loop': ['Task', 'fit'],
    'gat_pyg.train.fullbatch': ['NodeTask'],
    'gat_pyg.train.replicas': ['Replicas'],
    'gat_pyg.train.results': ['RunResult', 'run_dir'],
    'gat_pyg.train.build': ['build_model', 'load_data'],
    'gat_pyg.train.checkpoint': ['Checkpoint', 'load_checkpoint'],
    'gat_pyg.train.optim': ['make_optimizer'],
    'gat_pyg.train.reproduce': ['PAPER_ACCURACY', 'ResultRow', 'format_table', 'reproduce',
                                'write_results'],
    'gat_pyg.train.tasks': ['RunKind', 'launch', 'make_task', 'run_kind', 'train_run'],
})

__all__ = sorted(_exports)

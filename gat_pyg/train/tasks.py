"""The one place that decides how a run trains.

Every run is one cell of {transductive (a Planetoid graph), inductive (PPI's many graphs)} x
{full-batch, mini-batch} x {one process, ``torchrun``}. :func:`run_kind` reads the cell from the
config and the world size and refuses, up front (before any data is loaded or process group
joined), every cell that cannot run; :func:`make_task` builds the cell's task:

=============  ==================================  ======================  ========================
dataset        batching (config keys)              one process             torchrun (W processes)
=============  ==================================  ======================  ========================
Planetoid      full-batch (``batch_size: null``)   ``NodeTask``            ``ShardedNodeTask``: each
                                                                           rank the loss of 1/W of
                                                                           the training nodes
Planetoid      mini-batch (``batch_size: B``)      ``MiniBatchTask``       ``MiniBatchTask``: each
                                                                           rank samples batches of
                                                                           its 1/W of the nodes
PPI            whole graphs (``graphs_per_batch``) ``GraphTask``           refused: ``dataset``
PPI            ``batch_size`` / ``num_neighbors``  refused by ``TrainConfig``: Planetoid-only
               / ``inference_batch_size``          keys
=============  ==================================  ======================  ========================

Orthogonal to the cell: ``inference_batch_size`` (Planetoid) evaluates layer by layer; ``device``,
``precision``, ``deterministic`` and ``backend`` (:mod:`gat_pyg.train.device`) apply to every
cell. :func:`train_run` trains one cell in this process; :func:`launch` is what ``gat-pyg train``
calls: it joins the process group when ``torchrun`` started the process, loads the data (rank 0
first) and trains.
"""
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Sequence, Tuple, Union

from torch_geometric.data import Data

from gat_pyg.train.device import Precision, resolve_device
from gat_pyg.train.distributed import (ShardedNodeTask, distributed_device, process_group,
                                       world_size_from_env)
from gat_pyg.train.fullbatch import NodeTask
from gat_pyg.train.inductive import GraphTask
from gat_pyg.train.loop import Task, fit
from gat_pyg.train.minibatch import MiniBatchTask
from gat_pyg.train.replicas import Replicas
from gat_pyg.train.results import RunResult
from gat_pyg.train.schema import INDUCTIVE_DATASETS, TrainConfig

log = logging.getLogger(__name__)

InductiveData = Tuple[Sequence[Data], Sequence[Data], Sequence[Data]]
"""The train / val / test graphs of an inductive dataset (:func:`gat_pyg.data.load_ppi`)."""


@dataclass(frozen=True)
class RunKind:
    """The cell of the dispatch table a run falls in.

    Attributes:
        setting (str): ``'transductive'`` (one graph) or ``'inductive'`` (many graphs).
        batching (str): ``'full-batch'``, ``'mini-batch'`` or ``'whole graphs'`` (inductive).
        processes (int): The world size (1: one process).
    """
    setting: str
    batching: str
    processes: int

    def __str__(self) -> str:
        where = 'one process' if self.processes == 1 else f'{self.processes} processes (torchrun)'
        return f'{self.setting}, {self.batching}, {where}'


def run_kind(config: TrainConfig, world_size: int = 1) -> RunKind:
    """The dispatch table's cell for ``config`` trained by ``world_size`` processes.

    Raises:
        ValueError: a refused cell, naming the config key: an inductive dataset under torchrun.
            (A Planetoid-only key such as ``batch_size`` set for an inductive dataset never gets
            here: :class:`TrainConfig` refuses it when it is built.)
    """
    if world_size < 1:
        raise ValueError(f'run_kind: world_size must be >= 1, got {world_size}')
    if config.dataset in INDUCTIVE_DATASETS:
        if world_size > 1:
            raise ValueError(f"config key 'dataset': {config.dataset!r} is inductive (whole "
                             f'graphs per batch) and trains in one process, but torchrun '
                             f'started {world_size} processes (WORLD_SIZE={world_size}); run '
                             'it without torchrun')
        return RunKind('inductive', 'whole graphs', 1)
    batching = 'full-batch' if config.batch_size is None else 'mini-batch'
    return RunKind('transductive', batching, world_size)


def make_task(config: TrainConfig, data: Union[Data, InductiveData],
              replicas: Optional[Replicas] = None, progress: bool = False) -> Task:
    """The task of ``config``'s cell (module docstring), on ``replicas.device``.

    Args:
        config (TrainConfig): The run's settings.
        data (Data or (train, val, test)): A Planetoid graph (:func:`gat_pyg.train.load_data`),
            or the three graph datasets of an inductive dataset.
        replicas (Replicas, optional): The processes training together.
            (default: this one, on the CPU)
        progress (bool, optional): Progress bars over batches (rank 0 only).
            (default: ``False``)

    Raises:
        ValueError: as :func:`run_kind` and :meth:`Precision.resolve`; more processes than
            training nodes.
        TypeError: ``data`` of the wrong form for the dataset.
    """
    replicas = replicas if replicas is not None else Replicas()
    kind = run_kind(config, replicas.world_size)
    precision = Precision.resolve(config.precision, replicas.device)
    progress = progress and replicas.is_main          # one set of bars per run
    if kind.setting == 'inductive':
        if isinstance(data, Data) or len(data) != 3:
            raise TypeError(f'make_task: {config.dataset!r} is inductive: data must be the '
                            f'(train, val, test) graph datasets, got {type(data).__name__}')
        train, val, test = data
        return GraphTask(train, val, test, config.graphs_per_batch, precision)
    if not isinstance(data, Data):
        raise TypeError(f'make_task: {config.dataset!r} is one graph: data must be a '
                        f'torch_geometric Data, got {type(data).__name__}')
    if kind.batching == 'mini-batch':
        return MiniBatchTask(config, data, replicas, precision, progress)
    if kind.processes > 1:
        return ShardedNodeTask(data, replicas, config.seed, precision,
                               config.inference_batch_size)
    return NodeTask(data, precision, inference_batch_size=config.inference_batch_size,
                    progress=progress)


def train_run(config: TrainConfig, data: Union[Data, InductiveData],
              out_dir: Optional[Union[str, Path]] = None, progress: bool = False) -> RunResult:
    """Train one model in this process as ``config`` says and test its checkpoint.

    The run is a function of ``config`` (and ``data``): it seeds its own forked RNG with
    ``config.seed``, so two calls give bit-identical metrics and parameters on the CPU, and the
    caller's random state is left untouched.

    Args:
        config (TrainConfig): The run's settings (``device`` picks where it trains).
        data (Data or (train, val, test)): From :func:`gat_pyg.train.load_data` (``x`` dense or
            sparse, masks, ``y``), or an inductive dataset's three splits.
        out_dir (str, optional): If given, the run folder: ``config.yaml`` (first),
            ``metrics.csv``, ``checkpoint.pt`` and, last, ``result.json``, each written
            atomically. (default: ``None``)
        progress (bool, optional): Show an epoch progress bar (and, in mini-batch mode, one
            over each epoch's batches). (default: ``False``)

    Raises:
        ValueError: a refused combination (:func:`run_kind`), an unavailable device or
            precision (:mod:`gat_pyg.train.device`).
    """
    replicas = Replicas(resolve_device(config.device))
    return _fit(config, make_task(config, data, replicas, progress), replicas, out_dir,
                progress)


def launch(config: TrainConfig, load: Callable[[], Any],
           out_dir: Optional[Union[str, Path]] = None, progress: bool = False
           ) -> Optional[RunResult]:
    """Train ``config`` as the process was started: alone, or as one rank of ``torchrun``
    (``WORLD_SIZE`` > 1), joining the process group for the run and leaving it after.

    The combination, the device and the precision are checked before anything else happens;
    then ``load()`` reads the data (under torchrun rank 0 first, then each other machine's local
    rank 0, then the rest, so a dataset is processed once per folder).

    Args:
        config (TrainConfig): The run's settings.
        load (Callable): Returns the data :func:`make_task` takes.
        out_dir (str, optional): The run folder, written by rank 0 only. (default: ``None``)
        progress (bool, optional): Progress bars (rank 0 only). (default: ``False``)

    Returns:
        The result on rank 0 (and in one process); ``None`` on the other ranks.
    """
    world_size = world_size_from_env()
    run_kind(config, world_size)
    if world_size == 1:
        Precision.resolve(config.precision, resolve_device(config.device))
        return train_run(config, load(), out_dir, progress)
    Precision.resolve(config.precision, distributed_device(config)[0])
    with process_group(config) as replicas:
        with replicas.main_first():
            data = load()
        task = make_task(config, data, replicas, progress)
        result = _fit(config, task, replicas, out_dir, progress)
    return result if replicas.is_main else None


def _fit(config: TrainConfig, task: Task, replicas: Replicas,
         out_dir: Optional[Union[str, Path]], progress: bool) -> RunResult:
    if replicas.is_main:
        # The first line of a run's log says which cell of the table it is in.
        log.info('%s/%s seed %d: %s training, %s; %s on %s, precision %s%s', config.dataset,
                 config.model, config.seed, run_kind(config, replicas.world_size).setting,
                 task.describe(), replicas.describe(), replicas.device, config.precision,
                 ', deterministic algorithms' if config.deterministic else '')
    return fit(config, task, out_dir, progress, replicas)[0]

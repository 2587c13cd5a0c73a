"""One training run: Adam on a graph under a paper's stopping rule.

Per epoch: one optimisation pass over the training nodes (dropout on), then a validation pass
(dropout off) whose loss and accuracy drive the stopping rule; the checkpoint the rule picks is
restored at the end and only then is the test set evaluated, once.

The loop itself (:func:`fit`) is shared by every kind of run: a :class:`Task` supplies the data
side (:class:`gat_pyg.train.fullbatch.NodeTask`: full-batch; :mod:`gat_pyg.train.minibatch`:
neighbour-sampled mini-batches; :mod:`gat_pyg.train.distributed`: a rank's share of the
training nodes; :mod:`gat_pyg.train.inductive`: whole graphs) and
:class:`~gat_pyg.train.replicas.Replicas` the processes training together and their device.
Which task and which replicas a config gets is decided in one place,
:func:`gat_pyg.train.tasks.make_task`; this module imports none of the tasks built on it.
What the loop builds and writes lives by job: the model (:mod:`gat_pyg.train.build`), the
optimizer (:mod:`gat_pyg.train.optim`), the checkpoint (:mod:`gat_pyg.train.checkpoint`), the
run folder's files (:mod:`gat_pyg.train.results`).
"""
import logging
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

import torch
from torch import Tensor
from torch.nn import Module

from gat_pyg.models import BaseModel
from gat_pyg.train.atomic import atomic_write_csv, atomic_write_json, atomic_write_text
from gat_pyg.train.build import build_model
from gat_pyg.train.checkpoint import save_checkpoint
from gat_pyg.train.device import Precision, deterministic_algorithms
from gat_pyg.train.early_stopping import make_stopping
from gat_pyg.train.optim import l2_penalty, make_optimizer
from gat_pyg.train.progress import EpochBar
from gat_pyg.train.replicas import Replicas
from gat_pyg.train.results import (CHECKPOINT_FILE, CONFIG_FILE, METRICS_FILE, RESULT_FILE,
                                   RunResult, metric_columns)
from gat_pyg.train.schema import TrainConfig

log = logging.getLogger(__name__)


class Task:
    """What a kind of training supplies to :func:`fit`: the data's widths, one epoch of
    optimisation, and the loss and score of a split. :func:`fit` owns everything else (seeding,
    the model, Adam, the stopping rule, checkpoints, the run folder), so every kind of run
    shares one loop.

    Attributes:
        metric (str): Name of the score (``'acc'``), used in column names.
        in_channels (int): Input features per node.
        out_channels (int): Classes (or labels) per node.
        precision (Precision): The device and arithmetic of forward passes and steps.
    """
    metric: str = 'acc'
    in_channels: int
    out_channels: int
    precision: Precision = Precision()

    @property
    def device(self) -> torch.device:
        """Where the model computes."""
        return self.precision.device

    def describe(self) -> str:
        """How this task trains, for the log (``'full-batch'``, ``'mini-batch (...)'``)."""
        return type(self).__name__

    def train_epoch(self, model: Module, optimizer: torch.optim.Optimizer) -> Tuple[float, float]:
        """One epoch of optimisation of ``model`` (possibly a ``DistributedDataParallel``
        wrapper); returns the training loss and score."""
        raise NotImplementedError

    def evaluate(self, model: BaseModel, split: str) -> Tuple[float, float]:
        """Loss and score of ``model`` on ``split`` (``'val'`` or ``'test'``), dropout off."""
        raise NotImplementedError


def fit(config: TrainConfig, task: Task, out_dir: Optional[Union[str, Path]] = None,
        progress: bool = False, replicas: Optional[Replicas] = None
        ) -> Tuple[RunResult, BaseModel]:
    """The training loop every kind of run shares: seed, build, train epoch by epoch under the
    stopping rule, restore the checkpoint, test it once, write the run folder.

    Args:
        config (TrainConfig): The run's settings.
        task (Task): The data side: epochs of optimisation and evaluation of a split.
        out_dir (str, optional): The run folder (see :func:`gat_pyg.train.train_run`); only the
            main process writes it. (default: ``None``)
        progress (bool, optional): Epoch progress bar (main process only). (default: ``False``)
        replicas (Replicas, optional): The processes training together and their device.
            (default: this process, on ``task.device``)

    Returns:
        The result (identical on every process) and the model, holding the tested checkpoint.
    """
    replicas = replicas if replicas is not None else Replicas(task.device)
    writes = out_dir is not None and replicas.is_main
    if writes:
        out_dir = Path(out_dir)
        atomic_write_text(out_dir / CONFIG_FILE, config.to_yaml())
    metric = task.metric
    device = replicas.device
    start = time.perf_counter()
    # The run's RNG is forked so the caller's is untouched: the CPU generator, and the CUDA one
    # of the device when training there (manual_seed seeds both).
    cuda = [device.index if device.index is not None else torch.cuda.current_device()] \
        if device.type == 'cuda' else []
    # Every process seeds alike: the same initial parameters (DDP would broadcast rank 0's
    # anyway) and the same dropout masks (see gat_pyg.train.distributed for why).
    with torch.random.fork_rng(devices=cuda), \
            deterministic_algorithms(config.deterministic, device):
        torch.manual_seed(config.seed)
        model = build_model(config, task.in_channels, task.out_channels)
        trained = replicas.wrap(model)
        optimizer = make_optimizer(
            model.parameter_groups(config.weight_decay, config.weight_decay_first_layer_only),
            lr=config.lr)
        stopping = make_stopping(config.early_stopping, config.patience)
        rows: List[Dict[str, Any]] = []
        best_state: Dict[str, Tensor] = {}
        best_epoch = -1
        bar = EpochBar(config, stopping, enabled=progress and replicas.is_main)
        with bar:
            for epoch in range(config.epochs):
                train_loss, train_score = task.train_epoch(trained, optimizer)
                # One validation pass, on the main process; every process then steps its
                # stopping rule on the same numbers, so all of them stop at the same epoch.
                val_loss, val_score = replicas.from_main(lambda: task.evaluate(model, 'val'))
                decision = stopping.step(
                    val_loss + l2_penalty(optimizer) if stopping.penalised_loss else val_loss,
                    val_score)
                if decision.save:
                    best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
                    best_epoch = epoch
                rows.append({'epoch': epoch, 'train_loss': train_loss,
                             f'train_{metric}': train_score, 'val_loss': val_loss,
                             f'val_{metric}': val_score, 'checkpoint': int(decision.save),
                             'seconds': round(time.perf_counter() - start, 4)})
                bar.update()
                if epoch % 10 == 0:
                    bar.set_postfix({f'val_{metric}': f'{val_score:.3f}',
                                     'val_loss': f'{val_loss:.3f}'}, refresh=False)
                if decision.stop:
                    break
        model.load_state_dict(best_state)
        val_loss, val_score, test_score = replicas.from_main(
            lambda: (*task.evaluate(model, 'val'), task.evaluate(model, 'test')[1]))
    result = RunResult(dataset=config.dataset, model=config.model, seed=config.seed,
                       test_acc=test_score, val_acc=val_score, val_loss=val_loss,
                       best_epoch=best_epoch, epochs=len(rows),
                       seconds=round(time.perf_counter() - start, 3), metric=metric,
                       device=str(device), processes=replicas.world_size)
    if replicas.is_main:
        log.info('%s/%s seed %d: test %s %.4f (checkpoint epoch %d of %d, %.1f s)',
                 config.dataset, config.model, config.seed, metric, test_score, best_epoch,
                 len(rows), result.seconds)
    if writes:
        atomic_write_csv(out_dir / METRICS_FILE, metric_columns(metric), rows)
        save_checkpoint(out_dir / CHECKPOINT_FILE, config, best_state, task.in_channels,
                        task.out_channels, epoch=best_epoch, val_acc=val_score,
                        val_loss=val_loss, test_acc=test_score, device=str(device))
        atomic_write_json(out_dir / RESULT_FILE,
                          dict(result=result.to_dict(), config=config.to_dict()))
    return result, model

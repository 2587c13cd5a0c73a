"""One training run: Adam on a Planetoid graph under a paper's stopping rule.

Per epoch: one optimisation step on the training nodes (dropout on) — full-batch, or, with
``config.batch_size`` set, one pass over neighbour-sampled mini-batches
(:mod:`gat_pyg.train.minibatch`) — then a validation pass (dropout off) whose loss and
accuracy drive the stopping rule; the checkpoint the rule picks is
restored at the end and only then is the test set evaluated, once.

The loop itself (:func:`fit`) is shared: a :class:`Task` supplies the data side (full-batch here,
a rank's share of the training nodes in :mod:`gat_pyg.train.distributed`, mini-batches of whole
graphs in :mod:`gat_pyg.train.inductive`) and :class:`Replicas` the processes training together.
"""
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn import Module
from torch_geometric.data import Data

from gat_pyg.data import load_planetoid
from gat_pyg.models import MODELS, BaseModel
from gat_pyg.train.config import ATTENTION_MODELS, TrainConfig
from gat_pyg.train.early_stopping import make_stopping
from gat_pyg.train.progress import EpochBar
from gat_pyg.train.atomic import (atomic_torch_save, atomic_write_csv, atomic_write_json,
                                  atomic_write_text)

log = logging.getLogger(__name__)

CONFIG_FILE = 'config.yaml'
METRICS_FILE = 'metrics.csv'
CHECKPOINT_FILE = 'checkpoint.pt'
RESULT_FILE = 'result.json'
"""Written last: a run folder holding it is a finished run."""
METRIC_COLUMNS = ('epoch', 'train_loss', 'train_acc', 'val_loss', 'val_acc', 'checkpoint',
                  'seconds')


@dataclass
class RunResult:
    """What a finished run reports. ``test_acc`` / ``val_acc`` hold the score named by
    ``metric``: accuracy (``'acc'``) for node classification, micro-F1 (``'micro_f1'``) for the
    multi-label PPI; both are fractions. ``best_epoch`` is the (0-based) epoch of the tested
    checkpoint, ``epochs`` the number of epochs trained."""
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

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)


def metric_columns(metric: str) -> Tuple[str, ...]:
    """The ``metrics.csv`` header of a run scored by ``metric`` (``'acc'`` gives
    :data:`METRIC_COLUMNS`)."""
    return ('epoch', 'train_loss', f'train_{metric}', 'val_loss', f'val_{metric}', 'checkpoint',
            'seconds')


class Task:
    """What a kind of training supplies to :func:`fit`: the data's widths, one epoch of
    optimisation, and the loss and score of a split. :func:`fit` owns everything else (seeding,
    the model, Adam, the stopping rule, checkpoints, the run folder), so full-batch, multi-process
    and inductive training share one loop.

    Attributes:
        metric (str): Name of the score (``'acc'``), used in column names.
        in_channels (int): Input features per node.
        out_channels (int): Classes (or labels) per node.
    """
    metric: str = 'acc'
    in_channels: int
    out_channels: int

    def train_epoch(self, model: Module, optimizer: torch.optim.Optimizer) -> Tuple[float, float]:
        """One epoch of optimisation of ``model`` (possibly a ``DistributedDataParallel``
        wrapper); returns the training loss and score."""
        raise NotImplementedError

    def evaluate(self, model: BaseModel, split: str) -> Tuple[float, float]:
        """Loss and score of ``model`` on ``split`` (``'val'`` or ``'test'``), dropout off."""
        raise NotImplementedError


class NodeTask(Task):
    """Full-batch node classification on one graph: every epoch is one forward over the whole
    graph and one Adam step on the cross-entropy of the training nodes.

    Args:
        data (Data): The graph, with ``train_mask`` / ``val_mask`` / ``test_mask``.
        train_mask (Tensor, optional): The nodes whose loss this process takes (a rank's share in
            multi-process training). (default: ``data.train_mask``)
        loss_norm (float, optional): Divide the summed loss by this instead of taking the mean
            over ``train_mask`` (multi-process training; see :mod:`gat_pyg.train.distributed`).
            (default: ``None``, the mean)
    """

    def __init__(self, data: Data, train_mask: Optional[Tensor] = None,
                 loss_norm: Optional[float] = None):
        self.data = data
        self.train_mask = data.train_mask if train_mask is None else train_mask
        self.loss_norm = loss_norm
        self.in_channels = data.num_features
        self.out_channels = int(data.y.max()) + 1

    def train_epoch(self, model: Module, optimizer: torch.optim.Optimizer) -> Tuple[float, float]:
        data, mask = self.data, self.train_mask
        model.train()
        optimizer.zero_grad()
        out = model(data.x, data.edge_index)[mask]
        if self.loss_norm is None:
            loss = F.cross_entropy(out, data.y[mask])
        else:
            loss = F.cross_entropy(out, data.y[mask], reduction='sum') / self.loss_norm
        loss.backward()
        optimizer.step()
        return loss.item(), _accuracy(out, data.y[mask])

    def evaluate(self, model: BaseModel, split: str) -> Tuple[float, float]:
        return _evaluate(model, self.data, self.data[f'{split}_mask'])


class Replicas:
    """The processes that train one model together. This base is a single process; the
    multi-process one (:class:`gat_pyg.train.distributed.DistributedReplicas`) wraps the model
    in ``DistributedDataParallel`` and makes rank 0's validation numbers everyone's."""
    rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        """Whether this process evaluates, logs and writes the run folder."""
        return self.rank == 0

    def wrap(self, model: BaseModel) -> Module:
        """The module that trains (gradients synchronised across processes)."""
        return model

    def from_main(self, compute: Callable[[], Sequence[float]]) -> List[float]:
        """``compute()`` run on the main process only, its numbers returned on every process."""
        return list(compute())

    def all_reduce_sum(self, values: Sequence[float]) -> List[float]:
        """Each value summed over the processes."""
        return list(values)


def run_dir(out: Union[str, Path], config: TrainConfig) -> Path:
    """The folder of ``config``'s run under an output folder:
    ``out/runs/<dataset>_<model>/seed_<seed>``."""
    return Path(out) / 'runs' / f'{config.dataset}_{config.model}' / f'seed_{config.seed}'


def load_data(config: TrainConfig, root: Optional[Union[str, Path]] = None,
              mirror: Optional[str] = None, verify: bool = True) -> Data:
    """The graph ``config`` trains on (dataset, split, sparse features, random-split seed)."""
    return load_planetoid(config.dataset, root=root, split=config.split, mirror=mirror,
                          sparse=config.sparse_features, seed=config.seed, verify=verify)


def build_model(config: TrainConfig, in_channels: int, out_channels: int) -> BaseModel:
    """The model ``config`` describes, for ``in_channels`` features and ``out_channels``
    classes."""
    kwargs: Dict[str, Any] = dict(num_layers=config.num_layers, dropout=config.dropout,
                                  bias=config.bias)
    if config.model in ATTENTION_MODELS:
        kwargs.update(heads=config.heads, out_heads=config.out_heads,
                      attn_dropout=config.attn_dropout,
                      message_dropout=config.message_dropout, residual=config.residual)
    return MODELS[config.model](in_channels, config.hidden_channels, out_channels, **kwargs)


def load_checkpoint(path: Union[str, Path]) -> Tuple[BaseModel, TrainConfig]:
    """Rebuild the model saved in a run's ``checkpoint.pt`` (in eval mode) and its config."""
    checkpoint = torch.load(path, map_location='cpu', weights_only=True)
    config = TrainConfig.from_dict(checkpoint['config'])
    model = build_model(config, checkpoint['in_channels'], checkpoint['out_channels'])
    model.load_state_dict(checkpoint['model_state'])
    return model.eval(), config


def train_run(config: TrainConfig, data: Data, out_dir: Optional[Union[str, Path]] = None,
              progress: bool = False) -> RunResult:
    """Train one model on ``data`` as ``config`` says and test its checkpoint.

    The run is a function of ``config`` (and ``data``): it seeds its own forked RNG with
    ``config.seed``, so two calls give bit-identical metrics and parameters on CPU, and the
    caller's random state is left untouched.

    Args:
        config (TrainConfig): The run's settings.
        data (Data): From :func:`load_data` (``x`` dense or sparse, masks, ``y``).
        out_dir (str, optional): If given, the run folder: ``config.yaml`` (first),
            ``metrics.csv``, ``checkpoint.pt`` and, last, ``result.json``, each written
            atomically. (default: ``None``)
        progress (bool, optional): Show an epoch progress bar (and, in mini-batch mode, one
            over each epoch's batches). (default: ``False``)
    """
    if config.batch_size is None:
        task = NodeTask(data)
    else:
        from gat_pyg.train.minibatch import MiniBatchTask   # it builds on NodeTask
        task = MiniBatchTask(config, data, progress)
    return fit(config, task, out_dir, progress)[0]


def fit(config: TrainConfig, task: Task, out_dir: Optional[Union[str, Path]] = None,
        progress: bool = False, replicas: Optional[Replicas] = None
        ) -> Tuple[RunResult, BaseModel]:
    """The training loop every kind of run shares: seed, build, train epoch by epoch under the
    stopping rule, restore the checkpoint, test it once, write the run folder.

    Args:
        config (TrainConfig): The run's settings.
        task (Task): The data side: epochs of optimisation and evaluation of a split.
        out_dir (str, optional): The run folder (see :func:`train_run`); only the main process
            writes it. (default: ``None``)
        progress (bool, optional): Epoch progress bar (main process only). (default: ``False``)
        replicas (Replicas, optional): The processes training together. (default: this one)

    Returns:
        The result (identical on every process) and the model, holding the tested checkpoint.
    """
    replicas = replicas if replicas is not None else Replicas()
    writes = out_dir is not None and replicas.is_main
    if writes:
        out_dir = Path(out_dir)
        atomic_write_text(out_dir / CONFIG_FILE, config.to_yaml())
    metric = task.metric
    start = time.perf_counter()
    # Every process seeds alike: the same initial parameters (DDP would broadcast rank 0's
    # anyway) and the same dropout masks (see gat_pyg.train.distributed for why).
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        model = build_model(config, task.in_channels, task.out_channels)
        trained = replicas.wrap(model)
        optimizer = torch.optim.Adam(
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
                       seconds=round(time.perf_counter() - start, 3), metric=metric)
    if replicas.is_main:
        log.info('%s/%s seed %d: test %s %.4f (checkpoint epoch %d of %d, %.1f s)',
                 config.dataset, config.model, config.seed, metric, test_score, best_epoch,
                 len(rows), result.seconds)
    if writes:
        atomic_write_csv(out_dir / METRICS_FILE, metric_columns(metric), rows)
        atomic_torch_save(out_dir / CHECKPOINT_FILE,
                          dict(config=config.to_dict(), model_state=best_state,
                               in_channels=task.in_channels, out_channels=task.out_channels,
                               epoch=best_epoch, val_acc=val_score, val_loss=val_loss,
                               test_acc=test_score))
        atomic_write_json(out_dir / RESULT_FILE,
                          dict(result=result.to_dict(), config=config.to_dict()))
    return result, model


def l2_penalty(optimizer: torch.optim.Optimizer) -> float:
    """The L2 term the optimizer's ``weight_decay`` minimises: the sum over its parameter groups
    of ``weight_decay / 2 * ||p||^2`` (its gradient, ``weight_decay * p``, is what Adam adds; it
    is TensorFlow's ``weight_decay * tf.nn.l2_loss(p)``)."""
    with torch.no_grad():
        return sum(group['weight_decay'] / 2 * float(p.pow(2).sum())
                   for group in optimizer.param_groups for p in group['params'])


def train_step(model: BaseModel, optimizer: torch.optim.Optimizer,
               data: Data) -> Tuple[float, float]:
    """One full-batch epoch: forward, cross-entropy on the training nodes, backward, step.
    Returns the training loss and accuracy. (The epoch benchmark times exactly this.)"""
    return NodeTask(data).train_epoch(model, optimizer)


@torch.no_grad()
def _evaluate(model: BaseModel, data: Data, mask: Tensor) -> Tuple[float, float]:
    model.eval()
    out = model(data.x, data.edge_index)[mask]
    return F.cross_entropy(out, data.y[mask]).item(), _accuracy(out, data.y[mask])


def _accuracy(logits: Tensor, y: Tensor) -> float:
    return (logits.argmax(dim=-1) == y).float().mean().item()

"""One training run: Adam on a graph under a paper's stopping rule.

Per epoch: one optimisation pass over the training nodes (dropout on), then a validation pass
(dropout off) whose loss and accuracy drive the stopping rule; the checkpoint the rule picks is
restored at the end and only then is the test set evaluated, once.

The loop itself (:func:`fit`) is shared by every kind of run: a :class:`Task` supplies the data
side (:class:`NodeTask` here: full-batch; :mod:`gat_pyg.train.minibatch`: neighbour-sampled
mini-batches; :mod:`gat_pyg.train.distributed`: a rank's share of the training nodes;
:mod:`gat_pyg.train.inductive`: whole graphs) and :class:`Replicas` the processes training
together and their device. Which task and which replicas a config gets is decided in one place,
:func:`gat_pyg.train.tasks.make_task`; this module imports none of the tasks built on it.
"""
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn import Module
from torch_geometric.data import Data
from torch_geometric.typing import Adj

from gat_pyg.data import load_planetoid
from gat_pyg.models import MODELS, BaseModel
from gat_pyg.train.config import ATTENTION_MODELS, TrainConfig
from gat_pyg.train.device import Precision, deterministic_algorithms
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
    checkpoint, ``epochs`` the number of epochs trained, ``device`` where the (main) process
    trained (``'cpu'``, ``'cuda:0'``) and ``processes`` how many trained together."""
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
    device: str = 'cpu'
    processes: int = 1

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


class NodeTask(Task):
    """Full-batch node classification on one graph: every epoch is one forward over the whole
    graph and one Adam step on the cross-entropy of the training nodes.

    Evaluation scores every node at once through :meth:`logits`: one full-graph forward pass,
    or, with ``inference_batch_size``, :meth:`gat_pyg.models.BaseModel.inference` layer by
    layer (the same numbers).

    Args:
        data (Data): The graph, with ``train_mask`` / ``val_mask`` / ``test_mask``. It is not
            modified: the task keeps a shallow copy on its device.
        precision (Precision, optional): Device and arithmetic. (default: float32 on the CPU)
        train_mask (Tensor, optional): The nodes whose loss this process takes (a rank's share in
            multi-process training). (default: ``data.train_mask``)
        loss_norm (float, optional): Divide the summed loss by this instead of taking the mean
            over ``train_mask`` (multi-process training; see :mod:`gat_pyg.train.distributed`).
            (default: ``None``, the mean)
        inference_batch_size (int, optional): Evaluate layer by layer in blocks of this many
            target nodes. (default: ``None``, one full-graph forward pass)
        graph_on_device (bool, optional): Keep the graph on ``precision.device``; ``False``
            leaves it where it is (mini-batch training with layer-wise evaluation moves only
            batches and blocks). (default: ``True``)
        progress (bool, optional): Progress bars in layer-wise evaluation. (default: ``False``)
    """

    def __init__(self, data: Data, precision: Optional[Precision] = None, *,
                 train_mask: Optional[Tensor] = None, loss_norm: Optional[float] = None,
                 inference_batch_size: Optional[int] = None, graph_on_device: bool = True,
                 progress: bool = False):
        self.precision = precision if precision is not None else Precision()
        self.data = to_device(data, self.device if graph_on_device else data.x.device)
        self.train_mask = self.data.train_mask if train_mask is None else \
            train_mask.to(self.data.train_mask.device)
        self.loss_norm = loss_norm
        self.inference_batch_size = inference_batch_size
        self.progress = progress
        self.in_channels = data.num_features
        self.out_channels = int(data.y.max()) + 1
        self.graph: Adj = self.data.edge_index
        """The whole graph, in training (full-batch) and evaluation alike."""
        self._prepared: Optional[Tuple[Module, Any]] = None

    def describe(self) -> str:
        return 'full-batch'

    def train_epoch(self, model: Module, optimizer: torch.optim.Optimizer) -> Tuple[float, float]:
        data, mask = self.data, self.train_mask
        model.train()
        optimizer.zero_grad()
        with self.precision.autocast():
            out = model(data.x, self.prepared_graph(model))
        # The loss in float32 whatever the forward's precision (autocast's own policy for
        # cross_entropy, applied explicitly so it holds on every device).
        out = out[mask].float()
        if self.loss_norm is None:
            loss = F.cross_entropy(out, data.y[mask])
        else:
            loss = F.cross_entropy(out, data.y[mask], reduction='sum') / self.loss_norm
        self.precision.step(loss, optimizer)
        return loss.item(), _accuracy(out, data.y[mask])

    def prepared_graph(self, model: Module):
        """:attr:`graph` as ``model``'s layers read it (a
        :class:`~gat_pyg.nn.graph.PreparedGraph` for attention models), prepared once per model
        and kept for every epoch: mini-batches, which the model also prepares, do not evict
        it, and no epoch re-checks it."""
        base = getattr(model, 'module', model)      # under DistributedDataParallel
        if self._prepared is None or self._prepared[0] is not base:
            self._prepared = (base, base.prepare_graph(self.graph, self.data.num_nodes))
        return self._prepared[1]

    @torch.no_grad()
    def logits(self, model: BaseModel) -> Tensor:
        """Every node's logits with dropout off, on the graph's device: the one place where
        evaluation hands the whole graph (:attr:`graph`) to the model."""
        model.eval()
        with self.precision.autocast():
            if self.inference_batch_size is None:
                return model(self.data.x, self.prepared_graph(model))
            return model.inference(self.data.x, self.graph,
                                   batch_size=self.inference_batch_size, device=self.device,
                                   progress=self.progress)

    @torch.no_grad()
    def evaluate(self, model: BaseModel, split: str) -> Tuple[float, float]:
        mask = self.data[f'{split}_mask']
        out = self.logits(model)[mask].float()
        y = self.data.y[mask]
        return F.cross_entropy(out, y).item(), _accuracy(out, y)


class Replicas:
    """The processes that train one model together, and the device each computes on. This base
    is a single process; the multi-process one
    (:class:`gat_pyg.train.distributed.DistributedReplicas`) wraps the model in
    ``DistributedDataParallel`` and makes rank 0's validation numbers everyone's.

    Args:
        device (torch.device, optional): Where the model trains. (default: the CPU)
    """
    rank: int = 0
    world_size: int = 1

    def __init__(self, device: Union[str, torch.device] = 'cpu'):
        self.device = torch.device(device)

    @property
    def is_main(self) -> bool:
        """Whether this process evaluates, logs and writes the run folder."""
        return self.rank == 0

    def describe(self) -> str:
        """Who trains, for the log."""
        return 'one process'

    def wrap(self, model: BaseModel) -> Module:
        """The module that trains (on :attr:`device`; gradients synchronised across
        processes). ``model`` itself is moved to the device."""
        return model.to(self.device)

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


def load_checkpoint(path: Union[str, Path], device: Union[str, torch.device] = 'cpu'
                    ) -> Tuple[BaseModel, TrainConfig]:
    """Rebuild the model saved in a run's ``checkpoint.pt`` (in eval mode, on ``device``) and
    its config. The tensors are read straight onto ``device`` (``map_location``), so a
    checkpoint written on a GPU loads on a CPU-only machine and vice versa."""
    device = torch.device(device)
    checkpoint = torch.load(path, map_location=device, weights_only=True)
    config = TrainConfig.from_dict(checkpoint['config'])
    model = build_model(config, checkpoint['in_channels'], checkpoint['out_channels'])
    model.load_state_dict(checkpoint['model_state'])
    return model.to(device).eval(), config


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
        # Saved from the CPU, so the file does not name a device; load_checkpoint maps it anyway.
        atomic_torch_save(out_dir / CHECKPOINT_FILE,
                          dict(config=config.to_dict(),
                               model_state={k: v.cpu() for k, v in best_state.items()},
                               in_channels=task.in_channels, out_channels=task.out_channels,
                               epoch=best_epoch, val_acc=val_score, val_loss=val_loss,
                               test_acc=test_score, device=str(device)))
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


def make_optimizer(params: Union[Iterable[Tensor], Iterable[Dict[str, Any]]], lr: float,
                   weight_decay: float = 0.0) -> torch.optim.Adam:
    """The package's optimizer: Adam (Kingma & Ba 2015, the GAT paper's), with L2
    ``weight_decay`` added to the gradient as torch's ``Adam`` does, over parameters or
    parameter groups (a group's own ``weight_decay`` wins).

    Torch's fused implementation (``fused=True``: one kernel for all parameters) is used
    whenever every parameter is a floating-point tensor on the CPU or a CUDA device, else the
    default one. The update rule is the same; the fused kernel rounds differently in the last
    bits, so seeded runs differ slightly from runs with the default implementation. For the
    paper's Cora GAT one step took 0.14 ms fused against 0.47 ms (per-parameter loops of small
    operations, and a host synchronisation per parameter) on the 2-core development machine.

    Raises:
        ValueError: ``lr`` <= 0 or ``weight_decay`` < 0, or no parameters.
    """
    if not lr > 0:
        raise ValueError(f'lr: expected a positive learning rate, got {lr!r}')
    if not weight_decay >= 0:
        raise ValueError(f'weight_decay: expected a value >= 0, got {weight_decay!r}')
    params = list(params)
    tensors = [p for item in params
               for p in (item['params'] if isinstance(item, dict) else [item])]
    if not tensors:
        raise ValueError('params: the model has no parameters to optimise')
    fused = all(isinstance(p, Tensor) and p.is_floating_point()
                and not isinstance(p, torch.nn.parameter.UninitializedParameter)
                and p.device.type in ('cpu', 'cuda') for p in tensors)
    return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, fused=fused or None)


def train_step(model: BaseModel, optimizer: torch.optim.Optimizer,
               data: Data) -> Tuple[float, float]:
    """One full-batch epoch: forward, cross-entropy on the training nodes, backward, step.
    Returns the training loss and accuracy. (The epoch benchmark times exactly this.)"""
    return NodeTask(data).train_epoch(model, optimizer)


def to_device(data: Data, device: Union[str, torch.device]) -> Data:
    """A shallow copy of ``data`` with every tensor on ``device``. The caller's ``data`` is not
    modified (PyG's ``Data.to`` moves in place); a tensor already there is shared, not
    copied."""
    return Data(**{key: value.to(device) if isinstance(value, Tensor) else value
                   for key, value in data.items()})


def _accuracy(logits: Tensor, y: Tensor) -> float:
    return (logits.argmax(dim=-1) == y).float().mean().item()

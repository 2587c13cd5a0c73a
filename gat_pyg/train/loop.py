"""One training run: Adam on a Planetoid graph under a paper's stopping rule.

Per epoch: one optimisation step on the training nodes (dropout on) — full-batch, or, with
``config.batch_size`` set, one pass over neighbour-sampled mini-batches
(:mod:`gat_pyg.train.minibatch`) — then a validation pass (dropout off) whose loss and
accuracy drive the stopping rule; the checkpoint the rule picks is
restored at the end and only then is the test set evaluated, once.
"""
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor
from torch_geometric.data import Data
from tqdm.auto import tqdm

from gat_pyg.data import load_planetoid
from gat_pyg.models import MODELS, BaseModel
from gat_pyg.train.config import ATTENTION_MODELS, TrainConfig
from gat_pyg.train.early_stopping import make_stopping
from gat_pyg.train.minibatch import MiniBatchStep
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
    """What a finished run reports. Accuracies are fractions; ``best_epoch`` is the (0-based)
    epoch of the tested checkpoint, ``epochs`` the number of epochs trained."""
    dataset: str
    model: str
    seed: int
    test_acc: float
    val_acc: float
    val_loss: float
    best_epoch: int
    epochs: int
    seconds: float

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)


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
                      attn_dropout=config.attn_dropout)
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
    if out_dir is not None:
        out_dir = Path(out_dir)
        atomic_write_text(out_dir / CONFIG_FILE, config.to_yaml())
    num_classes = int(data.y.max()) + 1
    start = time.perf_counter()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        model = build_model(config, data.num_features, num_classes)
        optimizer = torch.optim.Adam(
            model.parameter_groups(config.weight_decay, config.weight_decay_first_layer_only),
            lr=config.lr)
        # The one difference between the two modes: how an epoch trains.
        step: Callable[[BaseModel, torch.optim.Optimizer], Tuple[float, float]] = (
            (lambda model, optimizer: train_step(model, optimizer, data))
            if config.batch_size is None
            else MiniBatchStep(config, data, progress))
        stopping = make_stopping(config.early_stopping, config.patience)
        rows: List[Dict[str, Any]] = []
        best_state: Dict[str, Tensor] = {}
        best_epoch = -1
        bar = tqdm(total=config.epochs, disable=not progress, leave=False, unit='epoch',
                   desc=f'{config.dataset}/{config.model} seed {config.seed}')
        with bar:
            for epoch in range(config.epochs):
                train_loss, train_acc = step(model, optimizer)
                val_loss, val_acc = _evaluate(model, data, data.val_mask)
                decision = stopping.step(val_loss, val_acc)
                if decision.save:
                    best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
                    best_epoch = epoch
                rows.append(dict(epoch=epoch, train_loss=train_loss, train_acc=train_acc,
                                 val_loss=val_loss, val_acc=val_acc,
                                 checkpoint=int(decision.save),
                                 seconds=round(time.perf_counter() - start, 4)))
                bar.update()
                if epoch % 10 == 0:
                    bar.set_postfix(val_acc=f'{val_acc:.3f}', val_loss=f'{val_loss:.3f}',
                                    refresh=False)
                if decision.stop:
                    break
        model.load_state_dict(best_state)
        val_loss, val_acc = _evaluate(model, data, data.val_mask)
        _, test_acc = _evaluate(model, data, data.test_mask)
    result = RunResult(dataset=config.dataset, model=config.model, seed=config.seed,
                       test_acc=test_acc, val_acc=val_acc, val_loss=val_loss,
                       best_epoch=best_epoch, epochs=len(rows),
                       seconds=round(time.perf_counter() - start, 3))
    log.info('%s/%s seed %d: test acc %.4f (checkpoint epoch %d of %d, %.1f s)',
             config.dataset, config.model, config.seed, test_acc, best_epoch, len(rows),
             result.seconds)
    if out_dir is not None:
        atomic_write_csv(out_dir / METRICS_FILE, METRIC_COLUMNS, rows)
        atomic_torch_save(dict(config=config.to_dict(), model_state=best_state,
                               in_channels=data.num_features, out_channels=num_classes,
                               epoch=best_epoch, val_acc=val_acc, val_loss=val_loss,
                               test_acc=test_acc), out_dir / CHECKPOINT_FILE)
        atomic_write_json(out_dir / RESULT_FILE,
                          dict(result=result.to_dict(), config=config.to_dict()))
    return result


def train_step(model: BaseModel, optimizer: torch.optim.Optimizer,
               data: Data) -> Tuple[float, float]:
    """One full-batch epoch: forward, cross-entropy on the training nodes, backward, step.
    Returns the training loss and accuracy. (The epoch benchmark times exactly this.)"""
    model.train()
    optimizer.zero_grad()
    out = model(data.x, data.edge_index)[data.train_mask]
    loss = F.cross_entropy(out, data.y[data.train_mask])
    loss.backward()
    optimizer.step()
    return loss.item(), _accuracy(out, data.y[data.train_mask])


@torch.no_grad()
def _evaluate(model: BaseModel, data: Data, mask: Tensor) -> Tuple[float, float]:
    model.eval()
    out = model(data.x, data.edge_index)[mask]
    return F.cross_entropy(out, data.y[mask]).item(), _accuracy(out, data.y[mask])


def _accuracy(logits: Tensor, y: Tensor) -> float:
    return (logits.argmax(dim=-1) == y).float().mean().item()

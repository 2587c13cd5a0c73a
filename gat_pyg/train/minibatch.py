"""Mini-batch training with neighbour sampling (PyG's ``NeighborLoader``), in one process or
data-parallel across the processes of ``torchrun``.

Only the optimisation pass changes: :func:`gat_pyg.train.loop.fit` runs the same epoch loop,
stopping rule, checkpointing and run files whichever task it is given. Here one epoch is a pass
over the training nodes in shuffled batches of ``config.batch_size`` target ("seed") nodes; each
batch is the subgraph ``NeighborLoader`` samples around its targets (``config.num_neighbors``
per hop, all neighbours if unset), the model runs on the whole subgraph, and the loss reads the
first ``batch.batch_size`` rows, the targets (``NeighborLoader`` puts them first).

**Data parallel** (PyG's multi-GPU examples: each process samples its own seeds, DDP averages
the gradients). Every epoch the training nodes are shuffled with ``seed + epoch`` -- the same
permutation on every rank -- and dealt out to the ``W`` ranks by
:class:`torch.utils.data.DistributedSampler`: rank ``r`` takes positions ``r, r + W, ...``.
When ``W`` does not divide the number of training nodes ``N`` the last ``N mod W`` nodes of the
permutation are **dropped** for that epoch (``drop_last=True``; fewer than ``W`` nodes, a
different few each epoch), not padded with repeats: padding would count some nodes twice in a
step. Every rank then holds ``N // W`` nodes, cuts them into the same number of batches, and its
``k``-th batch has as many targets as every other rank's ``k``-th batch. Each rank's loss is the
mean over its targets and DDP averages the gradients over the ranks, so a step's gradient is the
gradient of the mean loss over the union of the ranks' ``k``-th batches: the step one process
would take on that union (exactly so when the sampled neighbourhoods and dropout agree, e.g.
with all neighbours and no dropout, which the tests check). With one process the sampler keeps
every node and this is plain shuffled mini-batch training.

Randomness: every rank builds the model from ``config.seed`` (the same initial parameters, which
DDP would broadcast anyway). Neighbour sampling and dropout draw from torch's global generator;
with several processes each rank reseeds it with ``seed + rank * 2**32`` before its first batch,
so ranks sample independently and a run is still a function of its config.

Evaluation is :class:`gat_pyg.train.fullbatch.NodeTask`'s: the whole graph in one forward pass
or, with ``inference_batch_size``, layer by layer (in that case the graph stays where it was
loaded and only batches and blocks move to the device).

Sparse features: ``NeighborLoader`` gathers ``data.x[n_id]`` with ``index_select``, which
torch.sparse COO tensors support, so ``x`` stays sparse per batch (the tests check it).

Without pyg-lib, PyG's ``NeighborLoader`` samples with torch_sparse and warns, on every loader
it builds, that this fallback "is deprecated and will be removed soon". pyg-lib has no wheels on
PyPI (only on data.pyg.org, for some torch versions), so for most users of this package the
warning is noise: :func:`make_loader` replaces it with one log line per process that says what
it means (:func:`explain_missing_pyg_lib`).
"""
import functools
import logging
import warnings
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch.nn import Module
from torch.utils.data import DistributedSampler
from torch_geometric.data import Data
from torch_geometric.loader import NeighborLoader
from tqdm.auto import tqdm

from gat_pyg.models import BaseModel
from gat_pyg.train.schema import TrainConfig
from gat_pyg.train.device import Precision
from gat_pyg.train.fullbatch import NodeTask
from gat_pyg.train.replicas import Replicas
from gat_pyg.train.progress import bar_disabled

log = logging.getLogger(__name__)


def make_loader(config: TrainConfig, data: Data, rank: int = 0,
                world_size: int = 1) -> NeighborLoader:
    """The ``NeighborLoader`` over rank ``rank``'s share of ``data.train_mask`` that ``config``
    describes (module docstring). Call ``loader.sampler.set_epoch(epoch)`` before each epoch to
    reshuffle.

    Raises:
        ValueError: no ``batch_size``; no training node; fewer training nodes than processes.
    """
    if config.batch_size is None:
        raise ValueError("config key 'batch_size': mini-batch training needs a batch size, "
                         'got null')
    train_nodes = data.train_mask.nonzero().view(-1)
    if train_nodes.numel() == 0:
        raise ValueError('mini-batch training: train_mask selects no node, so there is nothing '
                         'to batch')
    if world_size > train_nodes.numel():
        raise ValueError(f'multi-process training: world size {world_size} is larger than the '
                         f'number of training nodes {train_nodes.numel()}; every rank needs at '
                         'least one training node, so launch at most that many processes')
    num_neighbors = config.num_neighbors or [-1] * config.num_layers
    # Only what a batch needs travels with it: not the masks of the other splits.
    graph = Data(x=data.x, edge_index=data.edge_index, y=data.y, num_nodes=data.num_nodes)
    sampler = DistributedSampler(range(train_nodes.numel()), num_replicas=world_size,
                                 rank=rank, shuffle=True, seed=config.seed, drop_last=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        loader = NeighborLoader(graph, num_neighbors=list(num_neighbors),
                                batch_size=config.batch_size, input_nodes=train_nodes,
                                sampler=sampler)
    for warning in caught:
        if PYG_LIB_WARNING in str(warning.message):
            explain_missing_pyg_lib()
        else:                           # anything else PyG says is passed on as it was
            warnings.warn_explicit(warning.message, warning.category, warning.filename,
                                   warning.lineno)
    return loader


PYG_LIB_WARNING = "without a 'pyg-lib' installation is deprecated"
"""The part of PyG's ``UserWarning`` (``torch_geometric.sampler.NeighborSampler``) that
:func:`make_loader` replaces."""


@functools.lru_cache(maxsize=None)
def explain_missing_pyg_lib() -> None:
    """Log, once per process (the cache makes later calls no-ops), what PyG's "Using
    'NeighborSampler' without a 'pyg-lib' installation is deprecated" warning means here."""
    log.warning("pyg-lib is not installed, so PyG's NeighborLoader samples neighbours with "
                'torch_sparse, a fallback PyG has deprecated (its UserWarning "Using '
                "'NeighborSampler' without a 'pyg-lib' installation is deprecated\" is replaced "
                'by this line). Training is unaffected: torch_sparse samples uniformly without '
                'replacement, as pyg-lib does (PyG recommends pyg-lib for speed). pyg-lib has no '
                'wheels on PyPI (data.pyg.org has some, for some torch versions); see the '
                'README, "Mini-batch training". Shown once per process.')


BATCH_BAR_DELAY = 1.0
"""Seconds an epoch runs before its bar over the batches appears (tqdm's ``delay``)."""


class MiniBatchTask(NodeTask):
    """Node classification trained on neighbour-sampled mini-batches of this rank's share of the
    training nodes (all of them in one process); evaluation is :class:`NodeTask`'s.
    ``train_epoch`` returns the epoch's training loss and accuracy over every rank's targets
    (each batch measured with the parameters it was trained from).

    Args:
        config (TrainConfig): ``batch_size``, ``num_neighbors``, ``num_layers``, ``seed``,
            ``inference_batch_size``.
        data (Data): The whole graph (``x`` dense or torch.sparse COO, ``edge_index``, ``y``,
            the masks), where it was loaded (batches are sampled there and moved to the
            device one at a time).
        replicas (Replicas, optional): The processes training together. (default: one)
        precision (Precision, optional): Device and arithmetic. (default: float32 on the CPU)
        progress (bool, optional): A progress bar over each epoch's batches.
            (default: ``False``)
    """

    def __init__(self, config: TrainConfig, data: Data, replicas: Optional[Replicas] = None,
                 precision: Optional[Precision] = None, progress: bool = False):
        super().__init__(data, precision, inference_batch_size=config.inference_batch_size,
                         graph_on_device=config.inference_batch_size is None,
                         progress=progress)
        self.replicas = replicas if replicas is not None else Replicas(self.device)
        self.loader = make_loader(config, data, self.replicas.rank, self.replicas.world_size)
        self.batch_size = config.batch_size
        self.num_neighbors = config.num_neighbors
        self.seed = config.seed
        self.epoch = 0

    @property
    def batches_per_epoch(self) -> int:
        """Optimizer steps per epoch on this rank (the same on every rank)."""
        return len(self.loader)

    @property
    def share_size(self) -> int:
        """Training nodes this rank visits per epoch."""
        return len(self.loader.sampler)

    def describe(self) -> str:
        neighbours = 'all' if self.num_neighbors is None else self.num_neighbors
        return (f'mini-batch (batch_size {self.batch_size}, num_neighbors {neighbours}; '
                f'{self.share_size} training nodes and {self.batches_per_epoch} batches per '
                'epoch per process)')

    def train_epoch(self, model: Module, optimizer: torch.optim.Optimizer
                    ) -> Tuple[float, float]:
        if self.epoch == 0 and self.replicas.world_size > 1:
            # After the model's initialisation, which every rank draws alike.
            torch.manual_seed(self.seed + self.replicas.rank * 2 ** 32)
        self.loader.sampler.set_epoch(self.epoch)
        model.train()
        loss_sum, correct, count = 0.0, 0, 0
        # On a terminal only (a bar redrawn into a file is a line per batch), and only for an
        # epoch long enough to watch: tqdm redraws at most every 0.1 s, so the bar of a fast
        # epoch showed "0/3" and was erased before it ever advanced. The epoch bar above it
        # counts the epochs either way.
        batches = tqdm(self.loader, disable=bar_disabled(self.progress), leave=False,
                       unit='batch', desc=f'epoch {self.epoch}', delay=BATCH_BAR_DELAY)
        for batch in batches:
            loss, correct_here = train_batch(model, optimizer, batch.to(self.device),
                                             self.precision)
            loss_sum += loss * batch.batch_size
            correct += correct_here
            count += batch.batch_size
        self.epoch += 1
        loss_sum, correct, count = self.replicas.all_reduce_sum([loss_sum, correct, count])
        return loss_sum / count, correct / count


def train_batch(model: BaseModel, optimizer: torch.optim.Optimizer, batch: Data,
                precision: Optional[Precision] = None) -> Tuple[float, int]:
    """One optimisation step on a ``NeighborLoader`` batch (on the model's device); returns the
    loss (the mean over the batch's targets) and the number of correctly classified targets.
    (The mini-batch and DDP benchmarks time exactly this.)"""
    precision = precision if precision is not None else Precision()
    optimizer.zero_grad()
    # Trim-free: every layer runs on the whole sampled subgraph; only the targets' rows (the
    # first batch.batch_size) enter the loss.
    with precision.autocast():
        out = model(batch.x, batch.edge_index)
    out = out[:batch.batch_size].float()
    y = batch.y[:batch.batch_size]
    loss = F.cross_entropy(out, y)
    precision.step(loss, optimizer)
    return loss.item(), int((out.argmax(dim=-1) == y).sum())

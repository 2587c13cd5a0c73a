"""Mini-batch training with neighbour sampling (PyG's ``NeighborLoader``), for graphs whose
full-batch forward pass does not fit.

Only the optimisation step changes: :func:`gat_pyg.train.loop.train_run` runs the same epoch
loop, stopping rule, checkpointing and run files whichever step it is given. Here one epoch is a
pass over the training nodes in shuffled batches of ``config.batch_size``; each batch is the
subgraph ``NeighborLoader`` samples around its target nodes (``config.num_neighbors`` per hop,
all neighbours if unset), the model runs on the whole subgraph, and the loss reads the first
``batch.batch_size`` rows, the targets (``NeighborLoader`` puts them first).

Evaluation stays full-batch (the same validation and test passes as full-batch training): for
Planetoid-size graphs inference without gradients is cheap (nothing is kept for backward, and
the fused CSR path holds no per-edge feature tensors), and it scores every node with its exact
neighbourhood, so the stopping rule and the test accuracy do not depend on sampling noise.
(A graph too large even for that would need layer-wise inference; the CLI's datasets do not.)

Sparse features: ``NeighborLoader`` gathers ``data.x[n_id]`` with ``index_select``, which
torch.sparse COO tensors support, so ``x`` stays sparse per batch (the tests check it).
"""
import logging
from typing import Tuple

import torch
import torch.nn.functional as F
from torch_geometric.data import Data
from torch_geometric.loader import NeighborLoader
from tqdm.auto import tqdm

from torch.nn import Module

from gat_pyg.models import BaseModel
from gat_pyg.train.config import TrainConfig
from gat_pyg.train.loop import NodeTask

log = logging.getLogger(__name__)


def make_loader(config: TrainConfig, data: Data) -> NeighborLoader:
    """The shuffled ``NeighborLoader`` over ``data.train_mask`` that ``config`` describes.

    Its shuffling draws from its own ``torch.Generator`` seeded with ``config.seed``;
    neighbour sampling draws from torch's global generator, which the training loop seeds
    with ``config.seed`` too, so a run is reproducible.
    """
    if config.batch_size is None:
        raise ValueError("config key 'batch_size': mini-batch training needs a batch size, "
                         'got null')
    if not bool(data.train_mask.any()):
        raise ValueError('mini-batch training: train_mask selects no node, so there is nothing '
                         'to batch')
    num_neighbors = config.num_neighbors or [-1] * config.num_layers
    # Only what a batch needs travels with it: not the masks of the other splits.
    graph = Data(x=data.x, edge_index=data.edge_index, y=data.y, num_nodes=data.num_nodes)
    loader = NeighborLoader(graph, num_neighbors=list(num_neighbors),
                            batch_size=config.batch_size, input_nodes=data.train_mask,
                            shuffle=True,
                            generator=torch.Generator().manual_seed(config.seed))
    log.debug('mini-batch training: %d batches of up to %d target nodes per epoch, neighbours '
              'per hop %s', len(loader), config.batch_size, num_neighbors)
    return loader


class MiniBatchTask(NodeTask):
    """Node classification trained on neighbour-sampled mini-batches: one epoch is a pass over
    the training nodes in shuffled batches; evaluation is :class:`NodeTask`'s full-batch pass.
    ``train_epoch`` returns the epoch's training loss and accuracy, averaged over target nodes
    (each batch measured with the parameters it was trained from).

    Args:
        config (TrainConfig): ``batch_size``, ``num_neighbors``, ``num_layers``, ``seed``.
        data (Data): The whole graph (``x`` dense or torch.sparse COO, ``edge_index``, ``y``,
            ``train_mask``).
        progress (bool, optional): A progress bar over each epoch's batches.
            (default: ``False``)
    """

    def __init__(self, config: TrainConfig, data: Data, progress: bool = False):
        super().__init__(data)
        self.loader = make_loader(config, data)
        self.progress = progress
        self.epoch = 0

    def train_epoch(self, model: Module, optimizer: torch.optim.Optimizer
                    ) -> Tuple[float, float]:
        model.train()
        loss_sum, correct, count = 0.0, 0, 0
        batches = tqdm(self.loader, disable=not self.progress, leave=False, unit='batch',
                       desc=f'epoch {self.epoch}')
        for batch in batches:
            loss, correct_here = train_batch(model, optimizer, batch)
            loss_sum += loss * batch.batch_size
            correct += correct_here
            count += batch.batch_size
        self.epoch += 1
        return loss_sum / count, correct / count


def train_batch(model: BaseModel, optimizer: torch.optim.Optimizer, batch: Data
                ) -> Tuple[float, int]:
    """One optimisation step on a ``NeighborLoader`` batch; returns the loss and the number of
    correctly classified target nodes. (The mini-batch benchmark times exactly this.)"""
    optimizer.zero_grad()
    # Trim-free: every layer runs on the whole sampled subgraph; only the targets' rows (the
    # first batch.batch_size) enter the loss.
    out = model(batch.x, batch.edge_index)[:batch.batch_size]
    y = batch.y[:batch.batch_size]
    loss = F.cross_entropy(out, y)
    loss.backward()
    optimizer.step()
    return loss.item(), int((out.argmax(dim=-1) == y).sum())

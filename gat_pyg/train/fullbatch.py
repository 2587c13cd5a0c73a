"""Full-batch node classification: every epoch one forward pass over the whole graph.

:class:`NodeTask` is :func:`gat_pyg.train.loop.fit`'s data side for one Planetoid graph in one
process; the mini-batch (:mod:`gat_pyg.train.minibatch`) and multi-process
(:mod:`gat_pyg.train.distributed`) tasks build on it and keep its evaluation.
"""
from typing import Any, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn import Module
from torch_geometric.data import Data
from torch_geometric.typing import Adj

from gat_pyg.models import BaseModel
from gat_pyg.train.device import Precision, to_device
from gat_pyg.train.loop import Task


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


def _accuracy(logits: Tensor, y: Tensor) -> float:
    return (logits.argmax(dim=-1) == y).float().mean().item()

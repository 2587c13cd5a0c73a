"""Inductive training on many graphs (PPI): whole graphs in mini-batches, multi-label loss.

The GAT paper's PPI protocol (Table 3): the model trains on 20 graphs, two at a time, and is
validated and tested on graphs it never saw. Every node has 121 independent binary labels, so the
output layer gives one logit per label, the loss is the binary cross-entropy of each (node,
label) pair, and the score is the micro-averaged F1 over all of them. The training loop itself is
:func:`gat_pyg.train.loop.fit`, shared with the transductive runs: the same seeding, stopping
rules (the GAT rule reads micro-F1 where it reads accuracy on Planetoid), checkpoints and run
folder.
"""
from typing import Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn import Module
from torch_geometric.loader import DataLoader

from gat_pyg.models import BaseModel
from gat_pyg.train.device import Precision
from gat_pyg.train.loop import Task


def micro_f1(pred: Tensor, target: Tensor) -> float:
    r"""Micro-averaged F1 of binary predictions: every (node, label) pair counts once,

    .. math::
        F_1 = \frac{2\,TP}{2\,TP + FP + FN},

    which is :func:`sklearn.metrics.f1_score` with ``average='micro'``. With no positive
    prediction and no positive target the score is 0 (sklearn's ``zero_division=0``).

    Args:
        pred (Tensor): Predictions, bool or 0 / 1, any shape.
        target (Tensor): True labels, bool or 0 / 1, the same shape.
    """
    if pred.shape != target.shape:
        raise ValueError(f'micro_f1: pred and target must have the same shape, got '
                         f'{tuple(pred.shape)} and {tuple(target.shape)}')
    pred, target = pred.bool(), target.bool()
    true_pos = (pred & target).sum().item()
    # 2 TP + FP + FN = (TP + FP) + (TP + FN): the positive predictions plus the positive labels.
    denominator = pred.sum().item() + target.sum().item()
    return 2.0 * true_pos / denominator if denominator else 0.0


class GraphTask(Task):
    """Multi-label node classification over datasets of whole graphs (:func:`fit`'s data side).

    Args:
        train, val, test (Sequence[Data]): The graphs of each split (e.g. from
            :func:`gat_pyg.data.load_ppi`), each with ``x``, ``edge_index`` and multi-hot
            ``y`` (``[num_nodes, num_labels]``).
        graphs_per_batch (int): Training graphs per optimisation step (paper: 2); the loader
            reshuffles them every epoch with the run's seeded RNG.
        precision (Precision, optional): Device and arithmetic; batches are moved to the device
            one at a time. (default: float32 on the CPU)
    """
    metric = 'micro_f1'

    def __init__(self, train: Sequence, val: Sequence, test: Sequence, graphs_per_batch: int,
                 precision: Optional[Precision] = None):
        self.precision = precision if precision is not None else Precision()
        self.loaders = {
            'train': DataLoader(train, batch_size=graphs_per_batch, shuffle=True),
            # Evaluation order does not matter; batching only bounds the memory.
            'val': DataLoader(val, batch_size=graphs_per_batch),
            'test': DataLoader(test, batch_size=graphs_per_batch),
        }
        self.in_channels = train[0].num_features
        self.out_channels = train[0].y.size(-1)

    def describe(self) -> str:
        return f"whole graphs ({self.loaders['train'].batch_size} per batch)"

    def train_epoch(self, model: Module, optimizer: torch.optim.Optimizer) -> Tuple[float, float]:
        model.train()
        losses, preds, targets = [], [], []
        for batch in self.loaders['train']:
            batch = batch.to(self.device)
            optimizer.zero_grad()
            with self.precision.autocast():
                out = model(batch.x, batch.edge_index)
            out = out.float()
            loss = F.binary_cross_entropy_with_logits(out, batch.y)
            self.precision.step(loss, optimizer)
            losses.append(loss.detach() * batch.y.numel())
            preds.append(out.detach() > 0)
            targets.append(batch.y)
        return self._scores(losses, preds, targets)

    @torch.no_grad()
    def evaluate(self, model: BaseModel, split: str) -> Tuple[float, float]:
        model.eval()
        losses, preds, targets = [], [], []
        for batch in self.loaders[split]:
            batch = batch.to(self.device)
            with self.precision.autocast():
                out = model(batch.x, batch.edge_index).float()
            losses.append(F.binary_cross_entropy_with_logits(out, batch.y, reduction='sum'))
            preds.append(out > 0)
            targets.append(batch.y)
        return self._scores(losses, preds, targets)

    @staticmethod
    def _scores(loss_sums: Sequence[Tensor], preds: Sequence[Tensor],
                targets: Sequence[Tensor]) -> Tuple[float, float]:
        # The mean loss over every (node, label) pair of the split, not a mean of batch means:
        # graphs differ in size.
        target = torch.cat(list(targets))
        loss = torch.stack(list(loss_sums)).sum().item() / target.numel()
        return loss, micro_f1(torch.cat(list(preds)), target)

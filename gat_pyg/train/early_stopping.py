"""Stopping rules of the two papers, fed one epoch's validation metrics at a time.

Each rule answers two questions per epoch (:class:`Decision`): should the model as it is now be
kept as the checkpoint whose test accuracy is reported, and should training stop. They are pure
bookkeeping on numbers, so they are tested on scripted metric sequences without training.
"""
from dataclasses import dataclass
from typing import List


@dataclass(frozen=True)
class Decision:
    """The verdict on one epoch: ``save`` it as the checkpoint, ``stop`` after it."""
    save: bool
    stop: bool


class EarlyStopping:
    """Base of the stopping rules: :meth:`step` once per epoch, after its validation pass.

    ``penalised_loss`` says which validation loss the rule is fed: ``False`` the cross-entropy
    alone, ``True`` the cross-entropy plus the L2 penalty the optimizer applies, as the rule's
    original code saw it.
    """
    penalised_loss = False

    def step(self, val_loss: float, val_acc: float) -> Decision:
        raise NotImplementedError


class GATStopping(EarlyStopping):
    """The official GAT rule (``execute_cora.py`` of PetarV-/GAT).

    An epoch resets the patience counter if its validation accuracy is at least the best so far
    *or* its validation loss at most the lowest so far; it becomes the checkpoint only if *both*
    hold. Training stops after ``patience`` epochs in a row without a reset. The bests are
    tracked separately, so the checkpoint can lag behind them.

    Args:
        patience (int): Epochs without improvement before stopping (paper: ``100``).
    """

    def __init__(self, patience: int):
        if patience < 1:
            raise ValueError(f'GATStopping: patience must be >= 1, got {patience}')
        self.patience = patience
        # As the official code: accuracy starts at 0 and loss at infinity, so epoch 0 saves.
        self.best_acc = 0.0
        self.best_loss = float('inf')
        self.bad_epochs = 0

    def step(self, val_loss: float, val_acc: float) -> Decision:
        acc_ok = val_acc >= self.best_acc
        loss_ok = val_loss <= self.best_loss
        if acc_ok or loss_ok:
            self.best_acc = max(self.best_acc, val_acc)
            self.best_loss = min(self.best_loss, val_loss)
            self.bad_epochs = 0
            return Decision(save=acc_ok and loss_ok, stop=False)
        self.bad_epochs += 1
        return Decision(save=False, stop=self.bad_epochs >= self.patience)


class WindowStopping(EarlyStopping):
    """Kipf & Welling's GCN rule (``train.py`` of tkipf/gcn, ``early_stopping=10``).

    Stop once an epoch's validation loss exceeds the mean of the ``window`` epochs before it;
    the check starts at epoch ``window + 1`` (0-based), as ``epoch > FLAGS.early_stopping`` does
    there. There is no checkpoint: the model tested is the last one, so every epoch saves.
    The loss it watches includes the weight-decay term, since tkipf/gcn's validation cost is the
    model's full ``loss`` (cross-entropy plus ``weight_decay * l2_loss`` of the first layer).

    Args:
        window (int): Number of previous epochs averaged (paper: ``10``).
    """
    penalised_loss = True

    def __init__(self, window: int):
        if window < 1:
            raise ValueError(f'WindowStopping: window must be >= 1, got {window}')
        self.window = window
        self.losses: List[float] = []

    def step(self, val_loss: float, val_acc: float) -> Decision:
        previous = self.losses[-self.window:]
        epoch = len(self.losses)
        self.losses.append(val_loss)
        stop = epoch > self.window and val_loss > sum(previous) / len(previous)
        return Decision(save=True, stop=stop)


class NoStopping(EarlyStopping):
    """Run every epoch and test the last model."""

    def step(self, val_loss: float, val_acc: float) -> Decision:
        return Decision(save=True, stop=False)


def make_stopping(rule: str, patience: int) -> EarlyStopping:
    """The rule named in a config (``'gat'``, ``'gcn'`` or ``'none'``)."""
    if rule == 'gat':
        return GATStopping(patience)
    if rule == 'gcn':
        return WindowStopping(patience)
    if rule == 'none':
        return NoStopping()
    raise ValueError(f"early_stopping must be 'gat', 'gcn' or 'none', got {rule!r}")

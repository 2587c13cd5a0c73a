"""The two papers' stopping rules on scripted validation metrics (no training)."""
import pytest

from gat_pyg.train.early_stopping import (Decision, GATStopping, NoStopping, WindowStopping,
                                          make_stopping)


def _run(rule, metrics):
    return [rule.step(loss, acc) for loss, acc in metrics]


def test_gat_rule_resets_on_either_and_saves_on_both():
    rule = GATStopping(patience=3)
    metrics = [
        (1.00, 0.50),  # 0: first epoch: both best                      -> save
        (0.90, 0.40),  # 1: loss better, acc worse                      -> reset only
        (0.95, 0.50),  # 2: acc ties the best (>=), loss worse          -> reset only
        (0.80, 0.60),  # 3: both best                                   -> save
        (0.85, 0.55),  # 4: neither                                     -> 1 bad epoch
        (0.80, 0.55),  # 5: loss ties the best (<=), acc worse          -> reset only
        (0.90, 0.50),  # 6: neither                                     -> 1
        (0.90, 0.50),  # 7: neither                                     -> 2
        (0.90, 0.50),  # 8: neither                                     -> 3 = patience: stop
    ]
    decisions = _run(rule, metrics)
    assert [d.save for d in decisions] == [True, False, False, True, False, False, False,
                                           False, False]
    assert [d.stop for d in decisions] == [False] * 8 + [True]
    assert (rule.best_acc, rule.best_loss) == (0.60, 0.80)


def test_gat_rule_checkpoint_needs_both_bests_at_once():
    # Accuracy and loss improve on alternate epochs: every epoch resets patience, none after
    # the first is good on both, so the checkpoint stays at epoch 0.
    rule = GATStopping(patience=2)
    metrics = [(1.0, 0.5), (0.9, 0.4), (0.95, 0.6), (0.8, 0.55), (0.85, 0.7), (0.7, 0.65)]
    decisions = _run(rule, metrics)
    assert [d.save for d in decisions] == [True] + [False] * 5
    assert not any(d.stop for d in decisions)


def test_gcn_window_rule():
    rule = WindowStopping(window=3)
    losses = [1.0, 0.9, 0.8,
              0.95,   # epoch 3: above the mean (0.9) but the check starts after epoch 3
              0.85,   # epoch 4: mean of 0.9, 0.8, 0.95 = 0.883 -> go on
              0.90]   # epoch 5: mean of 0.8, 0.95, 0.85 = 0.867 -> stop
    decisions = _run(rule, [(loss, 0.0) for loss in losses])
    assert all(d.save for d in decisions)          # the last model is the one tested
    assert [d.stop for d in decisions] == [False] * 5 + [True]


def test_gcn_window_rule_does_not_stop_on_ties_or_decrease():
    rule = WindowStopping(window=2)
    decisions = _run(rule, [(loss, 0.0) for loss in [1.0, 1.0, 1.0, 1.0, 0.5, 0.4]])
    assert not any(d.stop for d in decisions)


def test_no_stopping_and_factory():
    assert _run(NoStopping(), [(1.0, 0.0)] * 3) == [Decision(True, False)] * 3
    assert isinstance(make_stopping('gat', 100), GATStopping)
    assert make_stopping('gcn', 10).window == 10
    assert isinstance(make_stopping('none', 1), NoStopping)
    with pytest.raises(ValueError, match='early_stopping must be'):
        make_stopping('keras', 1)
    with pytest.raises(ValueError, match='patience must be >= 1'):
        GATStopping(0)
    with pytest.raises(ValueError, match='window must be >= 1'):
        WindowStopping(0)

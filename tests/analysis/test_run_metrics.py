"""read_metrics on a literal metrics.csv and on a real run folder; the curve and table plots."""
import numpy as np
import pytest
import torch
from torch_geometric.data import Data

from gat_pyg.analysis import plot_results_vs_paper, plot_training_curves, read_metrics
from gat_pyg.train import ResultRow, TrainConfig, train_run

CSV = ('epoch,train_loss,train_acc,val_loss,val_acc,checkpoint,seconds\n'
       '0,1.5,0.25,1.4,0.3,1,0.1\n'
       '1,1.2,0.5,1.3,0.4,1,0.2\n')


def test_read_metrics_of_a_literal_file(tmp_path):
    (tmp_path / 'metrics.csv').write_text(CSV)
    for where in (tmp_path, tmp_path / 'metrics.csv'):
        metrics = read_metrics(where)
        assert list(metrics) == ['epoch', 'train_loss', 'train_acc', 'val_loss', 'val_acc',
                                 'checkpoint', 'seconds']
        np.testing.assert_array_equal(metrics['epoch'], [0, 1])
        np.testing.assert_array_equal(metrics['val_acc'], [0.3, 0.4])
    with pytest.raises(FileNotFoundError, match='no metrics.csv'):
        read_metrics(tmp_path / 'elsewhere')
    (tmp_path / 'empty.csv').write_text(CSV.splitlines()[0] + '\n')
    with pytest.raises(ValueError, match='holds no epoch'):
        read_metrics(tmp_path / 'empty.csv')


def tiny_graph() -> Data:
    torch.manual_seed(0)
    y = torch.arange(12) % 2
    x = torch.nn.functional.one_hot(y, 2).float() + 0.3 * torch.rand(12, 2)
    edge_index = torch.stack([torch.arange(12), (torch.arange(12) + 2) % 12])
    edge_index = torch.cat([edge_index, edge_index.flip(0)], dim=1)
    masks = [torch.arange(12) % 3 == k for k in range(3)]
    return Data(x=x, edge_index=edge_index, y=y, train_mask=masks[0], val_mask=masks[1],
                test_mask=masks[2])


def test_a_real_run_folder_plotted(tmp_path):
    config = TrainConfig(model='gcn', hidden_channels=4, epochs=4, early_stopping='none',
                         sparse_features=False)
    train_run(config, tiny_graph(), out_dir=tmp_path / 'run')
    metrics = read_metrics(tmp_path / 'run')
    np.testing.assert_array_equal(metrics['epoch'], [0, 1, 2, 3])
    assert ((metrics['val_acc'] >= 0) & (metrics['val_acc'] <= 1)).all()
    target = tmp_path / 'curves.png'
    assert plot_training_curves({'GCN': [metrics, tmp_path / 'run'], 'again': metrics},
                                target) == target
    assert target.read_bytes()[:4] == b'\x89PNG' and target.stat().st_size > 1000
    with pytest.raises(ValueError, match='non-empty mapping'):
        plot_training_curves({}, target)


def test_results_beside_the_paper(tmp_path):
    # a ResultRow as reproduce() returns it, and a row of results.json (a dict)
    rows = [ResultRow(dataset='cora', model='gat', runs=2, mean=0.829, std=0.011, paper=0.83,
                      seconds=1.0, test_acc=[0.818, 0.84]),
            dict(dataset='cora', model='gatv2', mean=0.832, std=0.004, paper=None)]
    target = tmp_path / 'table.png'
    assert plot_results_vs_paper(rows, target) == target
    assert target.read_bytes()[:4] == b'\x89PNG' and target.stat().st_size > 1000
    with pytest.raises(ValueError, match=r"missing \['paper'\]"):
        plot_results_vs_paper([dict(dataset='cora', model='gat', mean=0.8, std=0.0)], target)

"""The dispatch: every (dataset kind x batching x processes) cell either trains or is refused up
front with a ValueError naming the config key. Several processes are stood in for by a
``Replicas`` that says it is rank 0 of 2 (no process group: the collective calls are the
one-process ones); the real two-process runs are in test_distributed.py."""
import logging

import pytest
import torch
from torch_geometric.data import Data

from gat_pyg.train import Replicas, TrainConfig, fit, launch, make_task, run_kind, train_run
from gat_pyg.train.distributed import ShardedNodeTask
from gat_pyg.train.inductive import GraphTask
from gat_pyg.train.fullbatch import NodeTask
from gat_pyg.train.minibatch import MiniBatchTask

pytestmark = pytest.mark.filterwarnings('ignore:Using .NeighborSampler. without')


class RankZeroOfTwo(Replicas):
    """What make_task sees on rank 0 of a two-process torchrun job."""
    rank, world_size = 0, 2


def _planetoid_like(num_nodes=60, features=7, classes=3, seed=0):
    gen = torch.Generator().manual_seed(seed)
    y = torch.randint(0, classes, (num_nodes,), generator=gen)
    x = torch.rand(num_nodes, features, generator=gen)
    x[torch.arange(num_nodes), y] += 1.0
    edge_index = torch.randint(0, num_nodes, (2, 240), generator=gen)
    split = torch.randperm(num_nodes, generator=gen)
    masks = torch.zeros(3, num_nodes, dtype=torch.bool)
    masks[0, split[:30]], masks[1, split[30:45]], masks[2, split[45:]] = True, True, True
    return Data(x=x, edge_index=edge_index, y=y, train_mask=masks[0], val_mask=masks[1],
                test_mask=masks[2])


def _graphs(count, seed):
    gen = torch.Generator().manual_seed(seed)
    return [Data(x=torch.rand(12, 5, generator=gen),
                 edge_index=torch.randint(0, 12, (2, 40), generator=gen),
                 y=(torch.rand(12, 4, generator=gen) < 0.3).float()) for _ in range(count)]


SMALL = dict(hidden_channels=4, heads=2, epochs=2, patience=5)
PPI_ERROR = (r"config key 'dataset': 'ppi' is inductive \(whole graphs per batch\) and trains "
             r'in one process, but torchrun started 2 processes')
KEY_ERROR = (r"^config key '{}' is only used by datasets cora, citeseer, pubmed, not by 'ppi'; "
             r'remove it$')

CELLS = [
    # (dataset, keys, processes) -> the task, or (error, message)
    ('cora', {}, 1, NodeTask),
    ('cora', {}, 2, ShardedNodeTask),
    ('cora', {'batch_size': 8}, 1, MiniBatchTask),
    ('cora', {'batch_size': 8}, 2, MiniBatchTask),
    ('cora', {'batch_size': 8, 'num_neighbors': [3, 3]}, 2, MiniBatchTask),
    ('cora', {'inference_batch_size': 16}, 1, NodeTask),
    ('cora', {'inference_batch_size': 16}, 2, ShardedNodeTask),
    ('cora', {'batch_size': 8, 'inference_batch_size': 16}, 2, MiniBatchTask),
    ('ppi', {}, 1, GraphTask),
    ('ppi', {}, 2, (ValueError, PPI_ERROR)),
    # Refused when the config is built: such a config never reaches the dispatch.
    ('ppi', {'batch_size': 8}, 1, (TrainConfig, KEY_ERROR.format('batch_size'))),
    ('ppi', {'batch_size': 8}, 2, (TrainConfig, KEY_ERROR.format('batch_size'))),
    ('ppi', {'inference_batch_size': 8}, 1,
     (TrainConfig, KEY_ERROR.format('inference_batch_size'))),
]


@pytest.mark.parametrize('dataset,keys,processes,expected', CELLS,
                         ids=[f"{d}-{'+'.join(k) or 'full'}-{p}proc" for d, k, p, _ in CELLS])
def test_every_cell_trains_or_is_refused_by_name(dataset, keys, processes, expected):
    if isinstance(expected, tuple) and expected[0] is TrainConfig:
        # Planetoid-only keys for PPI: built directly or from a file, the config refuses them.
        with pytest.raises(ValueError, match=expected[1]):
            TrainConfig(dataset=dataset, device='cpu', **SMALL, **keys)
        with pytest.raises(ValueError, match=expected[1]):
            TrainConfig.from_dict(dict(dataset=dataset, device='cpu', **SMALL, **keys))
        return
    config = TrainConfig(dataset=dataset, device='cpu', **SMALL, **keys)
    data = (_planetoid_like() if dataset == 'cora' else
            (_graphs(4, 0), _graphs(2, 1), _graphs(2, 2)))
    replicas = RankZeroOfTwo() if processes == 2 else Replicas()
    if isinstance(expected, tuple):
        error, message = expected
        with pytest.raises(error, match=message):
            run_kind(config, processes)
        with pytest.raises(error, match=message):
            make_task(config, data, replicas)
        return
    kind = run_kind(config, processes)
    assert kind.processes == processes
    assert kind.batching == {'cora': 'mini-batch' if 'batch_size' in keys else 'full-batch',
                             'ppi': 'whole graphs'}[dataset]
    task = make_task(config, data, replicas)
    assert type(task) is expected
    if isinstance(task, NodeTask):
        assert task.inference_batch_size == keys.get('inference_batch_size')
    if isinstance(task, MiniBatchTask):
        # This rank's share: 30 training nodes dealt to 2 ranks, batches of 8.
        assert (task.share_size, task.batches_per_epoch) == \
            ((15, 2) if processes == 2 else (30, 4))
    result, model = fit(config, task, replicas=replicas)
    assert result.epochs == 2 and result.processes == processes and result.device == 'cpu'
    assert 0.0 <= result.test_acc <= 1.0


def test_refusals_come_before_the_data_is_loaded(monkeypatch):
    monkeypatch.setenv('WORLD_SIZE', '2')

    def load():
        raise AssertionError('the data was loaded before the refusal')

    with pytest.raises(ValueError, match=PPI_ERROR):
        launch(TrainConfig(dataset='ppi', device='cpu'), load)


def test_wrong_data_for_the_dataset_is_a_type_error():
    with pytest.raises(TypeError, match="'ppi' is inductive: data must be the"):
        make_task(TrainConfig(dataset='ppi'), _planetoid_like())
    with pytest.raises(TypeError, match="'cora' is one graph: data must be a"):
        make_task(TrainConfig(), (_graphs(1, 0),) * 3)


def test_more_processes_than_training_nodes_is_refused_in_minibatch_mode():
    data = _planetoid_like()
    data.train_mask[:] = False
    data.train_mask[0] = True
    with pytest.raises(ValueError, match='world size 2 is larger than the number of training '
                                         'nodes 1'):
        make_task(TrainConfig(batch_size=4, device='cpu'), data, RankZeroOfTwo())


def test_the_log_says_how_the_run_trains(caplog):
    config = TrainConfig(batch_size=8, device='cpu', **SMALL)
    with caplog.at_level(logging.INFO, logger='gat_pyg'):
        train_run(config, _planetoid_like())
    assert ('cora/gat seed 0: transductive training, mini-batch (batch_size 8, num_neighbors '
            'all; 30 training nodes and 4 batches per epoch per process); one process on cpu, '
            'precision 32') in caplog.text


def test_minibatch_epochs_take_one_step_per_batch(monkeypatch):
    steps = []
    original = torch.optim.Adam.step
    monkeypatch.setattr(torch.optim.Adam, 'step',
                        lambda self, *a, **k: (steps.append(1), original(self, *a, **k))[1])
    config = TrainConfig(batch_size=7, device='cpu', **SMALL)
    result = train_run(config, _planetoid_like())
    assert len(steps) == result.epochs * 5          # 30 training nodes in batches of 7

"""Run by ``torchrun`` from ``test_distributed.py`` (not a test module itself).

Every rank (1) takes one training step through :class:`ShardedNodeTask` under DDP and saves the
synchronised gradient, then (2) trains a small GAT with :func:`train_distributed`, writing the
run folder (rank 0 only) and saving its final parameters and result, one file per rank, to
``OUT`` (the first argument).
"""
import sys
from pathlib import Path

import torch
from torch_geometric.data import Data

from gat_pyg.train.config import TrainConfig
from gat_pyg.train.distributed import ShardedNodeTask, process_group, train_distributed
from gat_pyg.train.loop import build_model

# Dense features (the tiny graph has no bag-of-words sparsity); dropout on, so the test also
# shows that every rank draws the masks the single process draws.
CONFIG = dict(model='gat', hidden_channels=4, heads=2, dropout=0.5, attn_dropout=0.5,
              epochs=8, patience=3, sparse_features=False, seed=3)


def small_graph() -> Data:
    """24 nodes, 6 features, 3 classes; 11 training nodes, so the two shares are 6 and 5."""
    g = torch.Generator().manual_seed(0)
    num_nodes = 24
    x = torch.rand(num_nodes, 6, generator=g)
    y = torch.randint(0, 3, (num_nodes,), generator=g)
    ring = torch.arange(num_nodes)
    src = torch.cat([ring, torch.randint(0, num_nodes, (40,), generator=g)])
    dst = torch.cat([(ring + 1) % num_nodes, torch.randint(0, num_nodes, (40,), generator=g)])
    masks = torch.zeros(3, num_nodes, dtype=torch.bool)
    order = torch.randperm(num_nodes, generator=g)
    masks[0, order[:11]], masks[1, order[11:17]], masks[2, order[17:]] = True, True, True
    return Data(x=x, edge_index=torch.stack([src, dst]), y=y, train_mask=masks[0],
                val_mask=masks[1], test_mask=masks[2])


def one_step_gradient(config: TrainConfig, data: Data, replicas) -> dict:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        model = build_model(config, data.num_features, int(data.y.max()) + 1)
        task = ShardedNodeTask(data, replicas, config.seed)
        # lr 0: the step leaves the parameters alone, the gradients stay on them.
        task.train_epoch(replicas.wrap(model), torch.optim.SGD(model.parameters(), lr=0.0))
    return dict(grads={k: p.grad.clone() for k, p in model.named_parameters()},
                share=task.train_mask.nonzero().view(-1))


def main(out: Path) -> None:
    config = TrainConfig.from_dict(CONFIG)
    data = small_graph()
    with process_group() as replicas:
        rank = replicas.rank
        torch.save(one_step_gradient(config, data, replicas), out / f'grad_rank{rank}.pt')
        result, model = train_distributed(config, data, replicas, out / 'run')
        torch.save(dict(state=model.state_dict(), result=result.to_dict()),
                   out / f'final_rank{rank}.pt')


if __name__ == '__main__':
    main(Path(sys.argv[1]))

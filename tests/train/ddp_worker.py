"""Run by ``torchrun`` from ``test_distributed.py`` (not a test module itself):
``ddp_worker.py OUT DEVICE BACKEND``.

Every rank, through the dispatch (:func:`gat_pyg.train.make_task`) and under DDP:

1. full-batch: takes one training step of :class:`ShardedNodeTask` and saves the synchronised
   gradient, then trains a small GAT, writing the run folder ``OUT/run`` (rank 0 only);
2. mini-batch: takes one step on its first ``NeighborLoader`` batch (all neighbours, no
   dropout) and saves the synchronised gradient with the batch's targets and the epoch's share,
   then trains, writing ``OUT/mb_run`` (rank 0 only);

and saves its final parameters and results to ``OUT/final_rank<r>.pt``.
"""
import sys
from pathlib import Path

import torch
from torch_geometric.data import Data

from gat_pyg.train import TrainConfig, build_model, fit, make_task
from gat_pyg.train.distributed import process_group
from gat_pyg.train.minibatch import train_batch

# Dense features (the tiny graph has no bag-of-words sparsity); dropout on, so the test also
# shows that every rank draws the masks the single process draws.
CONFIG = dict(model='gat', hidden_channels=4, heads=2, dropout=0.5, attn_dropout=0.5,
              epochs=8, patience=3, sparse_features=False, seed=3)
# Mini-batch: 11 training nodes, 2 ranks: one node dropped per epoch, 5 per rank, batches of
# 3 and 2. All neighbours and no dropout, so a batch's targets see exactly what the full graph
# gives them and the one-process gradient on the union of the batches is comparable.
MINIBATCH = dict(CONFIG, dropout=0.0, attn_dropout=0.0, message_dropout=0.0, batch_size=3)


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


def one_step(config: TrainConfig, data: Data, replicas) -> dict:
    """One synchronised step with lr 0 (the gradients stay on the parameters)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        model = build_model(config, data.num_features, int(data.y.max()) + 1)
        task = make_task(config, data, replicas)
        trained = replicas.wrap(model)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
        if config.batch_size is None:
            task.train_epoch(trained, optimizer)
            extra = dict(share=task.train_mask.nonzero().view(-1).cpu())
        else:
            task.loader.sampler.set_epoch(0)
            batch = next(iter(task.loader))
            train_batch(trained, optimizer, batch.to(replicas.device), task.precision)
            extra = dict(targets=batch.n_id[:batch.batch_size].cpu(),
                         epoch_share=torch.tensor(list(task.loader.sampler)),
                         batches=task.batches_per_epoch)
    return dict(grads={k: p.grad.cpu().clone() for k, p in model.named_parameters()}, **extra)


def main(out: Path, device: str, backend: str) -> None:
    data = small_graph()
    final = {}
    runtime = dict(device=device, backend=backend)
    with process_group(TrainConfig.from_dict(dict(CONFIG, **runtime))) as replicas:
        rank = replicas.rank
        for name, values, folder in (('full', CONFIG, 'run'),
                                     ('minibatch', MINIBATCH, 'mb_run')):
            config = TrainConfig.from_dict(dict(values, **runtime))
            torch.save(one_step(config, data, replicas), out / f'{name}_grad_rank{rank}.pt')
            result, model = fit(config, make_task(config, data, replicas), out / folder,
                                replicas=replicas)
            final[name] = dict(state={k: v.cpu() for k, v in model.state_dict().items()},
                               result=result.to_dict())
    torch.save(final, out / f'final_rank{rank}.pt')


if __name__ == '__main__':
    main(Path(sys.argv[1]), sys.argv[2], sys.argv[3])

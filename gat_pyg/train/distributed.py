"""Multi-process training under ``torchrun``: the process group, and full-batch training with
the training nodes split across ranks.

Launched by ``torchrun`` (``torchrun --nproc-per-node 2 -m gat_pyg.train --config ...``), which
sets ``RANK`` / ``WORLD_SIZE`` / ``LOCAL_RANK`` and the rendezvous in the environment. Every rank
holds the whole graph; ``DistributedDataParallel`` averages the gradients; rank 0 validates
(once per epoch) and broadcasts the numbers, so every rank's stopping rule takes the same
decisions; rank 0 alone writes the run folder. Which of the two data-parallel tasks a run gets
is decided in :func:`gat_pyg.train.tasks.make_task`:

- with ``batch_size`` set, mini-batch training: each rank samples batches of its own share of the
  training nodes (:class:`gat_pyg.train.minibatch.MiniBatchTask`), which is what makes more
  processes train faster;
- without, full-batch training (:class:`ShardedNodeTask`, below): every rank computes the whole
  forward and takes the loss of its share of the training nodes, so the run is the
  single-process run, not a faster one.

Full-batch: two choices make the multi-process run the single-process run, up to the order of
floating-point sums:

- **The loss is weighted, not the shares equalised.** DDP averages the ranks' gradients, i.e.
  divides their sum by the world size W. Rank r's loss is the *sum* of its nodes' losses times
  W / N (N training nodes in all), so the average over ranks is (1/N) Σ_i ℓ_i, the full-batch
  mean, whatever the shares' sizes: no node is dropped to make N divisible by W.
- **Every rank seeds alike** (``config.seed``), so it draws the same initial parameters and the
  same dropout masks in every forward: each rank's forward is the single-process forward, and
  the W partial gradients add up to the single-process gradient. (Different masks per rank would
  make each node's loss see one random mask and the sum a gradient of no single network.)
"""
import contextlib
import datetime
import gc
import logging
import os
from typing import Callable, Iterator, List, Optional, Sequence, Tuple

import torch
import torch.distributed as dist
from torch import Tensor
from torch.nn import Module
from torch.nn.parallel import DistributedDataParallel
from torch_geometric.data import Data

from gat_pyg.models import BaseModel
from gat_pyg.train.schema import TrainConfig
from gat_pyg.train.device import Precision, resolve_backend, resolve_device
from gat_pyg.train.fullbatch import NodeTask
from gat_pyg.train.replicas import Replicas

log = logging.getLogger(__name__)

_TIMEOUT = datetime.timedelta(minutes=10)


def world_size_from_env() -> int:
    """``WORLD_SIZE`` as ``torchrun`` sets it (1 when not launched by it)."""
    return int(os.environ.get('WORLD_SIZE', '1'))


class DistributedReplicas(Replicas):
    """The processes of an initialised ``torch.distributed`` default group.

    Args:
        device (torch.device): This process's device (:func:`process_group` picks it).
    """

    def __init__(self, device: torch.device) -> None:
        if not dist.is_initialized():
            raise RuntimeError('DistributedReplicas: torch.distributed is not initialised; '
                               'use gat_pyg.train.distributed.process_group()')
        super().__init__(device)
        self.rank = dist.get_rank()
        self.world_size = dist.get_world_size()
        self.local_rank = local_rank_from_env()
        self.backend = dist.get_backend()

    def describe(self) -> str:
        return f'{self.world_size} processes (torchrun, {self.backend})'

    def wrap(self, model: BaseModel) -> Module:
        model.to(self.device)
        # DDP broadcasts rank 0's parameters here; with the same seed they are equal already.
        return DistributedDataParallel(
            model, device_ids=[self.device.index] if self.device.type == 'cuda' else None)

    def from_main(self, compute: Callable[[], Sequence[float]]) -> List[float]:
        values = [float(v) for v in compute()] if self.is_main else None
        box = [values]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def all_reduce_sum(self, values: Sequence[float]) -> List[float]:
        # float64 so that the summed counts and losses are exact enough to log.
        tensor = torch.tensor(list(values), dtype=torch.float64, device=self.device)
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor.tolist()

    @contextlib.contextmanager
    def main_first(self) -> Iterator[None]:
        """Run the block on rank 0 first, then on each other machine's local rank 0, then on
        the remaining ranks: a dataset's one-time processing writes files once per folder, on
        a shared file system (rank 0) or on each machine's own disk (local rank 0), and the
        ranks after only read them."""
        stage = 0 if self.is_main else 1 if self.local_rank == 0 else 2
        for _ in range(stage):
            dist.barrier()
        yield
        for _ in range(stage, 2):
            dist.barrier()


def local_rank_from_env() -> int:
    """``LOCAL_RANK`` as ``torchrun`` sets it: the process's index on its machine."""
    return int(os.environ.get('LOCAL_RANK', '0'))


def local_world_size_from_env() -> int:
    """``LOCAL_WORLD_SIZE`` as ``torchrun`` sets it: the processes on this machine."""
    return int(os.environ.get('LOCAL_WORLD_SIZE', '1'))


def distributed_device(config: TrainConfig) -> Tuple[torch.device, str]:
    """This process's device and the group's backend under ``torchrun``, from the config keys
    ``device`` and ``backend`` (:func:`gat_pyg.train.device.resolve_device`): GPU
    ``cuda:LOCAL_RANK`` when the machine has one for every local process (``auto``) or when
    asked (``cuda``), else the CPU; NCCL on GPUs, gloo on the CPU, unless ``backend`` says.
    Every machine of a job must decide alike (all GPUs or all CPUs), since the processes of one
    group use one backend.

    Raises:
        ValueError: as :func:`resolve_device` and :func:`resolve_backend`.
    """
    device = resolve_device(config.device, local_rank=local_rank_from_env(),
                            local_processes=local_world_size_from_env())
    return device, resolve_backend(config.backend, device)


@contextlib.contextmanager
def process_group(config: TrainConfig) -> Iterator[DistributedReplicas]:
    """Join the process group ``torchrun`` describes in the environment, with the device and
    backend :func:`distributed_device` picks, and leave it after."""
    device, backend = distributed_device(config)
    if device.type == 'cuda':
        torch.cuda.set_device(device)
    dist.init_process_group(backend, timeout=_TIMEOUT)
    try:
        yield DistributedReplicas(device)
    finally:
        # DDP wrappers hold reference cycles; collected only at the interpreter's exit, after
        # the group is gone, their destructor was seen to hang a rank (gloo, torch 2.13).
        gc.collect()
        dist.destroy_process_group()


def shard_train_mask(train_mask: Tensor, rank: int, world_size: int, seed: int) -> Tensor:
    """Rank ``rank``'s share of the training nodes: a mask over the same nodes as
    ``train_mask``.

    The training nodes are shuffled with ``seed`` (a private generator, the global RNG is not
    touched) and cut into ``world_size`` contiguous shares whose sizes differ by at most one, so
    the shares are disjoint, cover every training node, and are the same on every rank.

    Raises:
        ValueError: ``world_size`` larger than the number of training nodes (a rank would have
            none), or ``rank`` outside ``[0, world_size)``.
    """
    nodes = train_mask.nonzero().view(-1)
    if world_size > nodes.numel():
        raise ValueError(f'multi-process training: world size {world_size} is larger than the '
                         f'number of training nodes {nodes.numel()}; every rank needs at least '
                         'one training node, so launch at most that many processes')
    if not 0 <= rank < world_size:
        raise ValueError(f'shard_train_mask: rank must be in [0, {world_size}), got {rank}')
    generator = torch.Generator().manual_seed(seed)
    order = nodes[torch.randperm(nodes.numel(), generator=generator)]
    share = torch.zeros_like(train_mask)
    share[order.tensor_split(world_size)[rank].to(train_mask.device)] = True
    return share


class ShardedNodeTask(NodeTask):
    """Full-batch node classification whose loss covers this rank's share of the training nodes,
    weighted so that DDP's average of the ranks' gradients is the full-batch gradient (module
    docstring). The reported training loss and accuracy are over all training nodes.

    Args:
        data (Data): The whole graph.
        replicas (Replicas): The processes training together (rank and world size).
        seed (int): Seed of the shuffle that cuts the shares.
        precision (Precision, optional): Device and arithmetic. (default: float32 on the CPU)
        inference_batch_size (int, optional): Layer-wise evaluation, as :class:`NodeTask`.
    """

    def __init__(self, data: Data, replicas: Replicas, seed: int,
                 precision: Optional[Precision] = None,
                 inference_batch_size: Optional[int] = None):
        self.num_train = int(data.train_mask.sum())
        share = shard_train_mask(data.train_mask, replicas.rank, replicas.world_size, seed)
        super().__init__(data, precision, train_mask=share,
                         loss_norm=self.num_train / replicas.world_size,
                         inference_batch_size=inference_batch_size)
        self.replicas = replicas
        self.share_size = int(share.sum())

    def describe(self) -> str:
        return (f'full-batch, the loss of {self.share_size} of the {self.num_train} training '
                'nodes per process')

    def train_epoch(self, model: Module, optimizer: torch.optim.Optimizer) -> Tuple[float, float]:
        loss, acc = super().train_epoch(model, optimizer)
        # loss = (W / N) Σ_share ℓ, so the full-batch mean loss is the ranks' sum divided by W.
        loss_sum, correct = self.replicas.all_reduce_sum([loss, acc * self.share_size])
        return loss_sum / self.replicas.world_size, correct / self.num_train

"""The processes that train one model together, and the device each computes on.

:class:`Replicas` is one process; :class:`gat_pyg.train.distributed.DistributedReplicas` is its
multi-process counterpart. :func:`gat_pyg.train.loop.fit` talks to either through the methods
below, so the loop has no branch on the number of processes.
"""
from typing import Callable, List, Sequence, Union

import torch
from torch.nn import Module

from gat_pyg.models import BaseModel


class Replicas:
    """The processes that train one model together, and the device each computes on. This base
    is a single process; the multi-process one
    (:class:`gat_pyg.train.distributed.DistributedReplicas`) wraps the model in
    ``DistributedDataParallel`` and makes rank 0's validation numbers everyone's.

    Args:
        device (torch.device, optional): Where the model trains. (default: the CPU)
    """
    rank: int = 0
    world_size: int = 1

    def __init__(self, device: Union[str, torch.device] = 'cpu'):
        self.device = torch.device(device)

    @property
    def is_main(self) -> bool:
        """Whether this process evaluates, logs and writes the run folder."""
        return self.rank == 0

    def describe(self) -> str:
        """Who trains, for the log."""
        return 'one process'

    def wrap(self, model: BaseModel) -> Module:
        """The module that trains (on :attr:`device`; gradients synchronised across
        processes). ``model`` itself is moved to the device."""
        return model.to(self.device)

    def from_main(self, compute: Callable[[], Sequence[float]]) -> List[float]:
        """``compute()`` run on the main process only, its numbers returned on every process."""
        return list(compute())

    def all_reduce_sum(self, values: Sequence[float]) -> List[float]:
        """Each value summed over the processes."""
        return list(values)

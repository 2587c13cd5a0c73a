"""Where a run computes and in which precision: the ``device``, ``precision``, ``deterministic``
and ``backend`` config keys resolved into what training uses, and a graph moved there
(:func:`to_device`).

One place turns the config's words into a ``torch.device``, an autocast context, a gradient
scaler and a process-group backend, and refuses what cannot run with a ``ValueError`` that names
the key. The config itself only checks the *form* of these values (``cuda:x`` is refused when a
file is read): whether CUDA is there is a property of the machine, not of the file, so a config
(and a checkpoint that embeds it) written on a GPU machine still loads on a CPU-only one.

Precision names are Lightning's (``Trainer(precision=...)``): ``'32'`` trains in float32;
``'bf16-mixed'`` / ``'16-mixed'`` run the forward pass under :func:`torch.autocast` with
bfloat16 / float16 and keep the parameters, gradients and optimizer state in float32 ("master
weights": autocast casts per operation, the model is never converted). float16's narrow exponent
makes small gradients underflow, so ``'16-mixed'`` scales the loss with
:class:`torch.amp.GradScaler` (as Lightning and the PyTorch AMP recipe do); bfloat16 has
float32's exponent and needs no scaler.
"""
import contextlib
import os
from dataclasses import dataclass
from typing import ContextManager, Optional, Union

import torch
from torch import Tensor
from torch_geometric.data import Data

AUTOCAST_DTYPES = {'32': None, 'bf16-mixed': torch.bfloat16, '16-mixed': torch.float16}
"""Precision name -> the dtype autocast computes in (``None``: no autocast)."""


def resolve_device(name: str, local_rank: Optional[int] = None,
                   local_processes: int = 1) -> torch.device:
    """The device a config's ``device`` names, checked against this machine.

    Args:
        name (str): ``'auto'`` (the CUDA device when CUDA is available, else the CPU),
            ``'cpu'``, ``'cuda'`` or ``'cuda:N'``.
        local_rank (int, optional): Under ``torchrun``, this process's ``LOCAL_RANK``: ``'auto'``
            and ``'cuda'`` then mean GPU ``cuda:LOCAL_RANK``. (default: ``None``, one process)
        local_processes (int, optional): Under ``torchrun``, the processes on this machine
            (``LOCAL_WORLD_SIZE``): ``'auto'`` picks the GPUs only if there is one for each of
            them, else the CPU for all (so that every process of the machine agrees on the
            backend). (default: ``1``)

    Raises:
        ValueError: ``cuda`` without CUDA, a GPU index beyond the visible GPUs, ``cuda`` under
            torchrun with fewer GPUs than local processes, or ``cuda:N`` under torchrun (each
            process uses the GPU of its local rank, so one fixed index would put every process
            on the same GPU).
    """
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if name == 'cpu':
        return torch.device('cpu')
    if name == 'auto':
        if local_rank is None:
            return torch.device('cuda', 0) if gpus else torch.device('cpu')
        return (torch.device('cuda', local_rank) if gpus >= max(local_processes, local_rank + 1)
                else torch.device('cpu'))
    if not gpus:
        raise ValueError(f"config key 'device': {name!r} needs CUDA, which is not available "
                         "here (torch.cuda.is_available() is False); use 'cpu' or 'auto'")
    if local_rank is not None:
        if name != 'cuda':
            raise ValueError(f"config key 'device': {name!r} names one GPU, but under torchrun "
                             "each process uses the GPU of its LOCAL_RANK; use 'cuda' or 'auto'")
        if gpus < max(local_processes, local_rank + 1):
            raise ValueError(f"config key 'device': 'cuda' under torchrun needs one GPU per "
                             f'process on a machine, but {max(local_processes, local_rank + 1)} '
                             f"processes share {gpus} visible GPU(s); launch fewer processes "
                             "per machine or use 'auto' (the CPU when GPUs run out)")
        return torch.device('cuda', local_rank)
    index = 0 if name == 'cuda' else int(name.split(':')[1])
    if index >= gpus:
        raise ValueError(f"config key 'device': {name!r} but only {gpus} GPU(s) are visible "
                         f'(cuda:0 .. cuda:{gpus - 1})')
    return torch.device('cuda', index)


def resolve_backend(name: str, device: torch.device) -> str:
    """The ``torch.distributed`` backend of a run on ``device`` (config key ``backend``):
    ``'auto'`` is NCCL for CUDA devices and gloo for the CPU.

    Raises:
        ValueError: ``nccl`` for a CPU device (NCCL communicates between GPUs only).
    """
    if name == 'auto':
        return 'nccl' if device.type == 'cuda' else 'gloo'
    if name == 'nccl' and device.type != 'cuda':
        raise ValueError(f"config key 'backend': nccl communicates between GPUs, but this "
                         f"process trains on {device}; use 'gloo' or 'auto' (or a CUDA device)")
    return name


@dataclass(frozen=True)
class Precision:
    """A run's arithmetic: the autocast context of its forward passes and the optimizer step
    (with loss scaling for float16). Build it with :meth:`resolve`.

    Attributes:
        name (str): ``'32'``, ``'bf16-mixed'`` or ``'16-mixed'``.
        device (torch.device): Where the run computes (autocast is per device type).
        scaler (torch.amp.GradScaler, optional): The loss scaler (``'16-mixed'`` only).
    """
    name: str = '32'
    device: torch.device = torch.device('cpu')
    scaler: Optional['torch.amp.GradScaler'] = None

    @classmethod
    def resolve(cls, name: str, device: torch.device) -> 'Precision':
        """The precision a config's ``precision`` names, on ``device``.

        Raises:
            ValueError: an unknown name; ``bf16-mixed`` on a GPU without bfloat16 support.
        """
        if name not in AUTOCAST_DTYPES:
            raise ValueError(f"config key 'precision': expected one of "
                             f"{', '.join(AUTOCAST_DTYPES)}, got {name!r}")
        if (name == 'bf16-mixed' and device.type == 'cuda'
                and not torch.cuda.is_bf16_supported()):
            raise ValueError(f"config key 'precision': bf16-mixed needs a GPU with bfloat16 "
                             f'support, which {device} lacks; use 16-mixed or 32')
        scaler = torch.amp.GradScaler(device.type) if name == '16-mixed' else None
        return cls(name, device, scaler)

    @property
    def dtype(self) -> Optional[torch.dtype]:
        """The dtype autocast computes in, ``None`` for float32."""
        return AUTOCAST_DTYPES[self.name]

    def autocast(self) -> ContextManager:
        """The context of every forward pass (training and evaluation, as Lightning runs its
        validation steps under the same precision as training)."""
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    def step(self, loss: Tensor, optimizer: torch.optim.Optimizer) -> None:
        """Backward pass and optimizer step for ``loss`` (computed outside autocast).

        With a scaler the loss is multiplied by the current scale before ``backward``; the
        scaler unscales the gradients, skips the step if any is inf/NaN, and adapts the scale
        (:class:`torch.amp.GradScaler`)."""
        if self.scaler is None:
            loss.backward()
            optimizer.step()
            return
        self.scaler.scale(loss).backward()
        self.scaler.step(optimizer)
        self.scaler.update()


@contextlib.contextmanager
def deterministic_algorithms(enabled: bool, device: torch.device):
    """Within the block, ``torch.use_deterministic_algorithms(True)`` if ``enabled`` (config key
    ``deterministic``); the previous setting is restored after, so a run leaves no global state
    behind.

    On CUDA, deterministic cuBLAS needs ``CUBLAS_WORKSPACE_CONFIG`` set before its first use;
    it is set to ``:4096:8`` (PyTorch's documented value) unless already set. An operation
    without a deterministic implementation then raises ``RuntimeError`` naming it."""
    if not enabled:
        yield
        return
    if device.type == 'cuda':
        os.environ.setdefault('CUBLAS_WORKSPACE_CONFIG', ':4096:8')
    previous = torch.are_deterministic_algorithms_enabled()
    previous_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous, warn_only=previous_warn)


def to_device(data: Data, device: Union[str, torch.device]) -> Data:
    """A shallow copy of ``data`` with every tensor on ``device``. The caller's ``data`` is not
    modified (PyG's ``Data.to`` moves in place); a tensor already there is shared, not
    copied."""
    return Data(**{key: value.to(device) if isinstance(value, Tensor) else value
                   for key, value in data.items()})

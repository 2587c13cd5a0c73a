"""A run's ``checkpoint.pt``: the tested model's parameters with the config that builds it.

The file is ``torch.save`` of a dict: ``config`` (the resolved config, as ``to_dict``),
``model_state`` (saved from the CPU), ``in_channels``, ``out_channels``, ``epoch`` (of the
checkpoint), ``val_acc``, ``val_loss``, ``test_acc`` and ``device`` (where it trained).
"""
from pathlib import Path
from typing import Any, Dict, NamedTuple, Union

import torch
from torch import Tensor

from gat_pyg.models import BaseModel
from gat_pyg.train.atomic import atomic_torch_save
from gat_pyg.train.build import build_model
from gat_pyg.train.schema import TrainConfig


class Checkpoint(NamedTuple):
    """What :func:`load_checkpoint` returns: the rebuilt ``model`` (in eval mode) and the
    ``config`` it was trained with. A named pair: ``model, config = load_checkpoint(path)`` or
    ``load_checkpoint(path).model``."""
    model: BaseModel
    config: TrainConfig

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        # The one mistake a pair invites: treating it as the model (README, issue 23).
        raise TypeError('load_checkpoint returns (model, config), not the model: write '
                        "'model, config = load_checkpoint(path)' and call model(x, edge_index), "
                        'or use load_checkpoint(path).model')


def save_checkpoint(path: Union[str, Path], config: TrainConfig, state: Dict[str, Tensor],
                    in_channels: int, out_channels: int, **metrics: Any) -> None:
    """Write ``checkpoint.pt`` atomically (module docstring); ``metrics`` are the other entries
    (``epoch``, ``val_acc``, ``val_loss``, ``test_acc``, ``device``). The tensors are saved from
    the CPU, so the file names no device; :func:`load_checkpoint` maps them anyway."""
    atomic_torch_save(path, dict(config=config.to_dict(),
                                 model_state={k: v.cpu() for k, v in state.items()},
                                 in_channels=in_channels, out_channels=out_channels, **metrics))


def load_checkpoint(path: Union[str, Path],
                    device: Union[str, torch.device] = 'cpu') -> Checkpoint:
    """Rebuild the model saved in a run's ``checkpoint.pt`` (in eval mode, on ``device``) and
    its config: ``model, config = load_checkpoint(path)``.

    The tensors are read straight onto ``device`` (``map_location``), so a checkpoint written
    on a GPU loads on a CPU-only machine and vice versa. A config saved before a key existed
    gets that key from its pair's config file, as any config does (``act``: ELU for the GAT
    models, ReLU for GCN and the MLP, the activations those models always had).

    Returns:
        :class:`Checkpoint` ``(model, config)``.
    """
    device = torch.device(device)
    checkpoint = torch.load(path, map_location=device, weights_only=True)
    config = TrainConfig.from_dict(checkpoint['config'])
    model = build_model(config, checkpoint['in_channels'], checkpoint['out_channels'])
    model.load_state_dict(checkpoint['model_state'])
    return Checkpoint(model.to(device).eval(), config)

"""What a config describes, built: its graph (:func:`load_data`) and its model
(:func:`build_model`).

:func:`model_arguments` is the one place that turns config keys into model arguments; the
model classes themselves take PyG's neutral defaults (one head, no dropout, ReLU), so a model
built here has the settings of its config file and nothing else's.
"""
from pathlib import Path
from typing import Any, Dict, Optional, Union

from torch_geometric.data import Data

from gat_pyg.data import load_planetoid
from gat_pyg.models import MODELS, BaseModel
from gat_pyg.train.schema import ATTENTION_MODELS, TrainConfig


def load_data(config: TrainConfig, root: Optional[Union[str, Path]] = None,
              mirror: Optional[str] = None, verify: bool = True) -> Data:
    """The graph ``config`` trains on (dataset, split, sparse features, random-split seed)."""
    return load_planetoid(config.dataset, root=root, split=config.split, mirror=mirror,
                          sparse=config.sparse_features, seed=config.seed, verify=verify)


def model_arguments(config: TrainConfig) -> Dict[str, Any]:
    """The keyword arguments of ``config``'s model class after ``(in_channels,
    hidden_channels, out_channels)``: ``num_layers``, ``dropout``, ``act``, ``bias`` and, for
    the attention models, ``heads``, ``out_heads``, ``attn_dropout``, ``message_dropout``,
    ``residual``, ``per_head_dropout`` and ``att_bias``."""
    kwargs: Dict[str, Any] = dict(num_layers=config.num_layers, dropout=config.dropout,
                                  act=config.act, bias=config.bias)
    if config.model in ATTENTION_MODELS:
        kwargs.update(heads=config.heads, out_heads=config.out_heads,
                      attn_dropout=config.attn_dropout,
                      message_dropout=config.message_dropout, residual=config.residual,
                      per_head_dropout=config.per_head_dropout, att_bias=config.att_bias)
    return kwargs


def build_model(config: TrainConfig, in_channels: int, out_channels: int) -> BaseModel:
    """The model ``config`` describes (:data:`gat_pyg.models.MODELS` ``[config.model]``), for
    ``in_channels`` features and ``out_channels`` classes, freshly initialised from torch's
    generator."""
    return MODELS[config.model](in_channels, config.hidden_channels, out_channels,
                                **model_arguments(config))

"""What a trained model computes inside: each layer's output and, for attention layers, weights.

The notebooks need a GAT's hidden embeddings (for t-SNE) and its attention weights (for
entropy), which :meth:`BaseModel.forward` does not return. :func:`probe_model` walks the same
layers in evaluation mode, where the model's input dropout is the identity, asking each
attention layer for its weights on the way; it checks that its last output equals the model's own
forward, so a change to :class:`~gat_pyg.models.BaseModel` cannot make it drift silently.
"""
from dataclasses import dataclass
from typing import List, Optional, Tuple

import torch
from torch import Tensor

from gat_pyg.models import BaseModel
from gat_pyg.nn import AttentionConv


@dataclass
class ModelProbe:
    """Per layer of a model, in order.

    Attributes:
        outputs (list of Tensor): Layer ``k``'s output, after the activation for hidden layers
            (the embeddings the next layer reads); the last entry is the logits.
        attention (list): ``(edge_index, alpha)`` of layer ``k`` (edges with the self-loops the
            layer added, ``alpha`` ``[E', H]``) for attention layers, ``None`` for others.
    """
    outputs: List[Tensor]
    attention: List[Optional[Tuple[Tensor, Tensor]]]

    @property
    def hidden(self) -> Tensor:
        """The first layer's output: the hidden embeddings of a two-layer model."""
        return self.outputs[0]


@torch.no_grad()
def probe_model(model: BaseModel, x: Tensor, edge_index: Tensor) -> ModelProbe:
    """Runs ``model`` layer by layer in ``eval()`` mode and keeps every layer's output and
    attention weights. The model's training mode is restored afterwards.

    Args:
        model (BaseModel): A :mod:`gat_pyg.models` model (GAT, GATv2, GCN, MLP).
        x (Tensor): Node features (dense or sparse), as the model's forward takes them.
        edge_index (Tensor): ``[2, E]`` edges.
    """
    if not isinstance(model, BaseModel):
        raise TypeError(f"model: expected a gat_pyg.models model (BaseModel), got "
                        f"{type(model).__name__}")
    was_training = model.training
    model.eval()
    try:
        outputs, attention = [], []
        h = x
        for k, conv in enumerate(model.convs):
            if isinstance(conv, AttentionConv):
                h, weights = conv(h, edge_index, return_attention_weights=True)
            else:
                h, weights = conv(h, edge_index), None
            if k < model.num_layers - 1:
                h = model.act(h)
            outputs.append(h)
            attention.append(weights)
        expected = model(x, edge_index)
        if not torch.allclose(outputs[-1], expected, atol=1e-5, rtol=1e-5):
            raise RuntimeError(f"probe_model: the layer-by-layer pass of {model!r} no longer "
                               f"matches its forward; update gat_pyg.analysis.probe to follow "
                               f"BaseModel.forward")
    finally:
        model.train(was_training)
    return ModelProbe(outputs=outputs, attention=attention)

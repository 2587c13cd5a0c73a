"""What a trained model computes inside: each layer's output and, for attention layers, weights.

The notebooks need a GAT's hidden embeddings (for t-SNE) and its attention weights (for
entropy). :func:`probe_model` runs the model's own forward in evaluation mode (where input
dropout is the identity) with ``return_attention_weights=True``, and records the hidden layers'
outputs with a forward hook on the model's activation, which runs once after each hidden layer;
so it cannot drift from :meth:`BaseModel.forward`.
"""
from dataclasses import dataclass
from typing import List, Optional, Tuple

import torch
from torch import Tensor

from gat_pyg.models import BaseModel


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
    """Runs ``model``'s forward in ``eval()`` mode and keeps every layer's output and
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
    hidden: List[Tensor] = []
    handle = model.act.register_forward_hook(lambda module, inputs, out: hidden.append(out))
    try:
        logits, attention = model(x, edge_index, return_attention_weights=True)
    finally:
        handle.remove()
        model.train(was_training)
    return ModelProbe(outputs=hidden + [logits], attention=list(attention))

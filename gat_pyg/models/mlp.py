"""The graph-free baseline: the same model with layers that ignore the edges."""
from typing import Any, Optional, Tuple

from torch import Tensor
from torch.nn import Module
from torch_geometric.nn.dense.linear import Linear
from torch_geometric.typing import Adj

from gat_pyg.models.base import BaseModel
from gat_pyg.models.inference import Block


class NodeLinear(Linear):
    """PyG's :class:`~torch_geometric.nn.dense.linear.Linear` (which accepts ``torch.sparse``
    inputs) with a conv's ``forward(x, edge_index)`` signature; the edges are ignored."""

    def forward(self, x: Tensor, edge_index: Optional[Adj] = None) -> Tensor:
        return super().forward(x)


class MLP(BaseModel):
    r"""A multi-layer perceptron on node features alone: the GAT paper's MLP baseline (the
    ``dense`` model of Kipf & Welling's code: Glorot weights). The defaults are PyG's neutral
    ones; the baseline's settings are in ``configs/<dataset>_mlp.yaml``.

    Args:
        in_channels (int): Input features per node.
        hidden_channels (int): Hidden features.
        out_channels (int): Number of classes.
        num_layers (int, optional): Number of linear layers. (default: ``2``)
        dropout (float, optional): Dropout on each layer's input. (default: ``0.0``)
        act (str, optional): Activation between layers. (default: ``'relu'``)
        bias (bool, optional): Additive bias in each layer. (default: ``True``)
    """

    def __init__(self, in_channels: int, hidden_channels: int, out_channels: int,
                 num_layers: int = 2, dropout: float = 0.0, act: str = 'relu',
                 bias: bool = True):
        super().__init__(in_channels, hidden_channels, out_channels, num_layers, dropout, act,
                         bias=bias)

    def init_conv(self, in_channels: int, out_channels: int, last: bool, *, bias: bool,
                  **_: Any) -> Module:
        return NodeLinear(in_channels, out_channels, bias=bias, weight_initializer='glorot')

    # Layer-wise inference needs no neighbours: blocks without edges, the layer on the targets.
    def inference_edges(self, edge_index: Tensor,
                        num_nodes: int) -> Tuple[Tensor, Optional[Tensor]]:
        return edge_index[:, :0], None

    def inference_layer(self, conv: Module, x_src: Tensor, x_dst: Tensor,
                        block: Block) -> Tensor:
        return conv(x_dst)

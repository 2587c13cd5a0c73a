"""The GCN of Kipf & Welling (2017), built on PyG's own GCNConv."""
from typing import Any

from torch.nn import Module
from torch_geometric.nn import GCNConv

from gat_pyg.models.base import BaseModel
from gat_pyg.nn.graph import PreparedGraph


class GCN(BaseModel):
    r"""The two-layer GCN of `"Semi-Supervised Classification with Graph Convolutional
    Networks" <https://arxiv.org/abs/1609.02907>`_ on :class:`torch_geometric.nn.GCNConv`
    (symmetric normalisation with self-loops, Glorot weights).

    The original regularises only the first layer (use :meth:`parameter_groups` with
    ``first_layer_only=True``) and has no bias (``bias=False``).

    Args:
        in_channels (int): Input features per node.
        hidden_channels (int): Hidden features. (paper: ``16``)
        out_channels (int): Number of classes.
        num_layers (int, optional): Number of graph convolutions. (default: ``2``)
        dropout (float, optional): Dropout on each layer's input. (default: ``0.5``)
        act (str, optional): Activation between layers. (default: ``'relu'``)
        bias (bool, optional): Additive bias in each layer. (default: ``False``)
    """

    def __init__(self, in_channels: int, hidden_channels: int, out_channels: int,
                 num_layers: int = 2, dropout: float = 0.5, act: str = 'relu',
                 bias: bool = False):
        super().__init__(in_channels, hidden_channels, out_channels, num_layers, dropout, act,
                         bias=bias)

    def init_conv(self, in_channels: int, out_channels: int, last: bool, *, bias: bool,
                  **_: Any) -> Module:
        return GCNConv(in_channels, out_channels, bias=bias)

    def prepare_graph(self, edge_index, num_nodes: int):
        if isinstance(edge_index, PreparedGraph):
            raise TypeError("edge_index: a PreparedGraph holds the graph as attention layers "
                            "read it; GCN takes the [2, E] edge_index (or a sparse adjacency)")
        return edge_index

"""The GCN of Kipf & Welling (2017), built on PyG's own GCNConv."""
from typing import Any, Optional, Tuple

from torch import Tensor
from torch.nn import Module
from torch_geometric.nn import GCNConv
from torch_geometric.nn.conv.gcn_conv import gcn_norm
from torch_geometric.utils import scatter

from gat_pyg.models.base import BaseModel
from gat_pyg.models.inference import Block
from gat_pyg.nn.graph import PreparedGraph


class GCN(BaseModel):
    r"""The two-layer GCN of `"Semi-Supervised Classification with Graph Convolutional
    Networks" <https://arxiv.org/abs/1609.02907>`_ on :class:`torch_geometric.nn.GCNConv`
    (symmetric normalisation with self-loops, Glorot weights).

    The defaults are PyG's (:class:`torch_geometric.nn.models.GCN`: no dropout, a bias); the
    paper's settings are in ``configs/<dataset>_gcn.yaml``, L2 on the first layer only among
    them (:meth:`parameter_groups` with ``first_layer_only=True``).

    Args:
        in_channels (int): Input features per node.
        hidden_channels (int): Hidden features.
        out_channels (int): Number of classes.
        num_layers (int, optional): Number of graph convolutions. (default: ``2``)
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
        return GCNConv(in_channels, out_channels, bias=bias)

    def prepare_graph(self, edge_index, num_nodes: int):
        if isinstance(edge_index, PreparedGraph):
            raise TypeError("edge_index: a PreparedGraph holds the graph as attention layers "
                            "read it; GCN takes the [2, E] edge_index (or a sparse adjacency)")
        return edge_index

    # Layer-wise inference. GCNConv takes no bipartite input, and its symmetric normalisation
    # 1 / sqrt(deg(j) deg(i)) needs every node's degree in the whole graph, which a block does
    # not have (its sources' in-edges are missing). So the normalised weights are computed once
    # on the whole graph, exactly as GCNConv's forward computes them (gcn_norm with self-loops,
    # the layers' defaults), and each block applies the layer's formula itself:
    # out_i = sum_j w_ji (x_j W) + b.
    def inference_edges(self, edge_index: Tensor,
                        num_nodes: int) -> Tuple[Tensor, Optional[Tensor]]:
        return gcn_norm(edge_index, None, num_nodes, add_self_loops=True)

    def inference_layer(self, conv: Module, x_src: Tensor, x_dst: Tensor,
                        block: Block) -> Tensor:
        src, dst = block.edge_index
        projected = conv.lin(x_src)
        messages = block.edge_weight.to(projected.dtype).view(-1, 1) * projected[src]
        out = scatter(messages, dst, dim=0, dim_size=block.size[1], reduce='sum')
        return out + conv.bias if conv.bias is not None else out

"""GATConv: the graph attentional operator of Velickovic et al. (2018)."""
from typing import Optional, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn import Parameter
from torch_geometric.nn.dense.linear import Linear
from torch_geometric.nn.inits import glorot
from torch_geometric.typing import OptTensor

from gat_pyg import kernels
from gat_pyg.nn.attention import AttentionConv
from gat_pyg.nn.functional import native_eager
from gat_pyg.nn.graph import PreparedGraph


def dot_heads(h: Tensor, att: Tensor) -> Tensor:
    """``(h * att).sum(-1)``: per node and head, ``[N, H, C] x [1, H, C] -> [N, H]``.

    With the native kernels (a ``[N, H, C]`` CPU tensor, outside compilers, transforms and
    traces) one call of :func:`gat_pyg.kernels.head_scores` each way. Otherwise one matrix
    product with the block-diagonal ``[H * C, H]`` matrix holding each head's vector, which
    costs less than the broadcast product and its reduction (and their backward) on large
    graphs.
    """
    heads, channels = att.shape[-2:]
    if h.dim() == 3 and h.dtype == att.dtype and native_eager(h, kernels.SUPPORTED_DTYPES):
        return kernels.head_scores(h, att.reshape(heads, channels))   # one native pass each way
    eye = torch.eye(heads, dtype=att.dtype, device=att.device)
    block = (att.reshape(heads, channels, 1) * eye.view(heads, 1, heads))
    return h.reshape(*h.shape[:-2], heads * channels) @ block.view(heads * channels, heads)


def _to(t: OptTensor, dtype: torch.dtype) -> OptTensor:
    return None if t is None else t.to(dtype)


class GATConv(AttentionConv):
    r"""The graph attentional operator from `"Graph Attention Networks"
    <https://arxiv.org/abs/1710.10903>`_, a drop-in replacement for
    :class:`torch_geometric.nn.GATConv` (same arguments, parameter names and outputs).

    .. math::
        \mathbf{x}^{\prime}_i = \sum_{j \in \mathcal{N}(i) \cup \{ i \}}
        \alpha_{i,j}\mathbf{\Theta}_s\mathbf{x}_{j},
        \qquad
        \alpha_{i,j} = \operatorname{softmax}_j\Big(\mathrm{LeakyReLU}\big(
        \mathbf{a}_s^{\top}\mathbf{\Theta}_s\mathbf{x}_j
        + \mathbf{a}_t^{\top}\mathbf{\Theta}_t\mathbf{x}_i
        + \mathbf{a}_e^{\top}\mathbf{\Theta}_e\mathbf{e}_{j,i}\big)\Big)

    The paper writes the score as :math:`\mathbf{a}^{\top}[\mathbf{W}h_i \,\Vert\,
    \mathbf{W}h_j]`. Splitting :math:`\mathbf{a} = [\mathbf{a}_t \Vert \mathbf{a}_s]` turns it
    into a sum of two per-node scalars, computed once per node and head and gathered per
    edge, so neither the concatenation nor an N x N matrix is ever built.
    :math:`\mathbf{\Theta}_s = \mathbf{\Theta}_t` unless ``in_channels`` is a pair.

    Args:
        in_channels (int or tuple): Input features, ``-1`` (lazy), or ``(source, target)``.
        out_channels (int): Output features per head.
        heads (int, optional): Number of heads. (default: ``1``)
        concat (bool, optional): Concatenate heads, else average. (default: ``True``)
        negative_slope (float, optional): LeakyReLU slope. (default: ``0.2``)
        dropout (float, optional): Attention dropout. (default: ``0.0``)
        add_self_loops (bool, optional): Add a self-loop per node. (default: ``True``)
        edge_dim (int, optional): Edge feature size. (default: ``None``)
        fill_value (float or Tensor or str, optional): Self-loop edge features.
            (default: ``'mean'``)
        bias (bool, optional): Additive bias. (default: ``True``)
        residual (bool, optional): Linear skip connection. (default: ``False``)
        fast_path (bool, optional): ``None`` = automatic; see :class:`AttentionConv`.
        **kwargs (optional): :class:`torch_geometric.nn.conv.MessagePassing` arguments.

    Shapes:
        - **input:** node features :math:`(|\mathcal{V}|, F_{in})` or
          :math:`((|\mathcal{V}_s|, F_s), (|\mathcal{V}_t|, F_t))`, edge indices
          :math:`(2, |\mathcal{E}|)` or a sparse adjacency, edge features
          :math:`(|\mathcal{E}|, D)` *(optional)*
        - **output:** :math:`(|\mathcal{V}_t|, H \cdot F_{out})` (or :math:`F_{out}` if
          ``concat=False``); with ``return_attention_weights`` also the edges and
          :math:`(|\mathcal{E}'|, H)` attention weights.
    """

    def __init__(
        self,
        in_channels: Union[int, Tuple[int, int]],
        out_channels: int,
        heads: int = 1,
        concat: bool = True,
        negative_slope: float = 0.2,
        dropout: float = 0.0,
        add_self_loops: bool = True,
        edge_dim: Optional[int] = None,
        fill_value: Union[float, Tensor, str] = 'mean',
        bias: bool = True,
        residual: bool = False,
        **kwargs,
    ):
        super().__init__(in_channels, out_channels, heads, concat, negative_slope, dropout,
                         add_self_loops, edge_dim, fill_value, bias, residual, **kwargs)
        width = heads * out_channels
        self.lin = self.lin_src = self.lin_dst = None
        if isinstance(self.in_channels, int):
            self.lin = Linear(self.in_channels, width, bias=False, weight_initializer='glorot')
        else:
            self.lin_src = Linear(self.in_channels[0], width, False, weight_initializer='glorot')
            self.lin_dst = Linear(self.in_channels[1], width, False, weight_initializer='glorot')
        self.att_src = Parameter(torch.empty(1, heads, out_channels))
        self.att_dst = Parameter(torch.empty(1, heads, out_channels))
        if edge_dim is not None:
            self.lin_edge = Linear(edge_dim, width, bias=False, weight_initializer='glorot')
            self.att_edge = Parameter(torch.empty(1, heads, out_channels))
        else:
            self.lin_edge = None
            self.register_parameter('att_edge', None)
        self.reset_parameters()

    def reset_parameters(self):
        super().reset_parameters()
        for lin in (self.lin, self.lin_src, self.lin_dst, self.lin_edge):
            if lin is not None:
                lin.reset_parameters()
        glorot(self.att_src)
        glorot(self.att_dst)
        glorot(self.att_edge)

    def project(self, x_src: Tensor, x_dst: OptTensor) -> Tuple[Tensor, OptTensor]:
        shape = (-1, self.heads, self.out_channels)
        lin_src = self.lin if self.lin is not None else self.lin_src
        lin_dst = self.lin if self.lin is not None else self.lin_dst
        h_src = self.linear(lin_src, x_src).view(shape)
        if x_dst is None:
            return h_src, None
        if x_dst is x_src and lin_dst is lin_src:
            return h_src, h_src
        return h_src, self.linear(lin_dst, x_dst).view(shape)

    def node_scores(self, h_src: Tensor, h_dst: OptTensor) -> Tuple[Tensor, OptTensor]:
        return dot_heads(h_src, self.att_src), None if h_dst is None else \
            dot_heads(h_dst, self.att_dst)

    def edge_score(self, s_j: Tensor, s_i: OptTensor, edge_attr: OptTensor) -> Tensor:
        score = s_j if s_i is None else s_j + s_i
        if edge_attr is not None:
            score = score + self.edge_attr_score(edge_attr)
        return F.leaky_relu(score, self.negative_slope)

    def edge_attr_score(self, edge_attr: Tensor) -> Tensor:
        r"""The edge term :math:`\mathbf{a}_e^{\top}\mathbf{\Theta}_e\mathbf{e}_{j,i}`,
        ``[E, D] -> [E, H]``.

        PyG projects every edge to ``H x C`` features and then dots them with
        :math:`\mathbf{a}_e`; folding :math:`\mathbf{a}_e` into :math:`\mathbf{\Theta}_e`
        first (``[H, D]``) gives the same numbers without an E x H x C tensor.
        """
        weight = self.lin_edge.weight.view(self.heads, self.out_channels, -1)
        folded = (weight * self.att_edge.view(self.heads, self.out_channels, 1)).sum(dim=1)
        return edge_attr @ folded.t()

    def native_attention(self, graph: PreparedGraph, h_src: Tensor, s_src: Tensor,
                         s_dst: OptTensor, edge_attr: OptTensor) -> Tuple[Tensor, Tensor]:
        s_edge = None if edge_attr is None else self.edge_attr_score(edge_attr)
        dtype = h_src.dtype
        return kernels.gat_attention(*self.kernel_graph(graph, s_src, s_dst, s_edge, h_src),
                                     s_src.to(dtype), _to(s_dst, dtype), _to(s_edge, dtype),
                                     h_src, self.negative_slope, self.dropout, self.training,
                                     self.message_dropout)

"""GATv2Conv: the dynamic attention operator of Brody et al. (2022)."""
from typing import Optional, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn import Parameter
from torch_geometric.nn.dense.linear import Linear
from torch_geometric.nn.inits import glorot
from torch_geometric.typing import OptTensor, PairTensor

from gat_pyg import kernels
from gat_pyg.nn.attention_conv import AttentionConv
from gat_pyg.nn.functional import head_linear
from gat_pyg.nn.gat_conv import _to
from gat_pyg.nn.graph import PreparedGraph


class GATv2Conv(AttentionConv):
    r"""The GATv2 operator from `"How Attentive are Graph Attention Networks?"
    <https://arxiv.org/abs/2105.14491>`_, a drop-in replacement for
    :class:`torch_geometric.nn.GATv2Conv` (same arguments, parameter names and outputs).

    .. math::
        \mathbf{x}^{\prime}_i = \sum_{j \in \mathcal{N}(i) \cup \{ i \}}
        \alpha_{i,j}\mathbf{\Theta}_{s}\mathbf{x}_{j},
        \qquad
        \alpha_{i,j} = \operatorname{softmax}_j\Big(\mathbf{a}^{\top}\mathrm{LeakyReLU}\big(
        \mathbf{\Theta}_{s} \mathbf{x}_j + \mathbf{\Theta}_{t} \mathbf{x}_{i}
        + \mathbf{\Theta}_{e} \mathbf{e}_{j,i}\big)\Big)

    The non-linearity sits between :math:`\mathbf{a}` and the sum, so unlike GAT the score does
    not split into per-node scalars: it needs a vector per edge. The kernels form each edge's
    vector on the fly (the C++ and Triton ones) or in bounded blocks of edges (the ``csr`` one)
    and recompute it in backward, so no ``E x H x C`` tensor is held.

    There is no ``att_bias`` (:class:`~gat_pyg.GATConv`'s score bias of the official GAT
    code): with ``bias=True`` the projections' biases already add a learnt vector inside the
    LeakyReLU, of which a per-head scalar there is a special case, and a scalar added after
    :math:`\mathbf{a}^{\top}` would be the same for every edge of a head and cancel in the
    softmax.

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
        bias (bool, optional): Bias of the projections and of the output. (default: ``True``)
        share_weights (bool, optional): Use one matrix for
            :math:`\mathbf{\Theta}_s` and :math:`\mathbf{\Theta}_t`. (default: ``False``)
        residual (bool, optional): Linear skip connection. (default: ``False``)
        message_dropout, head_input_dropout (float, optional): The official GAT code's
            dropouts of each head's projected features and of each head's input; not in PyG's
            layer, see :class:`AttentionConv`. (default: ``0.0``)
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

    edge_updater_type = {'x': PairTensor, 'edge_attr': OptTensor}

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
        share_weights: bool = False,
        residual: bool = False,
        **kwargs,
    ):
        if kwargs.pop('att_bias', False):
            raise ValueError("att_bias: GATv2Conv has no attention bias (GATConv's, from the "
                             "official GAT code): its projections' biases (bias=True) already "
                             "sit inside its LeakyReLU, and a bias outside would cancel in the "
                             "softmax")
        super().__init__(in_channels, out_channels, heads, concat, negative_slope, dropout,
                         add_self_loops, edge_dim, fill_value, bias, residual, **kwargs)
        self.share_weights = share_weights
        width = heads * out_channels
        src_channels, dst_channels = (self.in_channels, self.in_channels) \
            if isinstance(self.in_channels, int) else self.in_channels
        if share_weights and -1 not in (src_channels, dst_channels) \
                and src_channels != dst_channels:
            raise ValueError(f"share_weights=True: one matrix projects sources and targets, so "
                             f"in_channels needs equal widths, got {self.in_channels!r}")
        self.lin_l = Linear(src_channels, width, bias=bias, weight_initializer='glorot')
        if share_weights:
            self.lin_r = self.lin_l
        else:
            self.lin_r = Linear(dst_channels, width, bias=bias, weight_initializer='glorot')
        self.att = Parameter(torch.empty(1, heads, out_channels))
        self.lin_edge = None
        if edge_dim is not None:
            self.lin_edge = Linear(edge_dim, width, bias=False, weight_initializer='glorot')
        self.reset_parameters()

    def reset_parameters(self):
        super().reset_parameters()
        self.lin_l.reset_parameters()
        self.lin_r.reset_parameters()
        if self.lin_edge is not None:
            self.lin_edge.reset_parameters()
        glorot(self.att)

    def forward(self, x, edge_index, edge_attr: OptTensor = None,
                return_attention_weights: Optional[bool] = None,
                size: Optional[Tuple[int, int]] = None):
        """Runs the layer; see :meth:`AttentionConv.forward` for the arguments.

        PyG's ``GATv2Conv.forward`` has no ``size`` and takes ``return_attention_weights``
        fourth, so that order is kept here (``size`` comes last) and positional calls written
        for PyG's layer mean the same with this one.
        """
        return super().forward(x, edge_index, edge_attr, size, return_attention_weights)

    def project(self, x_src: Tensor, x_dst: OptTensor) -> Tuple[Tensor, OptTensor]:
        if x_dst is None:
            raise ValueError("x: GATv2Conv scores every edge with its target's features, so "
                             "the pair (x_src, x_dst) needs x_dst (got None)")
        if self.share_weights and x_dst.size(-1) != x_src.size(-1):
            raise ValueError(f"x: share_weights=True projects sources and targets with one "
                             f"matrix, so x_src and x_dst need the same width, got "
                             f"{x_src.size(-1)} and {x_dst.size(-1)}")
        h_src = head_linear(self.lin_l, x_src, self.heads)
        if x_dst is x_src and self.share_weights:
            return h_src, h_src
        return h_src, head_linear(self.lin_r, x_dst, self.heads)

    def node_scores(self, h_src: Tensor, h_dst: OptTensor) -> Tuple[Tensor, OptTensor]:
        return h_src, h_dst

    def edge_score(self, s_j: Tensor, s_i: OptTensor, edge_attr: OptTensor) -> Tensor:
        z = s_j + s_i
        if edge_attr is not None:
            z = z + self.lin_edge(edge_attr).view(-1, self.heads, self.out_channels)
        return (F.leaky_relu(z, self.negative_slope) * self.att).sum(dim=-1)

    def attend(self, graph: PreparedGraph, h_src: Tensor, s_src: Tensor, s_dst: OptTensor,
               edge_attr: OptTensor) -> Tuple[Tensor, Tensor]:
        # s_src is h_src (node_scores): the operator reads one tensor as x_l and h_src, and its
        # backward then sums their gradients in one buffer.
        dtype = h_src.dtype
        w_edge = None if edge_attr is None else _to(self.lin_edge.weight, dtype)
        edge_attr = _to(edge_attr, dtype)
        att = _to(self.att.view(self.heads, self.out_channels), dtype)
        s_dst = _to(s_dst, dtype)
        backward = self.backward_needed(h_src, s_dst, att, edge_attr, w_edge)
        return kernels.gatv2_attention(*graph.tensors(backward), h_src, s_dst, att, edge_attr,
                                       w_edge, h_src, self.negative_slope, self.dropout,
                                       self.training, self.message_dropout, strict=self.strict,
                                       check=False)

    def edge_update_inputs(self, s_src: Tensor, s_dst: OptTensor) -> dict:
        return {'x': (s_src, s_dst)}

    def edge_update(self, x_j: Tensor, x_i: Tensor, edge_attr: OptTensor, index: Tensor,
                    ptr: OptTensor, dim_size: Optional[int]) -> Tensor:
        # PyG's GATv2Conv.edge_update signature (x_j, x_i: the projected ends of each edge).
        return self.normalize(self.edge_score(x_j, x_i, edge_attr
                                              if self.lin_edge is not None else None),
                              index, ptr, dim_size)

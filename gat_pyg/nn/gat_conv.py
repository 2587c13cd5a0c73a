"""GATConv: the graph attentional operator of Velickovic et al. (2018)."""
from typing import Optional, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn import Parameter
from torch_geometric.nn.dense.linear import Linear
from torch_geometric.nn.inits import glorot, zeros
from torch_geometric.typing import OptPairTensor, OptTensor

from gat_pyg import kernels
from gat_pyg.nn.attention_conv import AttentionConv
from gat_pyg.nn.functional import head_linear
from gat_pyg.nn.graph import PreparedGraph


def _to(t: OptTensor, dtype: torch.dtype) -> OptTensor:
    """``t`` in ``dtype`` (autocast may have made the projection a half type): a no-op call costs
    as much as a small kernel here, so only when it differs."""
    return t if t is None or t.dtype == dtype else t.to(dtype)


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
        + \mathbf{a}_e^{\top}\mathbf{\Theta}_e\mathbf{e}_{j,i} + b\big)\Big)

    The paper writes the score as :math:`\mathbf{a}^{\top}[\mathbf{W}h_i \,\Vert\,
    \mathbf{W}h_j]`. Splitting :math:`\mathbf{a} = [\mathbf{a}_t \Vert \mathbf{a}_s]` turns it
    into a sum of two per-node scalars, computed once per node and head and gathered per
    edge, so neither the concatenation nor an N x N matrix is ever built.
    :math:`\mathbf{\Theta}_s = \mathbf{\Theta}_t` unless ``in_channels`` is a pair.

    :math:`b` (one learnt scalar per head, ``att_bias=True``; else 0, as in the paper and PyG)
    is the official code's: ``attn_head`` (``utils/layers.py`` of PetarV-/GAT) computes the two
    halves as ``f_1 = conv1d(seq_fts, 1, 1)`` and ``f_2 = conv1d(seq_fts, 1, 1)``, with biases
    :math:`b_1 + b_2 = b`. A constant added to every score of a head would cancel in the
    softmax, but added before the LeakyReLU it does not: it moves the kink, changing how much
    the negative scores are damped relative to the positive ones. It is added to the targets'
    half-scores (the sources' when there are no target features), so that every edge's score
    holds it once on every route (kernels, ``propagate``, the dense masked layer).

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
        att_bias (bool, optional): Learn the per-head score bias :math:`b` of the official
            code (parameter ``att_bias`` ``[heads]``, zero-initialised as TensorFlow's
            ``conv1d`` bias; registered as ``None`` when off, so a state_dict loads into and
            from PyG's layer). (default: ``False``)
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

    edge_updater_type = {'alpha': OptPairTensor, 'edge_attr': OptTensor}

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
        att_bias: bool = False,
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
        if att_bias:
            self.att_bias = Parameter(torch.empty(heads))
        else:
            self.register_parameter('att_bias', None)
        self.reset_parameters()

    def reset_parameters(self):
        super().reset_parameters()
        for lin in (self.lin, self.lin_src, self.lin_dst, self.lin_edge):
            if lin is not None:
                lin.reset_parameters()
        glorot(self.att_src)
        glorot(self.att_dst)
        glorot(self.att_edge)
        zeros(self.att_bias)

    def project(self, x_src: Tensor, x_dst: OptTensor) -> Tuple[Tensor, OptTensor]:
        lin_src = self.lin if self.lin is not None else self.lin_src
        lin_dst = self.lin if self.lin is not None else self.lin_dst
        h_src = head_linear(lin_src, x_src, self.heads)
        if x_dst is None:
            return h_src, None
        if x_dst is x_src and lin_dst is lin_src:
            return h_src, h_src
        return h_src, head_linear(lin_dst, x_dst, self.heads)

    def node_scores(self, h_src: Tensor, h_dst: OptTensor) -> Tuple[Tensor, OptTensor]:
        """The per-node halves ``<W x_j, a_s>`` and ``<W x_i, a_t> + b``, ``[N, H]`` each, of
        ``[N, H, C]`` projections (:func:`gat_pyg.kernels.head_scores`); ``b`` (``att_bias``)
        goes to the sources' half when there are no targets'."""
        shape = (self.heads, self.out_channels)
        s_src = kernels.head_scores(h_src, _to(self.att_src.view(shape), h_src.dtype),
                                    check=False)
        s_dst = None if h_dst is None else kernels.head_scores(
            h_dst, _to(self.att_dst.view(shape), h_dst.dtype), check=False)
        if self.att_bias is not None:
            # Once per edge: an edge's score is s_src[j] + s_dst[i] (or s_src[j] alone).
            if s_dst is not None:
                s_dst = s_dst + self.att_bias.to(s_dst.dtype)
            else:
                s_src = s_src + self.att_bias.to(s_src.dtype)
        return s_src, s_dst

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
        if edge_attr.dim() == 1:
            edge_attr = edge_attr.view(-1, 1)
        weight = self.lin_edge.weight.view(self.heads, self.out_channels, -1)
        folded = (weight * self.att_edge.view(self.heads, self.out_channels, 1)).sum(dim=1)
        return edge_attr @ _to(folded.t(), edge_attr.dtype)

    def attend(self, graph: PreparedGraph, h_src: Tensor, s_src: Tensor, s_dst: OptTensor,
               edge_attr: OptTensor) -> Tuple[Tensor, Tensor]:
        dtype = h_src.dtype
        s_edge = None if edge_attr is None else _to(self.edge_attr_score(edge_attr), dtype)
        s_src, s_dst = _to(s_src, dtype), _to(s_dst, dtype)
        backward = self.backward_needed(s_src, s_dst, s_edge, h_src)
        return kernels.gat_attention(*graph.tensors(backward), s_src, s_dst, s_edge,
                                     h_src, self.negative_slope, self.dropout, self.training,
                                     self.message_dropout, strict=self.strict, check=False)

    def edge_update_inputs(self, s_src: Tensor, s_dst: OptTensor) -> dict:
        return {'alpha': (s_src, s_dst)}

    def edge_update(self, alpha_j: Tensor, alpha_i: OptTensor, edge_attr: OptTensor,
                    index: Tensor, ptr: OptTensor, dim_size: Optional[int]) -> Tensor:
        # PyG's GATConv.edge_update signature (alpha_j, alpha_i: the node scores of each edge's
        # ends), so that subclasses written for PyG's layer override the same hook.
        return self.normalize(self.edge_score(alpha_j, alpha_i, edge_attr
                                              if self.lin_edge is not None else None),
                              index, ptr, dim_size)

"""The attention core: one base class that every graph-attention layer of the package shares.

A layer computes, for each edge j -> i and head h, a raw score e_ij, normalises it over the
incoming edges of i with a softmax, and sums the projected source features weighted by it:

    alpha_ij = softmax_j(e_ij),    x'_i = sum_j alpha_ij W_s x_j      (per head; concat or mean)

Everything except e_ij lives here: projections' plumbing, self-loops (with ``fill_value`` for
edge features), heads, attention dropout, residual, bias, bipartite inputs with ``size``, the
three adjacency forms, ``return_attention_weights`` and the choice between PyG's
``propagate`` and the fused CSR fast path. A variant implements three small methods:

* ``project(x_src, x_dst)`` -> ``[N_src, H, C]`` messages and the ``[N_dst, H, C]`` target side;
* ``node_scores(x_src, x_dst)`` -> what the score reads at each end of an edge;
* ``edge_score(s_j, s_i, edge_attr)`` -> ``[E, H]`` raw scores (before the softmax).
"""
from typing import Optional, Tuple, Union

import torch
from torch import Tensor
from torch.nn import Parameter
from torch_geometric.nn.conv import MessagePassing
from torch_geometric.nn.dense.linear import Linear
from torch_geometric.nn.inits import zeros
from torch_geometric.typing import Adj, OptTensor, SparseTensor, torch_sparse
from torch_geometric.utils import (add_self_loops, is_sparse, is_torch_sparse_tensor,
                                   remove_self_loops, softmax)
from torch_geometric.utils.sparse import set_sparse_value

from gat_pyg.nn import checks
from gat_pyg.nn.functional import dropout_features
from gat_pyg.nn.fused import (CSRGraph, PatternCache, build_csr_graph, csr_aggregate,
                              gather_sources, gather_targets, segment_softmax, sparse_linear)


class AttentionConv(MessagePassing):
    r"""Base class of :class:`GATConv` and :class:`GATv2Conv` (the masked layers of
    :mod:`gat_pyg.nn.masked_gat_conv` hold one of them rather than subclass this).

    Args:
        in_channels (int or tuple): Input features per node, ``-1`` to infer them lazily, or a
            pair ``(source, target)`` for bipartite graphs.
        out_channels (int): Output features per head.
        heads (int, optional): Number of attention heads. (default: ``1``)
        concat (bool, optional): Concatenate the heads' outputs; average them if ``False``.
            (default: ``True``)
        negative_slope (float, optional): LeakyReLU slope of the score. (default: ``0.2``)
        dropout (float, optional): Dropout on the normalised attention coefficients.
            (default: ``0.0``)
        add_self_loops (bool, optional): Replace existing self-loops by one per node.
            (default: ``True``)
        edge_dim (int, optional): Edge feature dimensionality, if edges have features.
            (default: ``None``)
        fill_value (float or Tensor or str, optional): Edge features of the added self-loops:
            a value, or how to reduce each node's incoming edge features
            (``'add'``, ``'mean'``, ``'min'``, ``'max'``, ``'mul'``). (default: ``'mean'``)
        bias (bool, optional): Learn an additive bias. (default: ``True``)
        residual (bool, optional): Add a learnable linear skip connection. (default: ``False``)
        message_dropout (float, optional): Dropout on the projected source features that the
            attention weights sum (the official GAT code applies its input dropout there too,
            after the scores are computed). Not in PyG's layers; ``0`` keeps them identical.
            (default: ``0.0``)
        fast_path (bool, optional): ``None`` picks the fused CSR path whenever it applies,
            ``False`` always uses PyG's ``propagate``, ``True`` insists on the fused path.
            Both give the same numbers. (default: ``None``)
        **kwargs (optional): Additional arguments of
            :class:`torch_geometric.nn.conv.MessagePassing`.
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
        message_dropout: float = 0.0,
        fast_path: Optional[bool] = None,
        **kwargs,
    ):
        checks.check_in_channels(in_channels)
        checks.check_hyperparameters(out_channels, heads, dropout, edge_dim, fill_value)
        checks.check_probability(message_dropout, 'message_dropout')
        kwargs.setdefault('aggr', 'add')
        super().__init__(node_dim=0, **kwargs)
        if isinstance(in_channels, list):
            in_channels = tuple(in_channels)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.heads = heads
        self.concat = concat
        self.negative_slope = negative_slope
        self.dropout = dropout
        self.add_self_loops = add_self_loops
        self.edge_dim = edge_dim
        self.fill_value = fill_value
        self.residual = residual
        self.message_dropout = message_dropout
        self.fast_path = fast_path
        self._graph_cache = PatternCache()

        total_out_channels = out_channels * (heads if concat else 1)
        if residual:
            dst_channels = in_channels if isinstance(in_channels, int) else in_channels[1]
            self.res = Linear(dst_channels, total_out_channels, bias=False,
                              weight_initializer='glorot')
        else:
            self.register_parameter('res', None)
        if bias:
            self.bias = Parameter(torch.empty(total_out_channels))
        else:
            self.register_parameter('bias', None)
        # Subclasses create their projection and attention parameters, then call
        # reset_parameters() at the end of their own __init__.

    def reset_parameters(self):
        super().reset_parameters()
        if self.res is not None:
            self.res.reset_parameters()
        zeros(self.bias)

    # The three methods a variant implements ------------------------------------------------

    def project(self, x_src: Tensor, x_dst: OptTensor) -> Tuple[Tensor, OptTensor]:
        raise NotImplementedError

    def node_scores(self, x_src: Tensor, x_dst: OptTensor) -> Tuple[Tensor, OptTensor]:
        raise NotImplementedError

    def edge_score(self, s_j: Tensor, s_i: OptTensor, edge_attr: OptTensor) -> Tensor:
        raise NotImplementedError

    def sorted_edge_score(self, s_src: Tensor, s_dst: OptTensor, graph: CSRGraph,
                          edge_attr: OptTensor) -> Tensor:
        """Scores of the destination-sorted edges of ``graph`` on the fast path.

        Gathering the node scores per edge costs E x H when they are per-head scalars (GAT);
        a variant whose node scores are vectors (GATv2) overrides this to stay in bounded memory.
        """
        return self.edge_score(gather_sources(s_src, graph),
                               None if s_dst is None else gather_targets(s_dst, graph),
                               edge_attr)

    # Shared machinery -----------------------------------------------------------------------

    def forward(
        self,
        x: Union[Tensor, Tuple[Tensor, OptTensor]],
        edge_index: Adj,
        edge_attr: OptTensor = None,
        size: Optional[Tuple[int, int]] = None,
        return_attention_weights: Optional[bool] = None,
    ):
        r"""Runs the layer.

        Args:
            x (Tensor or (Tensor, Tensor or None)): Node features ``[N, F]`` (dense, or
                torch.sparse COO/CSR), or a pair ``(x_src, x_dst)`` for bipartite graphs.
            edge_index (Tensor or SparseTensor): ``[2, E]`` indices (row 0 sources, row 1
                targets), or a sparse adjacency ``[N_dst, N_src]`` (torch.sparse CSR/CSC/COO or
                ``torch_sparse.SparseTensor``), rows being targets as in PyG.
            edge_attr (Tensor, optional): Edge features ``[E, edge_dim]``.
            size ((int, int), optional): ``(N_src, N_dst)`` when it cannot be read from ``x``.
            return_attention_weights (bool, optional): If ``True``, also return the
                attention weights ``[E', H]`` (``E'`` edges after self-loops) as PyG does:
                ``(edge_index, alpha)``, ``(sparse adjacency, alpha)`` or a ``SparseTensor``.
        """
        x_src, x_dst = checks.split_node_features(x, self.in_channels)
        size = checks.check_size(size, x_src, x_dst)
        num_src = x_src.size(0)
        if x_dst is not None:
            num_dst = x_dst.size(0)
        elif size is not None:
            num_dst = size[1]
        elif not is_sparse(edge_index):
            # MessagePassing's rule for an unknown target count (its size_i falls back to
            # size_j): as many targets as sources. A sparse adjacency says it by its rows.
            num_dst = num_src
        else:
            num_dst = None

        res = None
        if self.res is not None and x_dst is not None:
            res = self.linear(self.res, x_dst)

        h_src, h_dst = self.project(x_src, x_dst)
        s_src, s_dst = self.node_scores(h_src, h_dst)
        # Scores see the whole projection; only the summed values are dropped.
        h_src = dropout_features(h_src, self.message_dropout, self.training)

        if self._use_fast_path():
            out, edge_index, alpha = self._fused_propagate(
                edge_index, edge_attr, h_src, s_src, s_dst, num_src, num_dst,
                bool(return_attention_weights))
        else:
            edge_index, edge_attr = self._prepare_graph(edge_index, edge_attr, num_src,
                                                        num_dst)
            alpha = self.edge_updater(edge_index, s=(s_src, s_dst), edge_attr=edge_attr,
                                      size=size)
            out = self.propagate(edge_index, x=(h_src, h_dst), alpha=alpha, size=size)

        out = self.combine_heads(out, res)

        # PyG's docstring says "set to any value", but its layers test truthiness: False
        # returns the output alone, and so do we.
        if return_attention_weights:
            if isinstance(edge_index, SparseTensor):
                return out, edge_index.set_value(alpha, layout='coo')
            if is_torch_sparse_tensor(edge_index):
                return out, (set_sparse_value(edge_index, alpha), alpha)
            return out, (edge_index, alpha)
        return out

    def combine_heads(self, out: Tensor, res: OptTensor = None) -> Tensor:
        """``[..., H, C]`` -> ``[..., H * C]`` (concat) or ``[..., C]`` (mean), plus the
        residual and the bias. Leading dimensions are free so that the dense batched layer of
        :mod:`gat_pyg.nn.masked_gat_conv` (``[B, N, H, C]``) shares it."""
        if self.concat:
            out = out.reshape(*out.shape[:-2], self.heads * self.out_channels)
        else:
            out = out.mean(dim=-2)
        if res is not None:
            out = out + res
        if self.bias is not None:
            out = out + self.bias
        return out

    def edge_update(self, s_j: Tensor, s_i: OptTensor, edge_attr: OptTensor, index: Tensor,
                    ptr: OptTensor, dim_size: Optional[int]) -> Tensor:
        if index.numel() == 0:
            return s_j.new_empty(0, self.heads)
        alpha = softmax(self.edge_score(s_j, s_i, edge_attr), index, ptr, dim_size)
        return dropout_features(alpha, self.dropout, self.training)

    def message(self, x_j: Tensor, alpha: Tensor) -> Tensor:
        return alpha.unsqueeze(-1) * x_j

    def linear(self, lin: Linear, x: Tensor) -> Tensor:
        """``lin(x)``; on the fast path a sparse ``x`` goes through a CSR product."""
        sparse = x.layout != torch.strided
        lazy = isinstance(lin.weight, torch.nn.parameter.UninitializedParameter)
        if sparse and not lazy and self._use_fast_path():
            return sparse_linear(x, lin.weight, lin.bias)
        return lin(x)

    def _project_edge_attr(self, lin_edge: Linear, edge_attr: Tensor) -> Tensor:
        return lin_edge(edge_attr).view(-1, self.heads, self.out_channels)

    def _prepare_graph(self, edge_index, edge_attr, num_src: int,
                       num_dst: Optional[int]) -> tuple:
        """Validates the graph and replaces its self-loops by one per node (if enabled)."""
        checks.check_graph(edge_index, num_src, num_dst)
        edge_attr = checks.check_edge_attr(edge_attr, self.edge_dim,
                                           checks.num_edges_of(edge_index))
        if not self.add_self_loops:
            return edge_index, edge_attr
        if edge_attr is not None and is_sparse(edge_index):
            # PyG's loop utilities cannot carry edge features through a sparse adjacency
            # (they would fail with a bare AssertionError).
            raise NotImplementedError(
                "edge_attr with add_self_loops=True is not supported when edge_index is a "
                "sparse adjacency (torch.sparse or SparseTensor); pass a [2, E] edge_index "
                "or add the loops yourself")
        if isinstance(edge_index, SparseTensor):
            return torch_sparse.set_diag(edge_index), None
        # Loops exist only for nodes that are both sources and targets.
        num_nodes = num_src if num_dst is None else min(num_src, num_dst)
        edge_index, edge_attr = remove_self_loops(edge_index, edge_attr)
        return add_self_loops(edge_index, edge_attr, fill_value=self.fill_value,
                              num_nodes=num_nodes)

    def _use_fast_path(self) -> bool:
        # The fused kernels sum messages from edge_index[0] into edge_index[1]; other
        # MessagePassing settings (flow, aggr) are PyG's propagate's business.
        supported = self.flow == 'source_to_target' and self.aggr in ('add', 'sum')
        if self.fast_path is not None:
            if self.fast_path and not supported:
                raise ValueError(f"fast_path=True: the fused path sums messages along "
                                 f"source_to_target edges, but this layer has flow="
                                 f"{self.flow!r}, aggr={self.aggr!r}; use fast_path=None")
            return self.fast_path
        # Explainers and message hooks observe `message`, which the fused path does not call;
        # torch.compile traces PyG's dense gather/scatter path, which it handles well.
        return (supported and not self._message_forward_hooks
                and not self._message_forward_pre_hooks and not self.explain
                and self.decomposed_layers == 1
                and not torch.compiler.is_compiling())

    def _fused_propagate(self, edge_index, edge_attr, h_src, s_src, s_dst, num_src, num_dst,
                         want_alpha: bool):
        key = (num_src, num_dst, self.add_self_loops)
        cached = self._graph_cache.get(edge_index, key)
        if cached is None or edge_attr is not None:
            looped, looped_attr = self._prepare_graph(edge_index, edge_attr, num_src, num_dst)
        if cached is None:
            graph_num_dst = num_dst if num_dst is not None else looped.size(0)
            cached = (looped, build_csr_graph(looped, num_src, graph_num_dst))
            self._graph_cache.put(edge_index, key, cached)
        looped, graph = cached
        if edge_attr is not None:
            edge_attr = looped_attr[graph.perm]

        scores = self.sorted_edge_score(s_src, s_dst, graph, edge_attr)
        alpha = dropout_features(segment_softmax(scores, graph), self.dropout, self.training)
        out = csr_aggregate(alpha, h_src, graph)
        return out, looped, graph.to_input_order(alpha) if want_alpha else None

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}({self.in_channels}, '
                f'{self.out_channels}, heads={self.heads})')

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
from torch_geometric.typing import Adj, OptTensor, SparseTensor
from torch_geometric.utils import is_sparse, softmax

from gat_pyg import kernels
from gat_pyg.nn import checks
from gat_pyg.nn.functional import dropout_features, tracing, transforming
from gat_pyg.nn.fused import (csr_aggregate, gather_sources, gather_targets, known_empty,
                              segment_softmax, sparse_linear)
from gat_pyg.nn.graph import (EDGE_INDEX, EDGE_INDEX_CLASS, SPARSE_TENSOR, GraphCache,
                              PreparedGraph, prepare_graph)

# The three implementations of one layer (see AttentionConv._path).
NATIVE, FUSED, PLAIN = 'native', 'fused', 'plain'


def _same_fill_value(a, b) -> bool:
    if isinstance(a, Tensor) or isinstance(b, Tensor):
        return isinstance(a, Tensor) and isinstance(b, Tensor) and a.shape == b.shape and \
            bool((a == b).all())
    return a == b


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
        self._graph_cache = GraphCache()

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

    def sorted_edge_score(self, s_src: Tensor, s_dst: OptTensor, graph: PreparedGraph,
                          edge_attr: OptTensor) -> Tensor:
        """Scores of the destination-sorted edges of ``graph`` on the fast path.

        Gathering the node scores per edge costs E x H when they are per-head scalars (GAT);
        a variant whose node scores are vectors (GATv2) overrides this to stay in bounded memory.
        """
        return self.edge_score(gather_sources(s_src, graph),
                               None if s_dst is None else gather_targets(s_dst, graph),
                               edge_attr)

    def native_attention(self, graph: PreparedGraph, h_src: Tensor, s_src: Tensor,
                         s_dst: OptTensor, edge_attr: OptTensor) -> Tuple[Tensor, Tensor]:
        """Score, softmax, attention dropout, message dropout of ``h_src`` (undropped here)
        and aggregation in one native pass (:mod:`gat_pyg.kernels`):
        ``([N_dst, H, C] output, [E', H] attention in sorted order)``.
        A variant implements it with its own kernel; the base has none, so its layers use the
        pure-torch fused path."""
        raise NotImplementedError

    @staticmethod
    def kernel_graph(graph: PreparedGraph, *inputs: OptTensor) -> tuple:
        """``(ptr, src, t_ptr, t_col, t_perm)`` for the native kernels; the transposed order,
        which only backward reads, is left out (``None``) when no input needs a gradient."""
        if torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in inputs):
            return (graph.ptr, graph.src, *graph.transpose())
        return graph.ptr, graph.src, None, None, None

    # Shared machinery -----------------------------------------------------------------------

    def forward(
        self,
        x: Union[Tensor, Tuple[Tensor, OptTensor]],
        edge_index: Union[Adj, PreparedGraph],
        edge_attr: OptTensor = None,
        size: Optional[Tuple[int, int]] = None,
        return_attention_weights: Optional[bool] = None,
    ):
        r"""Runs the layer.

        Args:
            x (Tensor or (Tensor, Tensor or None)): Node features ``[N, F]`` (dense, or
                torch.sparse COO/CSR), or a pair ``(x_src, x_dst)`` for bipartite graphs.
            edge_index (Tensor or SparseTensor or PreparedGraph): ``[2, E]`` indices (row 0
                sources, row 1 targets) or PyG's ``EdgeIndex``; a sparse adjacency
                ``[N_dst, N_src]`` (torch.sparse CSR/COO, CSC on the fused path only, or
                ``torch_sparse.SparseTensor``), rows being targets as in PyG, without values
                other than 1; or a :class:`~gat_pyg.nn.graph.PreparedGraph` prepared with this
                layer's ``add_self_loops`` (and ``fill_value`` if it carries edge features).
            edge_attr (Tensor, optional): Edge features ``[E, edge_dim]`` of the input edges.
            size ((int, int), optional): ``(N_src, N_dst)`` when it cannot be read from ``x``.
            return_attention_weights (bool, optional): If ``True``, also return the
                attention weights ``[E', H]`` (``E'`` edges after self-loops, after attention
                dropout) as PyG does: ``(edge_index, alpha)``, ``(sparse adjacency, alpha)``
                or a ``SparseTensor``.

        Raises:
            TypeError, ValueError: inputs of the wrong kind, shape, dtype or range (the
                message names the argument), a prepared graph that does not fit ``x`` or the
                layer, or ``fast_path=True`` where the fused path cannot run.
        """
        x_src, x_dst = checks.split_node_features(x, self.in_channels)
        size = checks.check_size(size, x_src, x_dst)
        graph, edge_attr = self._prepared(edge_index, edge_attr, x_src, x_dst, size)

        res = None
        if self.residual and x_dst is not None:
            res = self.linear(self.res, x_dst)

        h_src, h_dst = self.project(x_src, x_dst)
        s_src, s_dst = self.node_scores(h_src, h_dst)
        path = self._path(h_src)
        if path != NATIVE:
            # Scores see the whole projection; only the summed values are dropped (the native
            # kernels draw this mask themselves, inside the aggregation).
            h_src = dropout_features(h_src, self.message_dropout, self.training)

        if path == PLAIN:
            adjacency = graph.adjacency()
            alpha = self.edge_updater(adjacency, s=(s_src, s_dst),
                                      edge_attr=graph.to_input_order(edge_attr)
                                      if edge_attr is not None else None,
                                      size=(graph.num_src, graph.num_dst))
            out = self.propagate(adjacency, x=(h_src, h_dst), alpha=alpha,
                                 size=(graph.num_src, graph.num_dst))
        else:
            if path == NATIVE:
                out, alpha = self.native_attention(graph, h_src, s_src, s_dst, edge_attr)
            else:
                # torch's sparse CSR kernels have no half-precision versions, and autocast
                # would cast their operands to one: this path runs in h_src's dtype (float32 or
                # float64), as autocast runs the ops it does not list.
                with torch.autocast(h_src.device.type, enabled=False):
                    scores = self.sorted_edge_score(s_src.to(h_src.dtype), None if s_dst is None
                                                    else s_dst.to(h_src.dtype), graph,
                                                    None if edge_attr is None
                                                    else edge_attr.to(h_src.dtype))
                    alpha = dropout_features(segment_softmax(scores, graph), self.dropout,
                                             self.training)
                    out = csr_aggregate(alpha, h_src, graph)
            if return_attention_weights:
                alpha = graph.to_input_order(alpha)

        out = self.combine_heads(out, res)

        # PyG's docstring says "set to any value", but its layers test truthiness: False
        # returns the output alone, and so do we.
        if return_attention_weights:
            if graph.form == SPARSE_TENSOR:
                return out, graph.adjacency(alpha)
            if graph.form not in (EDGE_INDEX, EDGE_INDEX_CLASS):
                return out, (graph.adjacency(alpha), alpha)
            return out, (graph.edge_index, alpha)
        return out

    def prepare(self, edge_index: Adj, size: Union[int, Tuple[int, int], None] = None,
                edge_attr: OptTensor = None) -> PreparedGraph:
        """The graph prepared for this layer's settings (``add_self_loops``, ``fill_value``,
        ``edge_dim``), to pass as ``edge_index`` to every layer that shares them; see
        :func:`~gat_pyg.nn.graph.prepare_graph` for the arguments and errors."""
        return prepare_graph(edge_index, size, self.add_self_loops, edge_attr,
                             self.fill_value, self.edge_dim)

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
        if known_empty(index.numel()):
            return s_j.new_empty(0, self.heads)
        alpha = softmax(self.edge_score(s_j, s_i, edge_attr), index, ptr, dim_size)
        return dropout_features(alpha, self.dropout, self.training)

    def message(self, x_j: Tensor, alpha: Tensor) -> Tensor:
        return alpha.unsqueeze(-1) * x_j

    def linear(self, lin: Linear, x: Tensor) -> Tensor:
        """``lin(x)``; a sparse ``x`` goes through a CSR product (PyG's ``Linear`` would take
        the COO product, slower, and no CSR)."""
        sparse = x.layout != torch.strided
        lazy = isinstance(lin.weight, torch.nn.parameter.UninitializedParameter)
        if sparse and not lazy and x.dtype in (torch.float32, torch.float64):
            return sparse_linear(x, lin.weight, lin.bias)
        return lin(x)

    def _prepared(self, edge_index, edge_attr: OptTensor, x_src: Tensor, x_dst: OptTensor,
                  size) -> Tuple[PreparedGraph, OptTensor]:
        """The prepared graph of this call, and its edge features in sorted order."""
        num_src = x_src.size(0)
        if isinstance(edge_index, PreparedGraph):
            graph = edge_index
            self._check_prepared(graph, num_src, x_dst, size)
        else:
            if x_dst is not None:
                num_dst = x_dst.size(0)
            elif size is not None:
                num_dst = size[1]
            elif isinstance(edge_index, SparseTensor) or is_sparse(edge_index):
                num_dst = None   # a sparse adjacency says it by its rows
            else:
                # MessagePassing's rule for an unknown target count (its size_i falls back to
                # size_j): as many targets as sources.
                num_dst = num_src
            key = (num_src, num_dst, self.add_self_loops)
            graph = self._graph_cache.get(edge_index, key)
            if graph is None:
                graph = prepare_graph(edge_index, (num_src, num_dst), self.add_self_loops)
                self._graph_cache.put(edge_index, key, graph)
        if edge_attr is not None:
            edge_attr = checks.check_edge_attr(edge_attr, self.edge_dim,
                                               graph.num_input_edges)
            if self.add_self_loops and graph.form not in (EDGE_INDEX, EDGE_INDEX_CLASS):
                raise ValueError(
                    "edge_attr: edge features with add_self_loops=True need a [2, E] "
                    "edge_index, not a sparse adjacency (torch.sparse or SparseTensor); convert "
                    "it with torch_geometric.utils.to_edge_index, or add the loops yourself")
            return graph, graph.sort_edge_attr(edge_attr, self.fill_value)
        if graph.edge_attr is not None:
            self._check_graph_edge_attr(graph)
        return graph, graph.edge_attr

    def _check_prepared(self, graph: PreparedGraph, num_src: int, x_dst: OptTensor,
                        size) -> None:
        if graph.add_self_loops != self.add_self_loops:
            raise ValueError(f"edge_index: the PreparedGraph was prepared with add_self_loops="
                             f"{graph.add_self_loops}, but this layer has add_self_loops="
                             f"{self.add_self_loops}; prepare it with the layer's setting "
                             f"(layer.prepare(edge_index, size))")
        num_dst = x_dst.size(0) if x_dst is not None else size[1] if size is not None \
            else graph.num_dst
        if (graph.num_src, graph.num_dst) != (num_src, num_dst):
            raise ValueError(f"edge_index: the PreparedGraph has (num_src, num_dst) = "
                             f"{(graph.num_src, graph.num_dst)}, but the node features give "
                             f"{(num_src, num_dst)}")

    def _check_graph_edge_attr(self, graph: PreparedGraph) -> None:
        if self.edge_dim is None:
            raise ValueError("edge_index: the PreparedGraph carries edge features, but this "
                             "layer was built without edge_dim; build it with edge_dim="
                             f"{graph.edge_attr.size(1)} or prepare the graph without them")
        if graph.edge_attr.size(1) != self.edge_dim:
            raise ValueError(f"edge_index: the PreparedGraph carries {graph.edge_attr.size(1)} "
                             f"edge features, but this layer has edge_dim={self.edge_dim}")
        if self.add_self_loops and not _same_fill_value(graph.fill_value, self.fill_value):
            raise ValueError(f"edge_index: the PreparedGraph filled its self-loop features "
                             f"with fill_value={graph.fill_value!r}, but this layer has "
                             f"fill_value={self.fill_value!r}")

    def _path(self, h_src: Tensor) -> str:
        """Which implementation runs: :data:`NATIVE` kernels, the pure-torch :data:`FUSED`
        CSR path, or PyG's :data:`PLAIN` ``propagate``. All give the same numbers."""
        # The fused paths sum messages from edge_index[0] into edge_index[1] without calling
        # `message`; other MessagePassing settings (flow, aggr) are propagate's business, and
        # so are message hooks and explain masks (which observe or edit `message`).
        unsupported = []
        if self.flow != 'source_to_target' or self.aggr not in ('add', 'sum'):
            unsupported.append(f'flow={self.flow!r}, aggr={self.aggr!r}')
        if self._message_forward_hooks or self._message_forward_pre_hooks:
            unsupported.append('message hooks are registered')
        if self.explain:
            unsupported.append('explain mode is on (edge masks)')
        if self.decomposed_layers != 1:
            unsupported.append(f'decomposed_layers={self.decomposed_layers}')
        native = self._native_supported(h_src)
        # torch.sparse CSR products support float32/float64 only and are not traceable by
        # torch.compile, function transforms (vmap, grad) or torch.jit.trace.
        fused = (h_src.dtype in (torch.float32, torch.float64) and not tracing())
        if self.fast_path is False:
            return PLAIN
        if self.fast_path:
            if unsupported:
                raise ValueError(f"fast_path=True: the fused path cannot run here: "
                                 f"{'; '.join(unsupported)}; use fast_path=None (automatic)")
            if not (native or fused):
                raise ValueError(f"fast_path=True: no fused implementation for {h_src.dtype} "
                                 f"on {h_src.device.type} here (native kernels "
                                 f"{'loaded' if kernels.available() else 'not built'}); use "
                                 f"fast_path=None to fall back to PyG's propagate")
        elif unsupported:
            return PLAIN
        return NATIVE if native else FUSED if fused else PLAIN

    def _native_supported(self, h_src: Tensor) -> bool:
        return (type(self).native_attention is not AttentionConv.native_attention
                and kernels.available() and kernels.supports(h_src)
                and not transforming())

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}({self.in_channels}, '
                f'{self.out_channels}, heads={self.heads})')

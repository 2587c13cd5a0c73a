"""The attention core: one base class that every graph-attention layer of the package shares.

A layer computes, for each edge j -> i and head h, a raw score e_ij, normalises it over the
incoming edges of i with a softmax, and sums the projected source features weighted by it:

    alpha_ij = softmax_j(e_ij),    x'_i = sum_j alpha_ij W_s x_j      (per head; concat or mean)

Everything except e_ij lives here: the projections' plumbing, self-loops (with ``fill_value``
for edge features), heads, attention dropout, per-head input dropout, residual, bias, bipartite
inputs with ``size``,
the three adjacency forms, ``return_attention_weights``, and the one decision between the
package's operators and PyG's ``propagate``. A call reads straight through:

    prepare the graph -> project -> node scores -> attend (one operator call) -> combine heads

A variant (:class:`~gat_pyg.GATConv`, :class:`~gat_pyg.GATv2Conv`) says only how its score is
computed, in five methods:

* ``project(x_src, x_dst)`` -> ``[N_src, H, C]`` messages and the ``[N_dst, H, C]`` target side
  (each projection through :func:`~gat_pyg.nn.functional.head_linear`, so that the inputs may
  carry one dropout mask per head);
* ``node_scores(h_src, h_dst)`` -> what the score reads at each end of an edge;
* ``edge_score(s_j, s_i, edge_attr)`` -> the raw scores of gathered (or broadcast) node scores,
  in plain torch (PyG's ``propagate`` path and the dense masked layer use it);
* ``attend(graph, h_src, s_src, s_dst, edge_attr)`` -> the whole attention in one call of the
  variant's operator (:mod:`gat_pyg.kernels.attend`);
* ``edge_update(...)`` with PyG's hook signature, and ``edge_update_inputs`` naming what it reads,
  for ``propagate``.
"""
from typing import Dict, Optional, Tuple, Union

import torch
from torch import Tensor
from torch.nn import Parameter
from torch_geometric.nn.conv import MessagePassing
from torch_geometric.nn.dense.linear import Linear
from torch_geometric.nn.inits import zeros
from torch_geometric.typing import Adj, OptPairTensor, OptTensor, SparseTensor
from torch_geometric.utils import is_sparse, softmax

from gat_pyg.checks import check_probability
from gat_pyg.nn import checks
from gat_pyg.nn.functional import HeadInputs, dropout_features, linear, materialize
from gat_pyg.nn.graph import (EDGE_INDEX, EDGE_INDEX_CLASS, SPARSE_TENSOR, GraphCache,
                              PreparedGraph, prepare_graph)

# PyG's hook dictionaries: a registered hook observes or edits what propagate computes, so
# only propagate can honour it.
_PYG_HOOKS = ('_propagate_forward_pre_hooks', '_propagate_forward_hooks',
              '_message_forward_pre_hooks', '_message_forward_hooks',
              '_aggregate_forward_pre_hooks', '_aggregate_forward_hooks',
              '_message_and_aggregate_forward_pre_hooks', '_message_and_aggregate_forward_hooks',
              '_edge_update_forward_pre_hooks', '_edge_update_forward_hooks')
# MessagePassing methods a subclass may override to change what propagate computes.
_OVERRIDABLE = ('message', 'edge_update', 'aggregate', 'message_and_aggregate', 'update')
_OWN_MODULES = ('gat_pyg.', 'torch_geometric.')


def _same_fill_value(a, b) -> bool:
    if isinstance(a, Tensor) or isinstance(b, Tensor):
        return isinstance(a, Tensor) and isinstance(b, Tensor) and a.shape == b.shape and \
            bool((a == b).all())
    return a == b


_HOOKS: Dict[type, Tuple[str, ...]] = {}
"""``overridden_hooks``' answers per class, for eager calls."""


def overridden_hooks(cls: type) -> Tuple[str, ...]:
    """The message-passing methods that ``cls`` (a subclass of a layer of the package, written
    elsewhere) defines itself: e.g. PyG's ``examples/contrib/rbcd_attack.py`` subclasses
    ``GATConv`` to override ``edge_update``."""
    if torch.compiler.is_compiling():
        # Traced, not looked up: a compiled graph guarded on the cache would be recompiled
        # whenever another class is added to it (functools.lru_cache, which dynamo ignores,
        # made it warn of possible silent incorrectness instead).
        return _own_hooks(cls)
    hooks = _HOOKS.get(cls)
    if hooks is None:
        # Two threads may both compute it: the same tuple, stored twice.
        hooks = _HOOKS[cls] = _own_hooks(cls)
    return hooks


def _own_hooks(cls: type) -> Tuple[str, ...]:
    return tuple(name for name in _OVERRIDABLE
                 if not getattr(cls, name).__module__.startswith(_OWN_MODULES))


class AttentionConv(MessagePassing):
    r"""Base class of :class:`~gat_pyg.GATConv` and :class:`~gat_pyg.GATv2Conv`, and through
    them of the masked layers of :mod:`gat_pyg.nn.masked_gat_conv`.

    Args:
        in_channels (int or tuple): Input features per node, ``-1`` to infer them lazily, or a
            pair ``(source, target)`` for bipartite graphs.
        out_channels (int): Output features per head.
        heads (int, optional): Number of attention heads. (default: ``1``)
        concat (bool, optional): Concatenate the heads' outputs; average them if ``False``.
            (default: ``True``)
        negative_slope (float, optional): LeakyReLU slope of the score. (default: ``0.2``)
        dropout (float, optional): Dropout on the normalised attention coefficients, in
            ``[0, 1]``. (default: ``0.0``)
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
        head_input_dropout (float, optional): Dropout on the layer's input features with its
            own mask for every head, in training: the official GAT code drops each head's input
            separately (``tf.nn.dropout(seq, 1 - in_drop)`` inside ``attn_head``,
            ``utils/layers.py`` of PetarV-/GAT), where dropout before the layer gives all heads
            one mask (:class:`~gat_pyg.nn.functional.HeadInputs` computes it without copying
            the projection per head). A head's source and target projections, and its share of
            the residual, see the same mask. Not in PyG's layers; ``0`` keeps them identical.
            (default: ``0.0``)
        fast_path (bool, optional): ``None`` runs the package's operators (their kernel where
            the device has one, else their pure-torch reference) unless something asks for
            PyG's ``propagate`` (see :meth:`why_propagate`); ``False`` always uses
            ``propagate``; ``True`` insists on a kernel and raises ``ValueError`` naming the
            reason where none can run (a dtype or device without one, a function transform,
            forward-mode AD, double backward, hooks). All give the same numbers.
            (default: ``None``)
        **kwargs (optional): Additional arguments of
            :class:`torch_geometric.nn.conv.MessagePassing`.
    """

    # What propagate is called with, for PyG's generated (jinja) propagate; each variant says
    # the same of its edge_updater. (PyG would otherwise parse the call out of the source.)
    propagate_type = {'x': OptPairTensor, 'alpha': Tensor}

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
        head_input_dropout: float = 0.0,
        fast_path: Optional[bool] = None,
        **kwargs,
    ):
        checks.check_in_channels(in_channels)
        checks.check_hyperparameters(out_channels, heads, dropout, edge_dim, fill_value)
        check_probability(message_dropout, 'message_dropout')
        check_probability(head_input_dropout, 'head_input_dropout')
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
        self.head_input_dropout = head_input_dropout
        self.fast_path = fast_path
        self.graph_cache = GraphCache()

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

    # What a variant implements ----------------------------------------------------------------

    def project(self, x_src: Tensor, x_dst: OptTensor) -> Tuple[Tensor, OptTensor]:
        raise NotImplementedError

    def node_scores(self, h_src: Tensor, h_dst: OptTensor) -> Tuple[Tensor, OptTensor]:
        raise NotImplementedError

    def edge_score(self, s_j: Tensor, s_i: OptTensor, edge_attr: OptTensor) -> Tensor:
        raise NotImplementedError

    def attend(self, graph: PreparedGraph, h_src: Tensor, s_src: Tensor, s_dst: OptTensor,
               edge_attr: OptTensor) -> Tuple[Tensor, Tensor]:
        """Score, softmax, both dropouts and aggregation in one operator call:
        ``([N_dst, H, C] output, [E', H] attention after dropout, in sorted order)``."""
        raise NotImplementedError

    def edge_update_inputs(self, s_src: Tensor, s_dst: OptTensor) -> dict:
        """What ``edge_updater`` passes to :meth:`edge_update` (PyG's keyword for the node
        scores: ``alpha`` for GAT, ``x`` for GATv2)."""
        raise NotImplementedError

    # The call ---------------------------------------------------------------------------------

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
                ``[N_dst, N_src]`` (torch.sparse CSR/COO, CSC with ``add_self_loops=False``, or
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
                layer, or ``fast_path=True`` where no kernel can run.
        """
        x_src, x_dst = checks.split_node_features(x, self.in_channels)
        size = checks.check_size(size, x_src, x_dst)
        reason = self.why_propagate()
        graph, edge_attr = self._prepared(edge_index, edge_attr, x_src, x_dst, size,
                                          passes_edge_attr='edge_update' in
                                          overridden_hooks(type(self)))
        x_src, x_dst = self.head_inputs(x_src, x_dst)
        res = None
        if self.residual and x_dst is not None:
            res = self.residual_of(x_dst)
        h_src, h_dst = self.project(x_src, x_dst)
        s_src, s_dst = self.node_scores(h_src, h_dst)
        if reason is None:
            out, alpha = self.attend(graph, h_src, s_src, s_dst, edge_attr)
            if return_attention_weights:
                alpha = graph.to_input_order(alpha)
        else:
            out, alpha = self._propagate(graph, h_src, h_dst, s_src, s_dst, edge_attr)
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

    def head_inputs(self, x_src: Tensor, x_dst: OptTensor
                    ) -> Tuple[Union[Tensor, HeadInputs], Union[Tensor, HeadInputs, None]]:
        """The inputs the projections read: with ``head_input_dropout`` in training, each as a
        :class:`~gat_pyg.nn.functional.HeadInputs` (one mask per head; one object when
        ``x_dst is x_src``, so a head's two ends share it), else as given."""
        if not self.training or self.head_input_dropout == 0.0:
            return x_src, x_dst
        src = HeadInputs(x_src, self.heads, self.head_input_dropout)
        if x_dst is None or x_dst is x_src:
            return src, None if x_dst is None else src
        return src, HeadInputs(x_dst, self.heads, self.head_input_dropout)

    def residual_of(self, x_dst: Union[Tensor, HeadInputs]) -> Tensor:
        """The skip connection ``res(x_dst)``, ``[N_dst, H * C]`` (concat) or ``[N_dst, C]``.
        With per-head inputs each head's share reads its own mask, as the official
        ``attn_head`` adds ``conv1d(seq)`` of its dropped ``seq`` to each head: the rows of
        ``res.weight`` per head (concat), or, for averaged heads, the one ``[C, F]`` matrix on
        every head's copy and the mean over heads (the mean of the heads' residuals)."""
        if not isinstance(x_dst, HeadInputs):
            return linear(self.res, x_dst)
        materialize(self.res, x_dst.x)
        weight = self.res.weight if self.concat else self.res.weight.repeat(self.heads, 1)
        out = x_dst.linear(weight)
        return out.flatten(1) if self.concat else out.mean(dim=1)

    def why_propagate(self) -> Optional[str]:
        """Why this layer must run PyG's ``propagate`` rather than the package's operators, or
        ``None``: the one place a layer decides its route. ``propagate`` honours what the
        operators cannot see: registered message-passing hooks, explain mode (edge masks),
        a non-default ``flow`` / ``aggr``, ``decomposed_layers > 1``, a subclass's own
        ``message`` / ``edge_update`` / ``aggregate`` / ``update``, and ``fast_path=False``.

        Raises:
            ValueError: ``fast_path=True`` with one of those (naming it).
        """
        if self.fast_path is False:
            return 'fast_path=False'
        reasons = []
        if self.flow != 'source_to_target' or self.aggr not in ('add', 'sum'):
            reasons.append(f'flow={self.flow!r}, aggr={self.aggr!r}')
        if any(getattr(self, name, None) for name in _PYG_HOOKS):
            reasons.append('message-passing hooks are registered')
        if self.explain:
            reasons.append('explain mode is on (edge masks)')
        if self.decomposed_layers != 1:
            reasons.append(f'decomposed_layers={self.decomposed_layers}')
        overridden = overridden_hooks(type(self))
        if overridden:
            reasons.append(f'{type(self).__name__} overrides {", ".join(overridden)}')
        if not reasons:
            return None
        if self.fast_path:
            raise ValueError(f"fast_path=True: the kernels cannot run here: "
                             f"{'; '.join(reasons)}; use fast_path=None (automatic)")
        return '; '.join(reasons)

    @property
    def strict(self) -> Optional[str]:
        """What the operators name when they refuse a ``fast_path=True`` layer."""
        return 'fast_path=True' if self.fast_path else None

    def _propagate(self, graph: PreparedGraph, h_src: Tensor, h_dst: OptTensor, s_src: Tensor,
                   s_dst: OptTensor, edge_attr: OptTensor) -> Tuple[Tensor, Tensor]:
        """PyG's route: ``edge_updater`` (scores, softmax, attention dropout) then
        ``propagate`` (``message``, aggregation), on the graph's ``[2, E']`` edge list in the
        caller's edge order (the order PyG's layers give a sparse adjacency's edges too);
        returns the attention in that order."""
        # Always the edge list: PyG marks a torch.sparse COO input coalesced in place, which
        # would invalidate the indices autograd saved from the same tensor.
        adjacency = graph.edge_index
        alpha = self.edge_updater(adjacency, **self.edge_update_inputs(s_src, s_dst),
                                  edge_attr=None if edge_attr is None
                                  else graph.to_input_order(edge_attr),
                                  size=(graph.num_src, graph.num_dst))
        # The scores saw the whole projection; only the summed values are dropped.
        messages = dropout_features(h_src, self.message_dropout, self.training)
        out = self.propagate(adjacency, x=(messages, h_dst), alpha=alpha,
                             size=(graph.num_src, graph.num_dst))
        return out, alpha

    def normalize(self, score: Tensor, index: Tensor, ptr: OptTensor,
                  dim_size: Optional[int]) -> Tensor:
        """The end of every variant's ``edge_update``: softmax over each target's edges, then
        attention dropout."""
        alpha = softmax(score, index, ptr, dim_size)
        return dropout_features(alpha, self.dropout, self.training)

    def message(self, x_j: Tensor, alpha: Tensor) -> Tensor:
        return alpha.unsqueeze(-1) * x_j

    def backward_needed(self, *inputs: OptTensor) -> bool:
        """Whether autograd will ask for a backward of an operator reading ``inputs`` (then the
        graph's transposed order is needed)."""
        return torch.is_grad_enabled() and any(t is not None and t.requires_grad
                                               for t in inputs)

    # Graph ------------------------------------------------------------------------------------

    def prepare(self, edge_index: Adj, size: Union[int, Tuple[int, int], None] = None,
                edge_attr: OptTensor = None) -> PreparedGraph:
        """The graph prepared for this layer's settings (``add_self_loops``, ``fill_value``,
        ``edge_dim``), to pass as ``edge_index`` to every layer that shares them; see
        :func:`~gat_pyg.nn.graph.prepare_graph` for the arguments and errors."""
        return prepare_graph(edge_index, size, self.add_self_loops, edge_attr,
                             self.fill_value, self.edge_dim)

    def _prepared(self, edge_index, edge_attr: OptTensor, x_src: Tensor, x_dst: OptTensor,
                  size, passes_edge_attr: bool = False) -> Tuple[PreparedGraph, OptTensor]:
        """The prepared graph of this call, and its edge features in sorted order.
        ``passes_edge_attr``: a subclass's ``edge_update`` reads ``edge_attr`` itself (PyG's
        layers pass it through whatever ``edge_dim`` is)."""
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
            graph = self.graph_cache.prepare(
                edge_index, key,
                lambda: prepare_graph(edge_index, (num_src, num_dst), self.add_self_loops))
        if edge_attr is not None:
            if passes_edge_attr and self.edge_dim is None:
                width = 1 if edge_attr.dim() == 1 else edge_attr.size(-1)
                checked = checks.check_edge_attr(edge_attr, width, graph.num_input_edges)
                looped = graph.sort_edge_attr(checked, self.fill_value)
                return graph, looped.view(-1) if edge_attr.dim() == 1 else looped
            edge_attr = checks.check_edge_attr(edge_attr, self.edge_dim,
                                               graph.num_input_edges)
            if self.add_self_loops and graph.form not in (EDGE_INDEX, EDGE_INDEX_CLASS):
                raise checks.EdgeFeatureError(
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

    # Output -----------------------------------------------------------------------------------

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

    def __prepare_scriptable__(self):
        # torch.jit.script calls this first: refuse by name, rather than fail deep inside the
        # TorchScript compiler on the first Python-only line.
        raise TypeError(f'torch.jit.script: {type(self).__name__} is not TorchScript (its '
                        f'operators choose their kernels in Python); use torch.compile or '
                        f'torch.export, which trace it (torch.jit.script is deprecated)')

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}({self.in_channels}, '
                f'{self.out_channels}, heads={self.heads})')

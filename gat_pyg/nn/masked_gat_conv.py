r"""Masked graph attention: GAT or GATv2 scores restricted to the pairs an adjacency mask allows.

Four explicit classes, one per (path, score), each a subclass of the variant whose score it
uses, so the score formulas and their parameters (``lin``, ``att_src``, ``att``, ...) exist
once, in the variant, and the layer is whatever PyG's tools that walk ``MessagePassing``
modules expect:

================================  =================================  ===========================
score                             one graph ``[N, F]`` (sparse)      a batch ``[B, N, F]`` (dense)
================================  =================================  ===========================
GAT (:class:`~gat_pyg.GATConv`)     :class:`MaskedGATConv`             :class:`DenseMaskedGATConv`
GATv2 (:class:`~gat_pyg.GATv2Conv`) :class:`MaskedGATv2Conv`           :class:`DenseMaskedGATv2Conv`
================================  =================================  ===========================

Self-loops are never added: the mask alone decides which pairs exist.

* the sparse layers prepare their graph straight from the mask (``mask.nonzero()`` is already
  target-major, so nothing is sorted), cached in the layer's one graph cache like any input
  graph, and run the core's forward: the attention operators, for one graph;
* the dense layers call the variant's ``project`` / ``node_scores`` / ``edge_score`` on
  broadcast ``[B, 1, N, ...]`` / ``[B, N, 1, ...]`` node scores, which yields every pair's score
  ``[B, N, N, H]`` at once, then normalise with :func:`masked_softmax`: for batches of small
  graphs (label graphs: ``N`` is tens to hundreds).

A sparse and a dense layer of one score have the same parameters under the same names (the
variant's, ``res.weight``, ``beta``), apply the same dropouts in the same places, and give the
same numbers graph by graph. Checkpoints saved when these layers held their variant as ``conv``
(``conv.lin.weight``, ...) still load.
"""
import math
import numbers
from typing import Callable, Optional, Union

import torch
from torch import Tensor
from torch.nn import Parameter
from torch_geometric.nn.dense.linear import Linear
from torch_geometric.nn.resolver import activation_resolver
from torch_geometric.utils import is_torch_sparse_tensor
from torch_geometric.utils.sparse import index2ptr

from gat_pyg.nn import checks
from gat_pyg.nn.functional import dropout_features
from gat_pyg.nn.gat_conv import GATConv
from gat_pyg.nn.gatv2_conv import GATv2Conv
from gat_pyg.nn.graph import PreparedGraph, prepare_graph
from gat_pyg.nn.mask import as_bool_mask

# Arguments of the variants that a masked layer sets itself, and why.
_FIXED_ARGUMENTS = {
    'add_self_loops': "the mask decides which pairs exist, self-loops included "
                      "(mask_from_scores(..., self_loops=True) adds them)",
    'edge_dim': "a mask carries no edge features",
    'fill_value': "a mask carries no edge features",
    'residual': "use beta=<float> for the residual out = act(h' + beta * h)",
}


def masked_softmax(scores: Tensor, mask: Tensor, dim: int) -> Tensor:
    r"""Softmax of ``scores`` along ``dim`` over the entries where ``mask`` is ``True``.

    .. math::
        \alpha_{ij} = \frac{M_{ij}\exp(e_{ij} - m_i)}{\max\big(1[\textstyle\sum_k M_{ik} = 0],
        \sum_k M_{ik}\exp(e_{ik} - m_i)\big)}, \qquad m_i = \max_{k: M_{ik}} e_{ik}

    Disallowed entries get exactly ``0`` and a row with no allowed entry is all zeros, in the
    values and in the gradients. The two usual dense shortcuts fail here: multiplying the scores
    by a 0/1 mask still gives a masked pair ``exp(0)`` of mass, and filling ``-inf`` (or
    ``-9e15``) before ``torch.softmax`` turns an empty row into NaN (or a uniform average over
    the disallowed pairs).

    Args:
        scores (Tensor): Raw scores, any shape.
        mask (Tensor): ``torch.bool``, broadcastable to ``scores``.
        dim (int): The dimension to normalise over.
    """
    # -inf keeps disallowed pairs out of the maximum and makes their exp exactly 0; exp's
    # gradient there is then 0 (not 0 * inf), so nothing non-finite reaches the scores.
    masked = scores.masked_fill(~mask, float('-inf'))
    # The shift cancels in the ratio, so it needs no gradient; an empty row's max is -inf,
    # and -inf - -inf would be NaN, hence 0 there.
    shift = masked.amax(dim=dim, keepdim=True).detach()
    shift = shift.masked_fill(shift == float('-inf'), 0.0)
    weights = (masked - shift).exp()
    total = weights.sum(dim=dim, keepdim=True)
    # An allowed row has total >= 1 (its maximum contributes exp(0)); only an empty row has 0,
    # and dividing its zeros by 1 keeps both the values and the gradient finite.
    return weights / total.masked_fill(total == 0, 1.0)


class _MaskedAttention:
    """What every masked layer shares, ahead of its variant in the method order: the fixed
    arguments, the beta residual, the activation, and the loading of checkpoints from the time
    the variant was held as ``conv``. ``score`` names the variant's score in ``repr``."""
    score: str = ''
    other_score: str = ''

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        heads: int = 1,
        concat: bool = True,
        negative_slope: float = 0.2,
        dropout: float = 0.0,
        bias: bool = True,
        beta: Optional[float] = None,
        learn_beta: bool = False,
        act: Union[str, Callable, None] = None,
        **kwargs,
    ):
        if 'score' in kwargs:
            raise TypeError(f"score: {type(self).__name__} computes {self.score}'s score; "
                            f"{self.other_score} computes the other one (there is one class "
                            f"per score, no score argument)")
        for name, why in _FIXED_ARGUMENTS.items():
            if name in kwargs:
                raise ValueError(f"{name}: not an argument of {type(self).__name__}: {why}")
        checks.check_in_channels(in_channels)
        if not isinstance(in_channels, int):
            raise ValueError(f"in_channels: a mask is square [N, N] (sources and targets are "
                             f"the same nodes), so expected one integer, got {in_channels!r}")
        if beta is None and learn_beta:
            raise ValueError("learn_beta: a learnable residual weight needs a starting "
                             "value, pass beta=<float> as well")
        if beta is not None:
            if isinstance(beta, bool) or not isinstance(beta, numbers.Real) \
                    or not math.isfinite(beta):
                raise ValueError(f"beta: expected None or a finite real number, got {beta!r}")
            if in_channels == -1:
                raise ValueError("in_channels: the residual (beta) must know the input width "
                                 "to decide whether it needs a projection; pass it instead of "
                                 "-1")
        super().__init__(in_channels, out_channels, heads=heads, concat=concat,
                         negative_slope=negative_slope, dropout=dropout, add_self_loops=False,
                         bias=bias, **kwargs)
        self.beta_init = None if beta is None else float(beta)
        if beta is None:
            self.register_parameter('beta', None)
        elif learn_beta:
            self.beta = Parameter(torch.empty(()))
        else:
            # A buffer, not a float: it follows .to(dtype / device) and the state_dict.
            self.register_buffer('beta', torch.empty(()))
        out_width = out_channels * (heads if concat else 1)
        if beta is not None and in_channels != out_width:
            del self.res   # the core registered it as an absent parameter (residual=False)
            self.res = Linear(in_channels, out_width, bias=False, weight_initializer='glorot')
        self.act = activation_resolver(act) if isinstance(act, str) else act
        self._register_load_state_dict_pre_hook(_load_held_variant_keys)
        self.reset_parameters()

    def reset_parameters(self):
        super().reset_parameters()
        # Also called by the variant's __init__, before beta exists.
        if getattr(self, 'beta', None) is not None:
            with torch.no_grad():
                self.beta.fill_(self.beta_init)

    def _finish(self, out: Tensor, x: Tensor) -> Tensor:
        """``act(out + beta * h)``; ``out`` (the attention output) already holds the bias."""
        if self.beta is not None:
            out = out + self.beta * (x if self.res is None else self.res(x))
        if self.act is not None:
            out = self.act(out)
        return out

    def __repr__(self) -> str:
        return (f'{type(self).__name__}({self.in_channels}, {self.out_channels}, '
                f'heads={self.heads})')


def _load_held_variant_keys(state_dict, prefix, *args) -> None:
    """Renames ``conv.<name>`` keys (checkpoints from when the masked layers held their
    variant as ``self.conv``) to ``<name>``."""
    old = prefix + 'conv.'
    for key in [k for k in state_dict if k.startswith(old)]:
        state_dict[prefix + key[len(old):]] = state_dict.pop(key)


_LAYER_MATH = r"""
    .. math::
        \mathbf{x}^{\prime}_i = \sigma\Big(\big\Vert_{h=1}^{H}
        \sum_{j:\, M_{ij}} \alpha^h_{ij} \mathbf{\Theta}^h_s \mathbf{x}_j + \mathbf{b}
        + \beta\, \mathbf{W}_r \mathbf{x}_i\Big),
        \qquad
        \alpha^h_{ij} = \frac{M_{ij} \exp(e^h_{ij})}{\sum_{k:\, M_{ik}} \exp(e^h_{ik})}

    with the score :math:`e_{ij}` of GAT, :math:`\mathrm{LeakyReLU}(\mathbf{a}_s^{\top}
    \mathbf{\Theta}\mathbf{x}_j + \mathbf{a}_t^{\top}\mathbf{\Theta}\mathbf{x}_i)`, or of GATv2,
    :math:`\mathbf{a}^{\top}\mathrm{LeakyReLU}(\mathbf{\Theta}_s\mathbf{x}_j +
    \mathbf{\Theta}_t\mathbf{x}_i)`, and the heads concatenated (or averaged).
    :math:`M_{ij}` = ``mask[i, j]``: target :math:`i` may attend to source :math:`j` (rows are
    targets, as in PyG's ``adj_t``). A target with no allowed source gets
    :math:`\alpha_{i\cdot} = 0`, hence :math:`\sigma(\mathbf{b} + \beta\mathbf{W}_r
    \mathbf{x}_i)`, never NaN. The residual term exists only if ``beta`` is set;
    :math:`\mathbf{W}_r` is the identity when the input and output widths agree and a learnt
    projection otherwise.
"""

_LAYER_ARGS = r"""
        in_channels (int): Input features per node (``-1``: lazy, without ``beta``).
        out_channels (int): Output features per head.
        heads (int, optional): Number of heads. (default: ``1``)
        concat (bool, optional): Concatenate heads, else average. (default: ``True``)
        negative_slope (float, optional): LeakyReLU slope of the score. (default: ``0.2``)
        dropout (float, optional): Dropout on the attention coefficients. (default: ``0.0``)
        bias (bool, optional): Additive bias :math:`\mathbf{b}`. (default: ``True``)
        beta (float, optional): Residual weight :math:`\beta`; ``None`` for no residual.
            (default: ``None``)
        learn_beta (bool, optional): Learn :math:`\beta`, starting from ``beta``.
            (default: ``False``)
        act (str or callable, optional): Activation :math:`\sigma` applied last, e.g.
            ``'leaky_relu'`` or ``torch.nn.LeakyReLU(0.2)``; ``None`` for the identity.
            (default: ``None``)
        **kwargs (optional): Further arguments of the variant (e.g. ``share_weights=True`` for
            the GATv2 score, ``message_dropout``, ``head_input_dropout``, whose masks reach the
            attention's projections while the ``beta`` residual reads ``x`` as given,
            ``att_bias`` for the GAT score); ``add_self_loops``, ``edge_dim``, ``fill_value``
            and ``residual`` are not accepted (the mask and ``beta`` replace them).
"""


class _SparseMasked(_MaskedAttention):
    """The sparse path of a masked layer: the mask becomes the prepared graph of the core's
    forward."""

    def forward(self, x: Tensor, mask: Tensor,
                return_attention_weights: Optional[bool] = None):
        r"""Runs the layer.

        Args:
            x (Tensor): Node features ``[N, F]``.
            mask (Tensor): ``[N, N]`` boolean / 0-1 mask (dense or torch.sparse), ``mask[i, j]``
                = target ``i`` may attend to source ``j``; or a ``torch.long`` ``edge_index``
                ``[2, E]``; or a :class:`~gat_pyg.nn.graph.PreparedGraph` without self-loops.
                An integer ``[2, 2]`` tensor with ``N = 2`` could be either and is refused:
                pass a boolean mask.
            return_attention_weights (bool, optional): If ``True``, also return
                ``(edge_index, alpha)`` as :class:`~gat_pyg.GATConv` does (edges sorted by
                target, then source).
        """
        if not isinstance(x, Tensor):
            raise TypeError(f"x: {type(self).__name__} takes node features [N, F] as a "
                            f"torch.Tensor, got {type(x).__name__}")
        if x.dim() == 3:
            raise ValueError(f"x: {type(self).__name__} takes the node features [N, F] of one "
                             f"graph, got a batch of shape {list(x.shape)}; use "
                             f"Dense{type(self).__name__} for batched [B, N, F] input")
        if x.dim() != 2:
            # The core's own check names the expected form.
            checks.split_node_features(x, self.in_channels)
        graph = self.mask_graph(mask, x.size(0))
        result = super().forward(x, graph, return_attention_weights=return_attention_weights)
        if return_attention_weights:
            out, attention = result
            return self._finish(out, x), attention
        return self._finish(result, x)

    def mask_graph(self, mask, num_nodes: int) -> PreparedGraph:
        """The prepared graph of the pairs ``mask`` allows (cached while the mask's contents
        stay the same; see :class:`~gat_pyg.nn.graph.GraphCache`)."""
        if isinstance(mask, PreparedGraph):
            return mask
        if not isinstance(mask, Tensor):
            raise TypeError(f"mask: expected a [N, N] bool mask (dense or torch.sparse) or a "
                            f"[2, E] edge_index, got {type(mask).__name__}")
        return self.graph_cache.prepare(mask, ('mask', num_nodes),
                                         lambda: _mask_graph(mask, num_nodes))


def _mask_graph(mask: Tensor, num_nodes: int) -> PreparedGraph:
    shape = list(mask.shape)
    sparse = is_torch_sparse_tensor(mask)
    integer = not (mask.is_floating_point() or mask.is_complex() or mask.dtype == torch.bool)
    if not sparse and integer and mask.dim() == 2 and mask.size(0) == 2 \
            and shape != [num_nodes, num_nodes]:
        return prepare_graph(mask, num_nodes, add_self_loops=False)
    if mask.dim() == 3:
        raise ValueError(f"mask: MaskedGATConv takes one graph's [N, N] mask, got shape "
                         f"{shape}; use DenseMaskedGATConv for a batch of masks")
    if shape != [num_nodes, num_nodes]:
        raise ValueError(f"mask: expected a [N, N] = [{num_nodes}, {num_nodes}] mask for "
                         f"x with {num_nodes} nodes, or a [2, E] torch.long edge_index, "
                         f"got shape {shape}")
    if integer and num_nodes == 2 and not sparse:
        raise ValueError("mask: an integer [2, 2] tensor with 2 nodes could be an "
                         "edge_index or a 0/1 mask; pass mask.bool() for a mask, or "
                         "gat_pyg.edge_index_to_mask(edge_index, 2)")
    if sparse:
        mask = mask.to_sparse_coo().coalesce()
        keep = as_bool_mask(mask.values(), 'mask (stored values)')
        target, source = mask.indices()[:, keep]
    else:
        # Row-major nonzero: targets ascending, sources ascending within a target, i.e.
        # already the destination-sorted order of the prepared graph.
        target, source = as_bool_mask(mask).nonzero(as_tuple=True)
    return PreparedGraph(ptr=index2ptr(target, num_nodes), src=source, perm=None,
                         num_src=num_nodes, num_dst=num_nodes, add_self_loops=False)


class _DenseMasked(_MaskedAttention):
    """The dense path of a masked layer: every pair of a batch of small graphs at once."""

    def forward(self, x: Tensor, mask: Tensor, node_mask: Optional[Tensor] = None,
                return_attention_weights: bool = False):
        r"""Runs the layer.

        Args:
            x (Tensor): Node features ``[B, N, F]``.
            mask (Tensor): ``[N, N]`` or ``[B, N, N]``, ``mask[b, i, j]`` = target ``i`` may
                attend to source ``j``; ``torch.bool`` or 0/1 values (dense or torch.sparse).
            node_mask (Tensor, optional): ``[B, N]``, ``False`` (or 0) for padding nodes: they
                neither attend nor are attended, and their output rows are zero.
            return_attention_weights (bool, optional): Also return the ``[B, N, N, H]``
                attention weights. (default: ``False``)
        """
        x = self._check_features(x)
        num_graphs, num_nodes, _ = x.shape
        allowed = self._check_mask(mask, num_graphs, num_nodes)
        if node_mask is not None:
            node_mask = self._check_node_mask(node_mask, num_graphs, num_nodes)
            allowed = allowed & node_mask.unsqueeze(2) & node_mask.unsqueeze(1)

        flat = x.reshape(num_graphs * num_nodes, -1)
        h_src, h_dst = self.project(*self.head_inputs(flat, flat))
        s_src, s_dst = self.node_scores(h_src, h_dst)
        s_src = s_src.view(num_graphs, num_nodes, *s_src.shape[1:])
        s_dst = s_dst.view(num_graphs, num_nodes, *s_dst.shape[1:])
        # As on the sparse path: the scores see the whole projection, then the summed values
        # and the normalised attention are dropped out by the same function.
        h_src = dropout_features(h_src, self.message_dropout, self.training)
        h_src = h_src.view(num_graphs, num_nodes, self.heads, self.out_channels)
        # Broadcasting sources along dim 2 and targets along dim 1 gives scores[b, i, j] =
        # e(j -> i), the same call that scores an [E] list of edges on the sparse path.
        scores = self.edge_score(s_src.unsqueeze(1), s_dst.unsqueeze(2), None)  # [B, N, N, H]
        alpha = masked_softmax(scores, allowed.unsqueeze(-1), dim=2)
        alpha = dropout_features(alpha, self.dropout, self.training)
        # [B, H, N, N] @ [B, H, N, C] -> [B, H, N, C]: one matrix product per graph and head.
        out = (alpha.movedim(3, 1) @ h_src.movedim(2, 1)).movedim(1, 2)
        out = self._finish(self.combine_heads(out), x)
        if node_mask is not None:
            # masked_fill, not a product: a zero row stays zero whatever act did to it.
            out = out.masked_fill(~node_mask.unsqueeze(-1), 0.0)
        if return_attention_weights:
            return out, alpha
        return out

    def _check_features(self, x) -> Tensor:
        if not isinstance(x, Tensor):
            raise TypeError(f"x: expected a torch.Tensor [B, N, F], got {type(x).__name__}")
        if x.dim() == 2:
            raise ValueError(f"x: DenseMaskedGATConv takes a batch [B, N, F], got shape "
                             f"{list(x.shape)}; use MaskedGATConv for one graph's [N, F] "
                             f"features (or pass x.unsqueeze(0))")
        if x.dim() != 3:
            raise ValueError(f"x: expected node features [B, N, F], got shape "
                             f"{list(x.shape)}")
        if is_torch_sparse_tensor(x):
            raise TypeError("x: DenseMaskedGATConv takes dense features; use x.to_dense()")
        if not x.is_floating_point():
            raise TypeError(f"x: expected floating point features, got {x.dtype}")
        if self.in_channels != -1 and x.size(-1) != self.in_channels:
            raise ValueError(f"x: the layer was built for {self.in_channels} input features, "
                             f"got {x.size(-1)} (shape {list(x.shape)})")
        return x

    @staticmethod
    def _check_mask(mask, num_graphs: int, num_nodes: int) -> Tensor:
        """Returns ``mask`` as ``torch.bool`` ``[B or 1, N, N]``."""
        if isinstance(mask, Tensor) and is_torch_sparse_tensor(mask):
            mask = mask.to_dense()
        mask = as_bool_mask(mask)
        if mask.dim() == 2:
            mask = mask.unsqueeze(0)
        if mask.dim() != 3 or list(mask.shape[1:]) != [num_nodes, num_nodes] \
                or mask.size(0) not in (1, num_graphs):
            raise ValueError(f"mask: expected [N, N] = [{num_nodes}, {num_nodes}] (shared) or "
                             f"[B, N, N] = [{num_graphs}, {num_nodes}, {num_nodes}] for x of "
                             f"{num_graphs} graphs with {num_nodes} nodes, got shape "
                             f"{list(mask.shape)}")
        return mask

    @staticmethod
    def _check_node_mask(node_mask, num_graphs: int, num_nodes: int) -> Tensor:
        node_mask = as_bool_mask(node_mask, 'node_mask')
        if list(node_mask.shape) != [num_graphs, num_nodes]:
            raise ValueError(f"node_mask: expected [B, N] = [{num_graphs}, {num_nodes}] (one "
                             f"flag per node of each graph), got shape "
                             f"{list(node_mask.shape)}")
        return node_mask


_SPARSE_DOC = r"""Graph attention over the pairs that a mask allows, one graph ``[N, F]``.

    The mask (dense ``[N, N]``, torch.sparse ``[N, N]`` or an ``edge_index``) becomes a
    :class:`~gat_pyg.nn.graph.PreparedGraph` without added self-loops, and the layer runs
    {variant}'s forward on it: the attention operators (a kernel where the device has one).
    With the mask equal to a graph's adjacency including self-loops it computes exactly what
    {variant} computes on that graph. The conversion of a mask is cached while its contents
    stay the same, in the layer's one graph cache. For batches ``[B, N, F]`` use
    :class:`{dense}`, which has the same parameters.
""" + _LAYER_MATH + r"""
    Args:""" + _LAYER_ARGS + r"""
    Shapes:
        - **input:** node features :math:`(N, F_{in})`; mask :math:`(N, N)` (``torch.bool``,
          0/1 values, or torch.sparse with 0/1 stored values) or edge indices
          :math:`(2, E)` (``torch.long``, row 0 sources, row 1 targets)
        - **output:** :math:`(N, H \cdot F_{out})` (or :math:`F_{out}` if ``concat=False``);
          with ``return_attention_weights`` also ``(edge_index, alpha)``,
          :math:`(2, E)` and :math:`(E, H)`.
    """


_DENSE_DOC = r"""Graph attention over the pairs that a mask allows, batched ``[B, N, F]``.

    The dense path: every pair's score ``[B, N, N, H]`` is formed at once by {variant}'s
    own ``edge_score`` on broadcast node scores (``[B, 1, N]`` sources against ``[B, N, 1]``
    targets), normalised by :func:`masked_softmax`, and aggregated with a batched matrix
    product. Memory is :math:`O(B N^2 H)` (GAT) or :math:`O(B N^2 H C)` (GATv2), fine for label
    graphs; use :class:`{sparse}` (same parameters, same numbers per graph) for large
    sparse graphs.{pyg}
""" + _LAYER_MATH + r"""
    Args:""" + _LAYER_ARGS + r"""
    Shapes:
        - **input:** node features :math:`(B, N, F_{in})`; mask :math:`(N, N)` shared by the
          batch or :math:`(B, N, N)` (``torch.bool``, 0/1 values or torch.sparse); node mask
          :math:`(B, N)` *(optional)*
        - **output:** :math:`(B, N, H \cdot F_{out})` (or :math:`F_{out}` if
          ``concat=False``), zero rows for masked-out nodes; with
          ``return_attention_weights=True`` also :math:`(B, N, N, H)` weights,
          ``alpha[b, i, j, h]`` = weight of source ``j`` in target ``i``'s update.
    """


_DENSE_GAT_PYG = r""" With ``beta=None`` and a mask that contains the diagonal, it equals
    :class:`torch_geometric.nn.DenseGATConv` (``add_loop=True``) with the same weights, except
    that here a masked-out node (``node_mask``) is not attended by the others either, and an
    empty row gives zeros where DenseGATConv gives NaN."""


def _doc(template: str, **names: str) -> str:
    # str.format would read the LaTeX braces of the docstrings as fields.
    for name, value in names.items():
        template = template.replace('{' + name + '}', value)
    return template


class MaskedGATConv(_SparseMasked, GATConv):
    __doc__ = _doc(_SPARSE_DOC, variant=':class:`~gat_pyg.GATConv`',
                                 dense='DenseMaskedGATConv')
    score, other_score = 'GAT', 'MaskedGATv2Conv'


class MaskedGATv2Conv(_SparseMasked, GATv2Conv):
    __doc__ = _doc(_SPARSE_DOC, variant=':class:`~gat_pyg.GATv2Conv`',
                                 dense='DenseMaskedGATv2Conv')
    score, other_score = 'GATv2', 'MaskedGATConv'


class DenseMaskedGATConv(_DenseMasked, GATConv):
    __doc__ = _doc(_DENSE_DOC, variant=':class:`~gat_pyg.GATConv`', sparse='MaskedGATConv',
                                pyg=_DENSE_GAT_PYG)
    score, other_score = 'GAT', 'DenseMaskedGATv2Conv'


class DenseMaskedGATv2Conv(_DenseMasked, GATv2Conv):
    __doc__ = _doc(_DENSE_DOC, variant=':class:`~gat_pyg.GATv2Conv`', sparse='MaskedGATv2Conv',
                                pyg='')
    score, other_score = 'GATv2', 'DenseMaskedGATConv'

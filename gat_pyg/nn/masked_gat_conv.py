r"""Masked graph attention: GAT or GATv2 scores restricted to the pairs an adjacency mask allows.

Both layers here are attention layers of the package's core (:class:`~gat_pyg.AttentionConv`,
a ``MessagePassing``), combined with the score of :class:`~gat_pyg.GATConv` or
:class:`~gat_pyg.GATv2Conv` (``score='gat' | 'gatv2'``): ``MaskedGATConv(..., score='gatv2')``
builds an instance of a class that derives from both :class:`MaskedGATConv` and
:class:`~gat_pyg.GATv2Conv`, so the score formulas and their parameters (``lin``, ``att_src``,
``att``, ...) exist once, in the variant, and the layer is whatever PyG's tools that walk
``MessagePassing`` modules expect. Self-loops are never added: the mask alone decides which
pairs exist.

* :class:`MaskedGATConv` prepares its graph straight from the mask (``mask.nonzero()`` is already
  target-major, so nothing is sorted) and runs the core's forward: the sparse path, fused, for
  one graph ``[N, F]``;
* :class:`DenseMaskedGATConv` calls the variant's ``project`` / ``node_scores`` / ``edge_score``
  on broadcast ``[B, 1, N, ...]`` / ``[B, N, 1, ...]`` node scores, which yields every pair's
  score ``[B, N, N, H]`` at once, then normalises with :func:`masked_softmax`: the dense path
  for batches ``[B, N, F]`` of small graphs (label graphs: ``N`` is tens to hundreds).

Both have the same parameters under the same names (the variant's, ``res.weight``, ``beta``),
apply the same dropouts in the same places (:func:`~gat_pyg.nn.functional.dropout_features`),
and give the same numbers graph by graph. Checkpoints saved when these layers held their variant
as ``conv`` (``conv.lin.weight``, ...) still load.
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
from gat_pyg.nn.attention import AttentionConv
from gat_pyg.nn.functional import dropout_features
from gat_pyg.nn.gat_conv import GATConv
from gat_pyg.nn.gatv2_conv import GATv2Conv
from gat_pyg.nn.graph import GraphCache, PreparedGraph, prepare_graph
from gat_pyg.nn.mask import as_bool_mask

SCORES = {'gat': GATConv, 'gatv2': GATv2Conv}

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


class _MaskedAttention(AttentionConv):
    """What both masked layers share: the choice of score, the beta residual, the activation,
    and the loading of checkpoints from the time the variant was held as ``conv``."""

    def __new__(cls, *args, score: str = 'gat', **kwargs):
        # The public classes stand for "this layer with some score": build the subclass that
        # combines this layer with the chosen variant (pickle and copy re-enter here with that
        # subclass itself, and no arguments).
        if cls in _WITH_SCORE:
            if score not in SCORES:
                raise ValueError(f"score: expected one of {sorted(SCORES)}, got {score!r}")
            cls = _WITH_SCORE[cls][score]
        return super().__new__(cls)

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        heads: int = 1,
        concat: bool = True,
        score: str = 'gat',
        negative_slope: float = 0.2,
        dropout: float = 0.0,
        bias: bool = True,
        beta: Optional[float] = None,
        learn_beta: bool = False,
        act: Union[str, Callable, None] = None,
        **kwargs,
    ):
        for name, why in _FIXED_ARGUMENTS.items():
            if name in kwargs:
                raise ValueError(f"{name}: not an argument of {self._public_name()}: {why}")
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
        self.score = score
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
        self._mask_graphs = GraphCache()
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

    @classmethod
    def _public_name(cls) -> str:
        return next(c.__name__ for c in cls.__mro__ if c in _WITH_SCORE)

    def __repr__(self) -> str:
        return (f'{self._public_name()}({self.in_channels}, {self.out_channels}, '
                f'heads={self.heads}, score={self.score!r})')


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
        score (str, optional): ``'gat'`` (:class:`~gat_pyg.GATConv`'s score) or ``'gatv2'``
            (:class:`~gat_pyg.GATv2Conv`'s). (default: ``'gat'``)
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
        **kwargs (optional): Further arguments of the chosen variant (e.g.
            ``share_weights=True`` for ``'gatv2'``); ``add_self_loops``, ``edge_dim``,
            ``fill_value`` and ``residual`` are not accepted (the mask and ``beta`` replace
            them).
"""


class MaskedGATConv(_MaskedAttention):
    __doc__ = r"""Graph attention over the pairs that a mask allows, one graph ``[N, F]``.

    The mask (dense ``[N, N]``, torch.sparse ``[N, N]`` or an ``edge_index``) becomes an
    ``edge_index`` and goes to the held :class:`~gat_pyg.GATConv` / :class:`~gat_pyg.GATv2Conv`
    (attribute ``conv``, built with ``add_self_loops=False``), so this is the sparse path with the
    fused CSR kernels. With the mask equal to a graph's adjacency including self-loops it
    computes exactly what ``GATConv`` (or ``GATv2Conv``) computes on that graph. The conversion
    of a dense or sparse mask is cached per mask tensor, like the variant caches its sorted graph.
    For batches ``[B, N, F]`` use :class:`DenseMaskedGATConv`, which has the same parameters.
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
            raise TypeError(f"x: MaskedGATConv takes node features [N, F] as a torch.Tensor, "
                            f"got {type(x).__name__}")
        if x.dim() == 3:
            raise ValueError(f"x: MaskedGATConv takes the node features [N, F] of one graph, "
                             f"got a batch of shape {list(x.shape)}; use DenseMaskedGATConv "
                             f"for batched [B, N, F] input")
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
        graph = self._mask_graphs.get(mask, (num_nodes, ))
        if graph is None:
            graph = _mask_graph(mask, num_nodes)
            self._mask_graphs.put(mask, (num_nodes, ), graph)
        return graph


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


class DenseMaskedGATConv(_MaskedAttention):
    __doc__ = r"""Graph attention over the pairs that a mask allows, batched ``[B, N, F]``.

    The dense path: every pair's score ``[B, N, N, H]`` is formed at once by the held variant's
    own ``edge_score`` on broadcast node scores (``[B, 1, N]`` sources against ``[B, N, 1]``
    targets), normalised by :func:`masked_softmax`, and aggregated with a batched matrix
    product. Memory is :math:`O(B N^2 H)` (GAT) or :math:`O(B N^2 H C)` (GATv2), fine for label
    graphs; use :class:`MaskedGATConv` (same parameters, same numbers per graph) for large
    sparse graphs. With ``beta=None`` and a mask that contains the diagonal, it equals
    :class:`torch_geometric.nn.DenseGATConv` (``add_loop=True``) with the same weights, except
    that here a masked-out node (``node_mask``) is not attended by the others either, and an
    empty row gives zeros where DenseGATConv gives NaN.
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
        h_src, h_dst = self.project(flat, flat)
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


def _with_score(layer: type, variant: type) -> type:
    """The class of ``layer`` with ``variant``'s score, registered in this module under a
    stable name so that pickle finds it."""
    name = f'{layer.__name__}{variant.__name__[:-4]}'   # e.g. MaskedGATConvGATv2
    cls = type(name, (layer, variant), {'__module__': __name__, '__qualname__': name,
                                        '__doc__': layer.__doc__})
    globals()[name] = cls
    return cls


_WITH_SCORE = {layer: {score: _with_score(layer, variant) for score, variant in SCORES.items()}
               for layer in (MaskedGATConv, DenseMaskedGATConv)}

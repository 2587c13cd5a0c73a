r"""The attention operators: score, softmax, attention and message dropout, and aggregation.

The graph comes destination-sorted (CSR, rows = target nodes) together with its transpose:

* ``ptr`` ``[N_dst + 1]``: row pointers; the edges into target ``i`` are ``ptr[i]:ptr[i+1]``;
* ``src`` ``[E]``: the source of each destination-sorted edge;
* ``t_ptr`` ``[N_src + 1]``: row pointers of the same edges sorted by source;
* ``t_col`` ``[E]``: the destination of each source-sorted edge;
* ``t_perm`` ``[E]``: the destination-sorted position of each source-sorted edge,

all ``int64`` or all ``int32``, on the device of the features. Only a kernel's backward reads
the transposed order: pass ``t_ptr = t_col = t_perm = None`` when no input requires a gradient.
``N_src`` may differ from ``N_dst`` (bipartite graphs), targets without edges are allowed (their
output is 0, never NaN), duplicate edges each count, ``E`` may be 0. Per-edge tensors
(``s_edge``, ``edge_attr`` and the returned ``alpha``) are in destination-sorted order.

For a target ``i`` with incoming edges ``e`` from sources ``j = src[e]``, and a head ``h``:

.. math::
    \alpha_{e,h} = \mathrm{softmax}_{e \in \mathrm{row}(i)}\, \mathrm{score}_{e,h}, \qquad
    \mathrm{out}_{i,h} = \sum_{e \in \mathrm{row}(i)} \alpha_{e,h}\,
        \frac{\mathrm{keep}_{e,h}}{1-p}\, \frac{\mathrm{keep'}_{j,h}}{1-p'}\, h^{src}_{j,h}

(PyG's ``GATConv`` / ``GATv2Conv`` message passing: the softmax of
:func:`torch_geometric.utils.softmax`, dropout of the attention, the weighted sum; ``keep'`` is
the official GAT code's dropout of the projected features, ``message_dropout``, one mask per
source node, head and channel shared by every edge leaving it). GAT (Veličković et al., `arXiv
1710.10903 <https://arxiv.org/abs/1710.10903>`_): ``score = LeakyReLU(s_src[j] + s_dst[i] +
s_edge[e])``. GATv2 (Brody et al., `arXiv 2105.14491 <https://arxiv.org/abs/2105.14491>`_):
``score = att . LeakyReLU(x_l[j] + x_r[i] + W_e edge_attr[e])``. The masks come from
:mod:`gat_pyg.kernels.hashing` (the same bits on every backend); the seeds are drawn from
torch's default generator, so ``torch.manual_seed`` repeats a run bit for bit.

Each operator's **reference** (:func:`gat_reference`, :func:`gatv2_reference`) is the formula
above in plain torch (gather per edge, segment softmax, scatter-add: ``E x H x C`` memory, as
PyG): what every kernel must reproduce, and what runs where no kernel does (see
:mod:`gat_pyg.kernels.dispatch`). The kernels never hold an ``E x H x C`` tensor: they save
``alpha`` before dropout (``[E, H]``) for backward and regenerate the masks from the seeds.
"""
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from gat_pyg.checks import check_probability
from gat_pyg.kernels import hashing
from gat_pyg.kernels.dispatch import Operator, recording

INDEX_DTYPES = (torch.int64, torch.int32)
GRAPH = 5
"""The graph's tensors lead every attention operator's arguments."""


# --- the reference ------------------------------------------------------------------------------

def targets(ptr: Tensor, num_edges) -> Tensor:
    """``[E]`` target of each destination-sorted edge, from the row pointers."""
    counts = ptr[1:] - ptr[:-1]
    return torch.repeat_interleave(torch.arange(ptr.shape[0] - 1, device=ptr.device), counts,
                                   output_size=num_edges)


def segment_softmax(scores: Tensor, dst: Tensor, num_dst) -> Tensor:
    """Softmax of ``[E, H]`` scores over the edges of each target (``dst``), written with
    differentiable operations only (index_add, index_select), so that it supports second
    derivatives, forward-mode AD and every ``torch.func`` transform. The shift by the row's
    maximum is detached: the softmax does not depend on it, nor does its derivative."""
    index = dst.view(-1, *([1] * (scores.dim() - 1))).expand_as(scores)
    peak = scores.new_full((num_dst, *scores.shape[1:]), float('-inf')).scatter_reduce(
        0, index, scores.detach(), 'amax', include_self=True)
    weights = (scores - peak.index_select(0, dst)).exp()
    total = scores.new_zeros((num_dst, *scores.shape[1:])).index_add(0, dst, weights)
    return weights / total.index_select(0, dst)


def _aggregate(alpha: Tensor, h_src: Tensor, src: Tensor, dst: Tensor, num_dst,
               dropout: float, seed: Optional[Tensor], message_dropout: float,
               message_seed: Optional[Tensor]) -> Tensor:
    weights = hashing.drop(alpha, dropout, seed, paired=False)
    values = hashing.drop(h_src, message_dropout, message_seed, paired=True)
    messages = weights.unsqueeze(-1) * values.index_select(0, src)
    return h_src.new_zeros((num_dst, *h_src.shape[1:])).index_add(0, dst, messages)


def gat_reference(ptr, src, t_ptr, t_col, t_perm, s_src, s_dst, s_edge, h_src,
                  negative_slope, dropout, seed, message_dropout=0.0, message_seed=None):
    """The GAT attention in plain torch: ``(out [N_dst, H, C], alpha [E, H])``, alpha before
    attention dropout (as the operator returns it)."""
    src = src.long()
    dst = targets(ptr.long(), src.shape[0])
    num_dst = ptr.shape[0] - 1
    score = s_src.index_select(0, src)
    if s_dst is not None:
        score = score + s_dst.index_select(0, dst)
    if s_edge is not None:
        score = score + s_edge
    alpha = segment_softmax(F.leaky_relu(score, negative_slope), dst, num_dst)
    out = _aggregate(alpha, h_src, src, dst, num_dst, dropout, seed, message_dropout,
                     message_seed)
    return out, alpha


def gatv2_reference(ptr, src, t_ptr, t_col, t_perm, x_l, x_r, att, edge_attr, w_edge, h_src,
                    negative_slope, dropout, seed, message_dropout=0.0, message_seed=None):
    """The GATv2 attention in plain torch: ``(out [N_dst, H, C], alpha [E, H])``."""
    src = src.long()
    dst = targets(ptr.long(), src.shape[0])
    num_dst = ptr.shape[0] - 1
    z = x_l.index_select(0, src) + x_r.index_select(0, dst)
    if edge_attr is not None:
        z = z + (edge_attr @ w_edge.t()).view_as(z)
    score = (F.leaky_relu(z, negative_slope) * att).sum(-1)
    alpha = segment_softmax(score, dst, num_dst)
    out = _aggregate(alpha, h_src, src, dst, num_dst, dropout, seed, message_dropout,
                     message_seed)
    return out, alpha


# --- fake kernels ---------------------------------------------------------------------------------

def _empty_or(want: bool, like: Tensor, *sizes) -> Tensor:
    """A backward operator's gradient: the full shape if wanted, else an empty tensor."""
    return like.new_empty(sizes) if want else like.new_empty(0)


def _gat_forward_fake(ptr, src, t_ptr, t_col, t_perm, s_src, s_dst, s_edge, h_src,
                      negative_slope, dropout, seed, message_dropout=0.0, message_seed=None):
    return (h_src.new_empty(ptr.shape[0] - 1, h_src.shape[1], h_src.shape[2]),
            h_src.new_empty(src.shape[0], h_src.shape[1]))


def _gatv2_forward_fake(ptr, src, t_ptr, t_col, t_perm, x_l, x_r, att, edge_attr, w_edge, h_src,
                        negative_slope, dropout, seed, message_dropout=0.0, message_seed=None):
    return (h_src.new_empty(ptr.shape[0] - 1, h_src.shape[1], h_src.shape[2]),
            h_src.new_empty(src.shape[0], h_src.shape[1]))


def _gat_backward_fake(grad_out, grad_alpha, ptr, src, t_ptr, t_col, t_perm, s_src, s_dst,
                       s_edge, h_src, alpha, negative_slope, dropout, seed, output_mask,
                       message_dropout=0.0, message_seed=None):
    num_src, heads, channels = h_src.shape
    return (_empty_or(output_mask[0], h_src, num_src, heads),
            _empty_or(output_mask[1] and s_dst is not None, h_src, ptr.shape[0] - 1, heads),
            _empty_or(output_mask[2] and s_edge is not None, h_src, src.shape[0], heads),
            _empty_or(output_mask[3], h_src, num_src, heads, channels))


def merges_h_src(output_mask, message_dropout: float, merge_h_src: bool) -> bool:
    """Whether ``gatv2_backward`` returns the gradients of ``x_l`` and ``h_src`` summed in
    ``grad_x_l`` (one buffer; ``grad_h_src`` empty): asked for (``merge_h_src``, the two are
    one tensor), both wanted, and no message dropout (which gives ``h_src`` its own mask). The
    one place that decides it: every backend's backward and the autograd read it."""
    return bool(merge_h_src and output_mask[0] and output_mask[5] and message_dropout == 0.0)


def _gatv2_backward_fake(grad_out, grad_alpha, ptr, src, t_ptr, t_col, t_perm, x_l, x_r, att,
                         edge_attr, w_edge, h_src, alpha, negative_slope, dropout, seed,
                         output_mask, message_dropout=0.0, message_seed=None,
                         merge_h_src=False):
    num_src, heads, channels = x_l.shape
    edges = edge_attr is not None
    edge_dim = edge_attr.shape[1] if edges else 0
    if merges_h_src(output_mask, message_dropout, merge_h_src):
        output_mask = list(output_mask[:5]) + [False]
    return (_empty_or(output_mask[0], x_l, num_src, heads, channels),
            _empty_or(output_mask[1], x_l, ptr.shape[0] - 1, heads, channels),
            _empty_or(output_mask[2], x_l, heads, channels),
            _empty_or(output_mask[3] and edges, x_l, src.shape[0], edge_dim),
            _empty_or(output_mask[4] and edges, x_l, heads * channels, edge_dim),
            _empty_or(output_mask[5], x_l, num_src, heads, channels))


# --- autograd (the kernels' backward) -------------------------------------------------------------

def _transposed(args) -> Tuple[Tensor, Tensor, Tensor]:
    if args[2] is None:
        raise ValueError('t_ptr, t_col, t_perm: the kernels\' backward reads the transposed '
                         'order; pass it to the forward call when an input requires grad')
    return args[2], args[3], args[4]


def _upstream(grad_out: Optional[Tensor], ptr: Tensor, h_src: Tensor) -> Tensor:
    """grad_out, contiguous; zeros when only alpha was used."""
    if grad_out is None:
        return h_src.new_zeros(ptr.shape[0] - 1, *h_src.shape[1:])
    return grad_out.contiguous()


def _contiguous(t: Optional[Tensor]) -> Optional[Tensor]:
    return None if t is None else t.contiguous()


def _gat_backward(args, saved_outputs, grads, needs, info):
    ptr, src = args[0], args[1]
    t_ptr, t_col, t_perm = _transposed(args)
    s_src, s_dst, s_edge, h_src, slope, p, seed, p_message, message_seed = args[5:]
    mask = [needs[5], needs[6] and s_dst is not None, needs[7] and s_edge is not None,
            needs[8]]
    result = torch.ops.gat_pyg.gat_backward(
        _upstream(grads[0], ptr, h_src), _contiguous(grads[1]), ptr, src, t_ptr, t_col, t_perm,
        s_src, s_dst, s_edge, h_src, saved_outputs[0], slope, p, seed, mask, p_message,
        message_seed)
    return (None, ) * GRAPH + tuple(g if m else None for g, m in zip(result, mask)) + \
        (None, ) * 5


def _gatv2_backward(args, saved_outputs, grads, needs, info):
    ptr, src = args[0], args[1]
    t_ptr, t_col, t_perm = _transposed(args)
    x_l, x_r, att, edge_attr, w_edge, h_src, slope, p, seed, p_message, message_seed = args[5:]
    edges = edge_attr is not None
    mask = [needs[5], needs[6], needs[7], needs[8] and edges, needs[9] and edges, needs[10]]
    # GATv2Conv passes its source projection as both x_l and h_src (PyG's x_j is lin_l(x)):
    # then one buffer holds both gradients, and autograd has one gradient to pass on. Only if
    # they are still one tensor once unpacked: saved-tensor hooks that copy unpack two.
    shared = info and x_l is h_src
    result = list(torch.ops.gat_pyg.gatv2_backward(
        _upstream(grads[0], ptr, h_src), _contiguous(grads[1]), ptr, src, t_ptr, t_col, t_perm,
        x_l, x_r, att, edge_attr, w_edge, h_src, saved_outputs[0], slope, p, seed, mask,
        p_message, message_seed, shared))
    if merges_h_src(mask, p_message, shared):
        mask[5] = False
    return (None, ) * GRAPH + tuple(g if m else None for g, m in zip(result, mask)) + \
        (None, ) * 5


GAT_FORWARD = Operator(
    'gat_forward(Tensor ptr, Tensor src, Tensor? t_ptr, Tensor? t_col, Tensor? t_perm, '
    'Tensor s_src, Tensor? s_dst, Tensor? s_edge, Tensor h_src, float negative_slope, '
    'float dropout, Tensor? seed, float message_dropout=0., Tensor? message_seed=None) '
    '-> (Tensor out, Tensor alpha)',
    _gat_forward_fake, gat_reference, like=8, backward=_gat_backward, save_outputs=(1, ))
GAT_BACKWARD = Operator(
    'gat_backward(Tensor grad_out, Tensor? grad_alpha, Tensor ptr, Tensor src, Tensor t_ptr, '
    'Tensor t_col, Tensor t_perm, Tensor s_src, Tensor? s_dst, Tensor? s_edge, Tensor h_src, '
    'Tensor alpha, float negative_slope, float dropout, Tensor? seed, bool[4] output_mask, '
    'float message_dropout=0., Tensor? message_seed=None) -> (Tensor grad_s_src, '
    'Tensor grad_s_dst, Tensor grad_s_edge, Tensor grad_h_src)',
    _gat_backward_fake)
GATV2_FORWARD = Operator(
    'gatv2_forward(Tensor ptr, Tensor src, Tensor? t_ptr, Tensor? t_col, Tensor? t_perm, '
    'Tensor x_l, Tensor x_r, Tensor att, Tensor? edge_attr, Tensor? w_edge, Tensor h_src, '
    'float negative_slope, float dropout, Tensor? seed, float message_dropout=0., '
    'Tensor? message_seed=None) -> (Tensor out, Tensor alpha)',
    _gatv2_forward_fake, gatv2_reference, like=10, backward=_gatv2_backward,
    save_outputs=(1, ), context=lambda args: args[5] is args[10])
GATV2_BACKWARD = Operator(
    'gatv2_backward(Tensor grad_out, Tensor? grad_alpha, Tensor ptr, Tensor src, '
    'Tensor t_ptr, Tensor t_col, Tensor t_perm, Tensor x_l, Tensor x_r, Tensor att, '
    'Tensor? edge_attr, Tensor? w_edge, Tensor h_src, Tensor alpha, float negative_slope, '
    'float dropout, Tensor? seed, bool[6] output_mask, float message_dropout=0., '
    'Tensor? message_seed=None, bool merge_h_src=False) -> (Tensor grad_x_l, '
    'Tensor grad_x_r, Tensor grad_att, Tensor grad_edge_attr, Tensor grad_w_edge, '
    'Tensor grad_h_src)',
    _gatv2_backward_fake)


# --- the functions ---------------------------------------------------------------------------------

def draw_seed(p: float, training: bool, name: str = 'dropout') -> Tuple[float, Optional[Tensor]]:
    """The dropout rate to apply and, if any, a fresh seed (an int64 scalar on the CPU) from
    torch's default generator; ``(0.0, None)`` outside training or for ``p == 0``. The seed is
    always drawn on the CPU, so a ``torch.manual_seed`` gives the same masks on every device."""
    p = check_probability(p, name)
    if not training or p == 0.0:
        return 0.0, None
    return p, torch.randint(0, 2**62, (), dtype=torch.int64)


def gat_attention(ptr: Tensor, src: Tensor, t_ptr: Optional[Tensor], t_col: Optional[Tensor],
                  t_perm: Optional[Tensor], s_src: Tensor, s_dst: Optional[Tensor],
                  s_edge: Optional[Tensor], h_src: Tensor, negative_slope: float = 0.2,
                  dropout: float = 0.0, training: bool = False, message_dropout: float = 0.0,
                  *, strict: Optional[str] = None, check: bool = True
                  ) -> Tuple[Tensor, Tensor]:
    r"""GAT attention and aggregation in one operator call (see the module docstring).

    Args:
        ptr, src, t_ptr, t_col, t_perm (Tensor): The graph; the transposed order may be
            ``None`` when no input requires a gradient.
        s_src (Tensor): ``[N_src, H]`` source half-scores :math:`\mathbf{a}_s^\top W x_j`.
        s_dst (Tensor, optional): ``[N_dst, H]`` target half-scores.
        s_edge (Tensor, optional): ``[E, H]`` edge terms (destination-sorted order).
        h_src (Tensor): ``[N_src, H, C]`` source features to aggregate.
        negative_slope (float): LeakyReLU slope. (default: ``0.2``)
        dropout (float): Attention dropout probability in ``[0, 1]``. (default: ``0.0``)
        training (bool): Apply the dropouts only when ``True``. (default: ``False``)
        message_dropout (float): Dropout probability of the summed ``h_src`` (the scores see
            it whole). (default: ``0.0``)
        strict (str, optional): Refuse, naming it, to run without a kernel or to differentiate
            a kernel's backward (the layers pass ``'fast_path=True'``).
        check (bool): Check every argument first (the layers, whose arguments are right by
            construction, skip it). (default: ``True``)

    Returns:
        ``(out [N_dst, H, C], alpha [E, H])``: alpha after attention dropout, in sorted order.

    Raises:
        TypeError / ValueError: an argument of the wrong kind, dtype, shape or device (the
            message names it).
    """
    args = (ptr, src, t_ptr, t_col, t_perm, s_src, s_dst, s_edge, h_src)
    return _attend(GAT_FORWARD, _checked_gat(*args) if check else args, negative_slope,
                   dropout, training, message_dropout, strict)


def gatv2_attention(ptr: Tensor, src: Tensor, t_ptr: Optional[Tensor], t_col: Optional[Tensor],
                    t_perm: Optional[Tensor], x_l: Tensor, x_r: Tensor, att: Tensor,
                    edge_attr: Optional[Tensor], w_edge: Optional[Tensor], h_src: Tensor,
                    negative_slope: float = 0.2, dropout: float = 0.0, training: bool = False,
                    message_dropout: float = 0.0, *, strict: Optional[str] = None,
                    check: bool = True) -> Tuple[Tensor, Tensor]:
    r"""GATv2 attention and aggregation: ``z = x_l[j] + x_r[i] + (edge_attr[e] @ w_edge.T)``
    viewed as ``[H, C]``, ``score[e,h] = sum_c att[h,c] * LeakyReLU(z[h,c])``, softmax over each
    target's edges, attention dropout, weighted sum of ``h_src[j]``; ``z`` is never held for
    all edges by a kernel.

    Args:
        ptr, src, t_ptr, t_col, t_perm (Tensor): The graph (see the module docstring).
        x_l (Tensor): ``[N_src, H, C]`` projected sources (PyG's ``lin_l(x_src)``).
        x_r (Tensor): ``[N_dst, H, C]`` projected targets (PyG's ``lin_r(x_dst)``).
        att (Tensor): ``[H, C]`` attention vector (PyG's ``att`` without its leading 1).
        edge_attr (Tensor, optional): ``[E, D]`` edge features (destination-sorted order).
        w_edge (Tensor, optional): ``[H * C, D]`` edge projection (PyG's ``lin_edge.weight``);
            given exactly when ``edge_attr`` is.
        h_src (Tensor): ``[N_src, H, C]`` source features to aggregate: usually ``x_l``.
        negative_slope, dropout, training, message_dropout, strict, check: As
            :func:`gat_attention`.

    Returns:
        ``(out, alpha)`` as :func:`gat_attention`.
    """
    args = (ptr, src, t_ptr, t_col, t_perm, x_l, x_r, att, edge_attr, w_edge, h_src)
    return _attend(GATV2_FORWARD, _checked_gatv2(*args) if check else args, negative_slope,
                   dropout, training, message_dropout, strict)


def _attend(operator: Operator, args: tuple, negative_slope: float, dropout: float,
            training: bool, message_dropout: float, strict: Optional[str]):
    """Both attention functions after their checks: the dropouts' seeds, the operator, and the
    attention it returns (before dropout) with the mask the aggregation used (the attention
    dropout's kernel or its reference: ``strict`` concerns the attention itself)."""
    p, seed = draw_seed(dropout, training)
    p_message, message_seed = draw_seed(message_dropout, training, 'message_dropout')
    out, alpha = operator(*args, float(negative_slope), p, seed, p_message, message_seed,
                          strict=strict)
    if seed is None:
        return out, alpha
    from gat_pyg.kernels.dropout import ATTENTION_DROPOUT   # dropout.py imports this module
    return out, ATTENTION_DROPOUT(alpha, p, seed)


# --- argument checks (the public functions only) --------------------------------------------------

def describe(t) -> str:
    if isinstance(t, Tensor):
        return f'a {t.dtype} tensor of shape {list(t.shape)} on {t.device}'
    return 'None' if t is None else type(t).__name__


def _checked_graph(*tensors: Optional[Tensor]) -> Tuple[Optional[Tensor], ...]:
    names = ('ptr', 'src', 't_ptr', 't_col', 't_perm')
    transposed = tensors[2:]
    if any(t is None for t in transposed) and not all(t is None for t in transposed):
        raise ValueError('t_ptr, t_col, t_perm: give all three (the transposed order) or none, '
                         'got ' + ', '.join(describe(t) for t in transposed))
    out = []
    for name, t in zip(names, tensors):
        if t is None and name.startswith('t_'):
            out.append(None)
            continue
        if not isinstance(t, Tensor) or t.dtype not in INDEX_DTYPES:
            raise TypeError(f'{name}: expected an int64 or int32 tensor, got {describe(t)}')
        if t.dtype != tensors[0].dtype:
            raise TypeError(f'{name}: expected the dtype of ptr ({tensors[0].dtype}), got '
                            f'{describe(t)}')
        if t.dim() != 1:
            raise ValueError(f'{name}: expected a 1-D tensor, got {describe(t)}')
        if t.device != tensors[0].device:
            raise ValueError(f'{name}: expected the device of ptr ({tensors[0].device}), got '
                             f'{describe(t)}')
        out.append(t.contiguous())
    ptr, src, t_ptr, t_col, t_perm = out
    if ptr.shape[0] < 1:
        raise ValueError('ptr: expected N_dst + 1 >= 1 entries, got an empty tensor')
    if t_col is not None and (t_col.shape[0] != src.shape[0] or t_perm.shape[0] != src.shape[0]):
        raise ValueError(f'src, t_col, t_perm: expected one entry per edge each, got lengths '
                         f'{src.shape[0]}, {t_col.shape[0]}, {t_perm.shape[0]}')
    # Value checks only in eager code: while something records, they would branch on data.
    if recording() is None and ptr.numel() and (
            int(ptr[0]) != 0 or int(ptr[-1]) != src.shape[0]
            or (ptr.numel() > 1 and bool((ptr[1:] < ptr[:-1]).any()))):
        raise ValueError(f'ptr: expected row pointers from 0 to E = {src.shape[0]}, '
                         f'non-decreasing')
    return tuple(out)


def _check_range(name: str, index: Tensor, bound: int, bound_name: str) -> None:
    if index.numel() and recording() is None and (
            int(index.min()) < 0 or int(index.max()) >= bound):
        raise ValueError(f'{name}: expected entries in [0, {bound_name} = {bound})')


def check_features(name: str, t: Optional[Tensor], dim: int,
                   like: Optional[Tensor] = None, shape: Optional[tuple] = None,
                   shape_names: str = '', optional: bool = False) -> Optional[Tensor]:
    """A feature tensor's type, dtype and device (those of ``like``) and shape; returned
    contiguous."""
    if t is None and optional:
        return None
    if not isinstance(t, Tensor):
        raise TypeError(f'{name}: expected a tensor, got {describe(t)}')
    if t.layout != torch.strided:
        raise TypeError(f'{name}: expected a dense tensor, got layout {t.layout}')
    if not t.is_floating_point():
        raise TypeError(f'{name}: expected floating point values, got {t.dtype}')
    if like is not None and t.dtype != like.dtype:
        raise TypeError(f'{name}: expected {like.dtype} like the other features, got {t.dtype}')
    if like is not None and t.device != like.device:
        raise ValueError(f'{name}: expected the device of the other features ({like.device}), '
                         f'got {t.device}')
    if t.dim() != dim:
        raise ValueError(f'{name}: expected {dim} dimensions, got shape {list(t.shape)}')
    if shape is not None and tuple(t.shape) != tuple(shape):
        raise ValueError(f'{name}: expected shape [{shape_names}] = {list(shape)}, got '
                         f'{list(t.shape)}')
    return t.contiguous()


def _check_graph_fits(graph, num_src: int, features) -> None:
    ptr, src, t_ptr, t_col, t_perm = graph
    if ptr.device != features[0].device:
        raise ValueError(f'ptr: expected the device of the features ({features[0].device}), '
                         f'got {ptr.device}')
    _check_range('src', src, num_src, 'N_src')
    if t_ptr is None:
        if torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in features):
            raise ValueError('t_ptr, t_col, t_perm: the transposed order is needed when an '
                             'input requires grad (backward reads it), got None')
        return
    if t_ptr.shape[0] != num_src + 1:
        raise ValueError(f't_ptr: expected N_src + 1 = {num_src + 1} entries (N_src from the '
                         f'source features), got {t_ptr.shape[0]}')
    _check_range('t_col', t_col, ptr.shape[0] - 1, 'N_dst')
    _check_range('t_perm', t_perm, src.shape[0], 'E')


def _checked_gat(ptr, src, t_ptr, t_col, t_perm, s_src, s_dst, s_edge, h_src) -> tuple:
    graph = _checked_graph(ptr, src, t_ptr, t_col, t_perm)
    h_src = check_features('h_src', h_src, 3)
    num_src, heads, _ = h_src.shape
    num_dst, num_edges = graph[0].shape[0] - 1, graph[1].shape[0]
    s_src = check_features('s_src', s_src, 2, h_src, (num_src, heads), 'N_src, H')
    s_dst = check_features('s_dst', s_dst, 2, h_src, (num_dst, heads), 'N_dst, H', True)
    s_edge = check_features('s_edge', s_edge, 2, h_src, (num_edges, heads), 'E, H', True)
    _check_graph_fits(graph, num_src, (s_src, s_dst, s_edge, h_src))
    return (*graph, s_src, s_dst, s_edge, h_src)


def _checked_gatv2(ptr, src, t_ptr, t_col, t_perm, x_l, x_r, att, edge_attr, w_edge,
                   h_src) -> tuple:
    graph = _checked_graph(ptr, src, t_ptr, t_col, t_perm)
    x_l = check_features('x_l', x_l, 3)
    num_src, heads, channels = x_l.shape
    num_dst, num_edges = graph[0].shape[0] - 1, graph[1].shape[0]
    x_r = check_features('x_r', x_r, 3, x_l, (num_dst, heads, channels), 'N_dst, H, C')
    att = check_features('att', att, 2, x_l, (heads, channels), 'H, C')
    h_src = check_features('h_src', h_src, 3, x_l, (num_src, heads, channels), 'N_src, H, C')
    if (edge_attr is None) != (w_edge is None):
        raise ValueError('gatv2_attention: edge_attr and w_edge must be given together, got '
                         f'edge_attr={describe(edge_attr)} and w_edge={describe(w_edge)}')
    if edge_attr is not None:
        edge_attr = check_features('edge_attr', edge_attr, 2, x_l)
        if edge_attr.shape[0] != num_edges:
            raise ValueError(f'edge_attr: expected one row per edge ([E={num_edges}, D]), got '
                             f'shape {list(edge_attr.shape)}')
        w_edge = check_features('w_edge', w_edge, 2, x_l,
                                (heads * channels, edge_attr.shape[1]), 'H * C, D')
    _check_graph_fits(graph, num_src, (x_l, x_r, att, edge_attr, w_edge, h_src))
    return (*graph, x_l, x_r, att, edge_attr, w_edge, h_src)

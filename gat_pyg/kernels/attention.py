r"""Fused graph-attention operators: score, softmax, attention dropout and aggregation in one
native kernel, row by row (destination nodes), and a fused backward.

The graph comes destination-sorted (CSR, rows = target nodes) together with its transpose:

* ``ptr`` ``[N_dst + 1]``: row pointers; the edges into target ``i`` are ``ptr[i]:ptr[i+1]``;
* ``src`` ``[E]``: the source of each destination-sorted edge;
* ``t_ptr`` ``[N_src + 1]``: row pointers of the same edges sorted by source;
* ``t_col`` ``[E]``: the destination of each source-sorted edge;
* ``t_perm`` ``[E]``: the destination-sorted position of each source-sorted edge,

all ``int64`` or all ``int32``, on the CPU. Only backward reads the transposed order: pass
``t_ptr = t_col = t_perm = None`` when no input requires a gradient (inference), and a
``ValueError`` says so if one does. ``N_src`` may differ from ``N_dst`` (bipartite
graphs), targets without edges are allowed (their output is 0, their gradients 0), duplicate
edges each count, ``E`` may be 0. Per-edge tensors (``s_edge``, ``edge_attr`` and the returned
``alpha``) are in destination-sorted order.

For a target ``i`` with incoming edges ``e`` from sources ``j = src[e]``, and a head ``h``:

.. math::
    \alpha_{e,h} = \mathrm{softmax}_{e \in \mathrm{row}(i)}\, \mathrm{score}_{e,h}, \qquad
    \mathrm{out}_{i,h} = \sum_{e \in \mathrm{row}(i)} \alpha_{e,h}\,
        \frac{\mathrm{keep}_{e,h}}{1-p}\, h^{src}_{j,h}

(the softmax of :func:`torch_geometric.utils.softmax`, then :func:`torch.nn.functional.dropout`
of the attention, then the weighted sum: PyG's ``GATConv`` / ``GATv2Conv`` message passing).
GAT (Veličković et al., `arXiv 1710.10903 <https://arxiv.org/abs/1710.10903>`_):
``score = LeakyReLU(s_src[j] + s_dst[i] + s_edge[e])``. GATv2 (Brody et al.,
`arXiv 2105.14491 <https://arxiv.org/abs/2105.14491>`_):
``score = att . LeakyReLU(x_l[j] + x_r[i] + W_e edge_attr[e])``, formed per edge on the fly.
No tensor of ``E x H x C`` elements is created in forward or backward; backward saves the
attention before dropout (``[E, H]``) and regenerates the dropout mask from its seed.

Attention dropout keeps each ``(edge, head)`` with probability ``1 - p``, decided by a
counter-based hash of ``(seed, edge position, head)``: the mask does not depend on the thread
count. The seed is drawn from torch's default generator (one ``torch.randint`` per call), so
``torch.manual_seed`` makes training runs repeat bit for bit.

Message dropout (``message_dropout``, the official GAT code's dropout of the projected
features ``seq_fts``) drops the summed values instead: the kernels read
``h_src[j,h,c] * keep[j,h,c] / (1 - p)`` with one mask per ``(source node, head, channel)``,
shared by every edge leaving ``j``, from the same hash with a second seed; backward
regenerates it for ``grad_h_src``. The scores (``s_src``, ``x_l``) see the undropped values.
In formulas, with ``m[j] = keep[j] / (1 - p)``:
``out[i] = sum_e alpha[e] keep_att[e] / (1 - p_att) * (m[j] * h_src[j])``.

Autograd, ``torch.compile`` (fake kernels, no graph break), ``torch.jit.trace`` and
``torch.func`` (``vmap``, ``grad``, ``jacrev``; see :mod:`gat_pyg.kernels.library`) work on
both functions; derivatives are first order only. Accumulation is in float32 for bfloat16
inputs. Results are deterministic: every sum has a fixed order, whatever the thread count.

Errors: ``TypeError`` for a wrong dtype or a non-tensor argument, ``ValueError`` for a wrong
shape or device, each naming the argument; ``RuntimeError`` if the native library is not
available (check :func:`available` first) or for bad index contents (a wrong index would read
out of bounds). The operators check every argument before computing anything; when they refuse
one, the wrappers' Python checks name it (they run only then, or first while ``torch.compile``
traces: see :func:`_checked_call`). Non-contiguous inputs are copied to contiguous ones.
"""
from typing import Optional, Tuple

import torch
from torch import Tensor

from gat_pyg.kernels import library

SUPPORTED_DTYPES = (torch.float32, torch.float64, torch.bfloat16)
INDEX_DTYPES = (torch.int64, torch.int32)


def available() -> bool:
    """Whether the native library is built, importable and loaded (``GAT_PYG_NATIVE=0``
    disables it; :func:`gat_pyg.kernels.load_error` says why it is not available)."""
    return library.loaded()


def supports(tensor: Tensor) -> bool:
    """Whether the native kernels can take features like ``tensor``: the library is loaded and
    ``tensor`` is a dense CPU tensor of float32, float64 or bfloat16."""
    return (available() and isinstance(tensor, Tensor) and tensor.layout == torch.strided
            and tensor.device.type == 'cpu' and tensor.dtype in SUPPORTED_DTYPES)


def gat_attention(ptr: Tensor, src: Tensor, t_ptr: Optional[Tensor], t_col: Optional[Tensor],
                  t_perm: Optional[Tensor], s_src: Tensor, s_dst: Optional[Tensor],
                  s_edge: Optional[Tensor], h_src: Tensor, negative_slope: float = 0.2,
                  dropout: float = 0.0, training: bool = False,
                  message_dropout: float = 0.0) -> Tuple[Tensor, Tensor]:
    r"""GAT attention and aggregation: ``score[e,h] = LeakyReLU(s_src[j,h] + s_dst[i,h] +
    s_edge[e,h])``, softmax over each target's edges, attention dropout, weighted sum of
    ``h_src[j]``.

    With ``W`` the layer's projection and ``a = [a_src || a_dst]`` its attention vector,
    ``s_src[j,h] = <a_src[h], (W x_j)[h]>`` and ``s_dst[i,h] = <a_dst[h], (W x_i)[h]>``:
    GAT's ``a^T [W x_i || W x_j]`` split into two per-node halves (computed once per node).

    Args:
        ptr, src, t_ptr, t_col, t_perm (Tensor): The graph (see the module docstring); the
            last three may be ``None`` when no gradient is needed.
        s_src (Tensor): ``[N_src, H]`` source halves of the score.
        s_dst (Tensor, optional): ``[N_dst, H]`` target halves of the score.
        s_edge (Tensor, optional): ``[E, H]`` edge terms (destination-sorted order).
        h_src (Tensor): ``[N_src, H, C]`` source features to aggregate.
        negative_slope (float): LeakyReLU slope. (default: ``0.2``)
        dropout (float): Attention dropout probability in ``[0, 1]``. (default: ``0.0``)
        training (bool): Apply dropout only when ``True``. (default: ``False``)
        message_dropout (float): Dropout probability of the summed source features ``h_src``
            (see the module docstring); the scores do not see it. (default: ``0.0``)

    Returns:
        ``(out, alpha)``: ``out`` ``[N_dst, H, C]``, and ``alpha`` ``[E, H]``, the attention
        after dropout (what PyG's ``GATConv`` returns with ``return_attention_weights``).
        Features share one dtype: float32, float64 or bfloat16.
    """
    args = (ptr, src, t_ptr, t_col, t_perm, s_src, s_dst, s_edge, h_src)
    p, seed = _dropout(dropout, training)
    p_message, message_seed = _dropout(message_dropout, training, 'message_dropout')
    out, alpha = _checked_call('gat_forward', _checked_gat, args, float(negative_slope), p, seed,
                               p_message, message_seed)
    return out, _dropped(alpha, p, seed)


def gatv2_attention(ptr: Tensor, src: Tensor, t_ptr: Optional[Tensor],
                    t_col: Optional[Tensor], t_perm: Optional[Tensor], x_l: Tensor, x_r: Tensor,
                    att: Tensor, edge_attr: Optional[Tensor], w_edge: Optional[Tensor],
                    h_src: Tensor, negative_slope: float = 0.2, dropout: float = 0.0,
                    training: bool = False,
                    message_dropout: float = 0.0) -> Tuple[Tensor, Tensor]:
    r"""GATv2 attention and aggregation: ``z = x_l[j] + x_r[i] + (edge_attr[e] @ w_edge.T)``
    viewed as ``[H, C]``, ``score[e,h] = sum_c att[h,c] * LeakyReLU(z[h,c])``, softmax over each
    target's edges, attention dropout, weighted sum of ``h_src[j]``.

    ``z`` is formed per edge inside the kernel (never an ``[E, H, C]`` tensor).

    Args:
        ptr, src, t_ptr, t_col, t_perm (Tensor): The graph (see the module docstring); the
            last three may be ``None`` when no gradient is needed.
        x_l (Tensor): ``[N_src, H, C]`` projected sources (PyG's ``lin_l(x_src)``).
        x_r (Tensor): ``[N_dst, H, C]`` projected targets (PyG's ``lin_r(x_dst)``).
        att (Tensor): ``[H, C]`` attention vector (PyG's ``att`` without its leading 1).
        edge_attr (Tensor, optional): ``[E, D]`` edge features (destination-sorted order).
        w_edge (Tensor, optional): ``[H * C, D]`` edge projection (PyG's ``lin_edge.weight``);
            given exactly when ``edge_attr`` is.
        h_src (Tensor): ``[N_src, H, C]`` source features to aggregate: usually ``x_l`` itself.
        negative_slope (float): LeakyReLU slope. (default: ``0.2``)
        dropout (float): Attention dropout probability in ``[0, 1]``. (default: ``0.0``)
        training (bool): Apply dropout only when ``True``. (default: ``False``)
        message_dropout (float): Dropout probability of the summed ``h_src`` (not of ``x_l``,
            which the scores read, even when it is the same tensor). (default: ``0.0``)

    Returns:
        ``(out, alpha)`` as :func:`gat_attention`.
    """
    args = (ptr, src, t_ptr, t_col, t_perm, x_l, x_r, att, edge_attr, w_edge, h_src)
    p, seed = _dropout(dropout, training)
    p_message, message_seed = _dropout(message_dropout, training, 'message_dropout')
    out, alpha = _checked_call('gatv2_forward', _checked_gatv2, args, float(negative_slope), p,
                               seed, p_message, message_seed)
    return out, _dropped(alpha, p, seed)


def feature_dropout(x: Tensor, p: float = 0.5, training: bool = True) -> Tensor:
    r"""Dropout of a dense tensor, ``x * keep / (1 - p)`` with ``keep`` ~ Bernoulli(1 - p) per
    element, from the counter-based hash of the attention kernels (a seed drawn from torch's
    default generator, the element's flat index as counter): backward regenerates the mask
    instead of storing it, and ``torch.manual_seed`` repeats it bit for bit. A native
    replacement for :func:`torch.nn.functional.dropout` (and
    :func:`gat_pyg.nn.functional.dropout_features` on dense inputs) without a random tensor.

    Args:
        x (Tensor): Dense features of any shape, float32, float64 or bfloat16, on the CPU.
        p (float): Probability of zeroing an element, in ``[0, 1]``. (default: ``0.5``)
        training (bool): Apply dropout only when ``True``. (default: ``True``)

    Returns:
        A new tensor of ``x``'s shape and dtype (``x`` itself when nothing is dropped).
    """
    p, seed = _dropout(p, training, 'p')
    if seed is None:
        return x
    _require_loaded()
    if not _validating() or (isinstance(x, Tensor) and x.layout == torch.strided and
                             x.device.type == 'cpu' and x.dtype in SUPPORTED_DTYPES):
        return _call('feature_dropout', x.contiguous(), p, seed)
    if not isinstance(x, Tensor):
        raise TypeError(f'x: expected a tensor, got {_describe(x)}')
    if x.layout != torch.strided:
        raise TypeError(f'x: expected a dense tensor, got layout {x.layout} (sparse features: '
                        f'gat_pyg.nn.functional.dropout_features)')
    if x.dtype not in SUPPORTED_DTYPES:
        raise TypeError(f'x: the native kernels take float32, float64 or bfloat16, got '
                        f'{x.dtype}')
    raise ValueError(f'x: the native kernels run on the CPU, got {x.device}')


def head_scores(x: Tensor, att: Tensor) -> Tensor:
    r"""GAT's per-node, per-head scores ``s[n, h] = sum_c x[n, h, c] * att[h, c]``: the
    :math:`\mathbf{a}_s^{\top}\mathbf{\Theta}_s\mathbf{x}_j` and
    :math:`\mathbf{a}_t^{\top}\mathbf{\Theta}_t\mathbf{x}_i` halves of the GAT score
    (Veličković et al. 2018; PyG's ``(x * att_src).sum(-1)``), in one native pass, and its
    backward in one more. Differentiable in ``x`` and ``att`` (first derivatives); the sum over
    nodes of ``att``'s gradient has a fixed order whatever the thread count.

    Args:
        x (Tensor): ``[N, H, C]`` projected node features, float32, float64 or bfloat16, on the
            CPU (bfloat16 accumulates in float32).
        att (Tensor): ``[H, C]`` attention vector of ``x``'s dtype.

    Returns:
        ``[N, H]`` scores.
    """
    _require_loaded()
    try:
        return _call('head_scores', x.contiguous(), att.contiguous())
    except (RuntimeError, TypeError, AttributeError):
        x = _check_features('x', x, 3)
        _check_features('att', att, 2, x.dtype, tuple(x.shape[1:]), 'H, C')
        raise


# --- helpers ---------------------------------------------------------------------------------

def _require_loaded() -> None:
    if not library.loaded():
        raise RuntimeError(f'gat_pyg native kernels are not available ({library.load_error()}); '
                           f'check gat_pyg.kernels.available() and use the pure-torch path')


def _checked_gat(ptr, src, t_ptr, t_col, t_perm, s_src, s_dst, s_edge, h_src) -> tuple:
    """gat_attention's tensors checked (raising an error that names the argument) and made
    contiguous."""
    graph = _check_graph(ptr, src, t_ptr, t_col, t_perm)
    h_src = _check_features('h_src', h_src, 3)
    dtype, (num_src, heads, _) = h_src.dtype, h_src.shape
    num_dst, num_edges = ptr.shape[0] - 1, src.shape[0]
    s_src = _check_features('s_src', s_src, 2, dtype, (num_src, heads), 'N_src, H')
    s_dst = _check_features('s_dst', s_dst, 2, dtype, (num_dst, heads), 'N_dst, H', True)
    s_edge = _check_features('s_edge', s_edge, 2, dtype, (num_edges, heads), 'E, H', True)
    _check_transpose(graph, num_src, (s_src, s_dst, s_edge, h_src))
    return (*graph, s_src, s_dst, s_edge, h_src)


def _checked_gatv2(ptr, src, t_ptr, t_col, t_perm, x_l, x_r, att, edge_attr, w_edge,
                   h_src) -> tuple:
    """gatv2_attention's tensors checked and made contiguous, as :func:`_checked_gat`."""
    graph = _check_graph(ptr, src, t_ptr, t_col, t_perm)
    x_l = _check_features('x_l', x_l, 3)
    dtype, (num_src, heads, channels) = x_l.dtype, x_l.shape
    num_dst, num_edges = ptr.shape[0] - 1, src.shape[0]
    x_r = _check_features('x_r', x_r, 3, dtype, (num_dst, heads, channels), 'N_dst, H, C')
    att = _check_features('att', att, 2, dtype, (heads, channels), 'H, C')
    h_src = _check_features('h_src', h_src, 3, dtype, (num_src, heads, channels), 'N_src, H, C')
    if _validating() and (edge_attr is None) != (w_edge is None):
        raise ValueError('gatv2_attention: edge_attr and w_edge must be given together, got '
                         f'edge_attr={_describe(edge_attr)} and w_edge={_describe(w_edge)}')
    if edge_attr is not None:
        edge_attr = _check_features('edge_attr', edge_attr, 2, dtype)
        if _validating() and edge_attr.shape[0] != num_edges:
            raise ValueError(f'edge_attr: expected one row per edge ([E={num_edges}, D]), got '
                             f'shape {list(edge_attr.shape)}')
        w_edge = _check_features('w_edge', w_edge, 2, dtype,
                                 (heads * channels, edge_attr.shape[1]), 'H * C, D')
    _check_transpose(graph, num_src, (x_l, x_r, att, edge_attr, w_edge, h_src))
    return (*graph, x_l, x_r, att, edge_attr, w_edge, h_src)


def _checked_call(name: str, check, tensors: tuple, *scalars):
    """``torch.ops.gat_pyg.<name>(*tensors, *scalars)`` with the arguments checked by
    ``check``, which raises an error naming the argument at fault.

    Checking every argument in Python costs more than the rest of a small call (~15 us), and
    the operator checks them all again anyway. So in eager mode the call goes first, with only
    the check that the operator leaves to backward (the transposed order, when a gradient will
    be needed); if the operator refuses its arguments, the Python checks run then and raise
    their error instead (or, if they find nothing, the operator's). While torch.compile traces
    (no operator runs) and under torch.func transforms, the checks run first, as errors must
    come from the trace."""
    _require_loaded()
    if torch.compiler.is_compiling() or torch._C._are_functorch_transforms_active():
        return _call(name, *check(*tensors), *scalars)
    if tensors[2] is None and torch.is_grad_enabled() and any(
            isinstance(t, Tensor) and t.requires_grad for t in tensors[5:]):
        check(*tensors)   # raises: the transposed order is needed
    try:
        return _call(name, *(t.contiguous() if isinstance(t, Tensor) else t for t in tensors),
                     *scalars)
    except (RuntimeError, TypeError):
        check(*tensors)
        raise


_OPS = {}


def _call(name: str, *args):
    """Calls ``torch.ops.gat_pyg.<name>``; under a torch.func transform, through its
    autograd.Function twin (see :mod:`gat_pyg.kernels.library`)."""
    if torch._C._are_functorch_transforms_active():
        return library.TRANSFORMABLE[name].apply(*args)
    op = _OPS.get(name)
    if op is None:
        op = _OPS[name] = getattr(torch.ops.gat_pyg, name).default
    return op(*args)


def _dropout(dropout: float, training: bool,
             name: str = 'dropout') -> Tuple[float, Optional[Tensor]]:
    """The dropout rate to apply and, if any, a fresh seed from torch's default generator."""
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)):
        raise TypeError(f'{name}: expected a float in [0, 1], got {type(dropout).__name__}')
    if not 0.0 <= dropout <= 1.0:
        raise ValueError(f'{name}: expected a float in [0, 1], got {dropout}')
    if not training or dropout == 0.0:
        return 0.0, None
    return float(dropout), torch.randint(0, 2**62, (), dtype=torch.int64)


def _dropped(alpha: Tensor, p: float, seed: Optional[Tensor]) -> Tensor:
    return alpha if seed is None else _call('attention_dropout', alpha, p, seed)


def _describe(t) -> str:
    if isinstance(t, Tensor):
        return f'a {t.dtype} tensor of shape {list(t.shape)} on {t.device}'
    return 'None' if t is None else type(t).__name__


def _validating() -> bool:
    """False while torch.jit.trace records: its sizes are tensors there, and comparing them
    would only bake constants into the trace (with a warning each); the native checks remain."""
    return not torch.jit.is_tracing()


def _check_graph(*tensors: Optional[Tensor]) -> Tuple[Optional[Tensor], ...]:
    names = ('ptr', 'src', 't_ptr', 't_col', 't_perm')
    if not _validating():
        return tuple(None if t is None else t.contiguous() for t in tensors)
    transposed = tensors[2:]
    if any(t is None for t in transposed) and not all(t is None for t in transposed):
        raise ValueError('t_ptr, t_col, t_perm: give all three (the transposed order) or none, '
                         'got ' + ', '.join(_describe(t) for t in transposed))
    out = []
    for name, t in zip(names, tensors):
        if t is None and name.startswith('t_'):
            out.append(None)
            continue
        if not isinstance(t, Tensor):
            raise TypeError(f'{name}: expected an int64 or int32 tensor, got {_describe(t)}')
        if t.dtype not in INDEX_DTYPES:
            raise TypeError(f'{name}: expected an int64 or int32 tensor, got {_describe(t)}')
        if t.dtype != tensors[0].dtype:
            raise TypeError(f'{name}: expected the dtype of ptr ({tensors[0].dtype}), got '
                            f'{_describe(t)}')
        if t.dim() != 1:
            raise ValueError(f'{name}: expected a 1-D tensor, got {_describe(t)}')
        if t.device.type != 'cpu':
            raise ValueError(f'{name}: the native kernels run on the CPU, got {_describe(t)}')
        out.append(t.contiguous())
    ptr, src, _, t_col, t_perm = out
    if ptr.shape[0] < 1:
        raise ValueError('ptr: expected N_dst + 1 >= 1 entries, got an empty tensor')
    if t_col is not None and (t_col.shape[0] != src.shape[0] or t_perm.shape[0] != src.shape[0]):
        raise ValueError(f'src, t_col, t_perm: expected one entry per edge each, got lengths '
                         f'{src.shape[0]}, {t_col.shape[0]}, {t_perm.shape[0]}')
    return tuple(out)


def _check_transpose(graph: Tuple[Optional[Tensor], ...], num_src: int, features) -> None:
    """t_ptr fits the source count; the transposed order is there if backward may run."""
    if not _validating():
        return
    t_ptr = graph[2]
    if t_ptr is None:
        if torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in features):
            raise ValueError('t_ptr, t_col, t_perm: the transposed order is needed when an '
                             'input requires grad (backward reads it), got None')
    elif t_ptr.shape[0] != num_src + 1:
        raise ValueError(f't_ptr: expected N_src + 1 = {num_src + 1} entries (N_src from the '
                         f'source features), got {t_ptr.shape[0]}')


def _check_features(name: str, t: Optional[Tensor], dim: int,
                    dtype: Optional[torch.dtype] = None, shape: Optional[tuple] = None,
                    shape_names: str = '', optional: bool = False) -> Optional[Tensor]:
    """Checks a feature tensor's type, dtype, device and shape; returns it contiguous."""
    if t is None and optional:
        return None
    if not _validating():
        return t.contiguous()
    if not isinstance(t, Tensor):
        raise TypeError(f'{name}: expected a tensor, got {_describe(t)}')
    if t.layout != torch.strided:
        raise TypeError(f'{name}: expected a dense tensor, got layout {t.layout}')
    if t.dtype not in SUPPORTED_DTYPES:
        raise TypeError(f'{name}: the native kernels take float32, float64 or bfloat16, got '
                        f'{t.dtype} (gat_pyg.kernels.supports() tells in advance)')
    if dtype is not None and t.dtype != dtype:
        raise TypeError(f'{name}: expected {dtype} like the other features, got {t.dtype}')
    if t.device.type != 'cpu':
        raise ValueError(f'{name}: the native kernels run on the CPU, got {t.device}')
    if t.dim() != dim:
        raise ValueError(f'{name}: expected {dim} dimensions, got shape {list(t.shape)}')
    if shape is not None and tuple(t.shape) != tuple(shape):
        raise ValueError(f'{name}: expected shape [{shape_names}] = {list(shape)}, got '
                         f'{list(t.shape)}')
    return t.contiguous()

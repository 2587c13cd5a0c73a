"""Loads the native library and registers what torch needs around its operators.

The operators themselves (schemas, CPU kernels and their autograd) are defined in C++
(``csrc/ops.cpp``, ``csrc/autograd.cpp``) under the ``gat_pyg`` namespace: each forward op's
backward is its ``*_backward`` op (first derivatives only), ``attention_dropout`` is linear and
its own backward, ``sparse_linear``'s and ``head_scores``' are ``sparse_linear_backward`` and
``head_scores_backward``, ``sparse_dropout`` has none.
Autograd lives in C++ because the same rules registered from Python
(``torch.library.register_autograd``) cost about 70 us per call. Here, once the library is
loaded:

* ``torch.library.register_fake``: shapes without computing, for ``torch.compile`` / export;
* ``torch.library.register_vmap``: every op but ``sparse_dropout`` is mapped by a loop over the
  batch (one kernel call per batch element, results stacked);
* ``transformable(...)``: the same forward/backward as ``torch.autograd.Function`` classes with
  ``setup_context`` and a generated vmap rule, for ``torch.func`` transforms, which support
  neither C++ autograd functions nor ``register_autograd``'s (no ``setup_context``); the
  wrappers in ``attention.py`` use these classes while a ``torch.func`` transform is active.

Setting the environment variable ``GAT_PYG_NATIVE=0`` skips loading the library (the pure-torch
paths are then used everywhere); whether it loaded is logged once at debug level on the
``gat_pyg.kernels`` logger.
"""
import logging
import os
from typing import Optional

import torch

log = logging.getLogger('gat_pyg.kernels')

_LOAD_ERROR: Optional[str] = None


def _load() -> Optional[str]:
    """Loads the library; returns why it is unavailable, or None when it loaded."""
    if os.environ.get('GAT_PYG_NATIVE') == '0':
        return 'disabled by GAT_PYG_NATIVE=0'
    try:
        from gat_pyg.kernels import _C   # noqa: F401  (loading registers the operators)
    except (ImportError, OSError, RuntimeError) as error:
        # ImportError: not built. OSError / RuntimeError: built against another torch, or the
        # namespace is already registered by another copy of the library.
        return f'{type(error).__name__}: {error}'
    return None


def loaded() -> bool:
    return _LOAD_ERROR is None


def load_error() -> Optional[str]:
    return _LOAD_ERROR


def instruction_set() -> Optional[str]:
    """The instruction set the native kernels run with ('base', 'avx2' or 'avx512'), or None
    when the library is not loaded."""
    if not loaded():
        return None
    from gat_pyg.kernels import _C
    return _C.instruction_set()


# --- registrations (run only when the library loaded) ---------------------------------------

def _empty_or(want: bool, like: torch.Tensor, *sizes) -> torch.Tensor:
    """The gradient a backward op returns: the full shape if wanted, else an empty tensor."""
    return like.new_empty(sizes) if want else like.new_empty(0)


def _gat_forward_fake(ptr, src, t_ptr, t_col, t_perm, s_src, s_dst, s_edge, h_src,
                      negative_slope, dropout, seed, message_dropout=0.0, message_seed=None):
    heads, channels = h_src.shape[1], h_src.shape[2]
    return (h_src.new_empty(ptr.shape[0] - 1, heads, channels),
            h_src.new_empty(src.shape[0], heads))


def _gat_backward_fake(grad_out, grad_alpha, ptr, src, t_ptr, t_col, t_perm, s_src, s_dst,
                       s_edge, h_src, alpha, negative_slope, dropout, seed, output_mask,
                       message_dropout=0.0, message_seed=None):
    num_src, heads, channels = h_src.shape
    return (_empty_or(output_mask[0], h_src, num_src, heads),
            _empty_or(output_mask[1] and s_dst is not None, h_src, ptr.shape[0] - 1, heads),
            _empty_or(output_mask[2] and s_edge is not None, h_src, src.shape[0], heads),
            _empty_or(output_mask[3], h_src, num_src, heads, channels))


def _gatv2_forward_fake(ptr, src, t_ptr, t_col, t_perm, x_l, x_r, att, edge_attr, w_edge, h_src,
                        negative_slope, dropout, seed, message_dropout=0.0, message_seed=None):
    heads, channels = h_src.shape[1], h_src.shape[2]
    return (h_src.new_empty(ptr.shape[0] - 1, heads, channels),
            h_src.new_empty(src.shape[0], heads))


def _gatv2_backward_fake(grad_out, grad_alpha, ptr, src, t_ptr, t_col, t_perm, x_l, x_r, att,
                         edge_attr, w_edge, h_src, alpha, negative_slope, dropout, seed,
                         output_mask, message_dropout=0.0, message_seed=None,
                         merge_h_src=False):
    num_src, heads, channels = x_l.shape
    edges = edge_attr is not None
    edge_dim = edge_attr.shape[1] if edges else 0
    if merge_h_src and output_mask[0] and output_mask[5] and message_dropout == 0.0:
        # One buffer for both gradients: returned as grad_x_l, grad_h_src empty.
        output_mask = list(output_mask[:5]) + [False]
    return (_empty_or(output_mask[0], x_l, num_src, heads, channels),
            _empty_or(output_mask[1], x_l, ptr.shape[0] - 1, heads, channels),
            _empty_or(output_mask[2], x_l, heads, channels),
            _empty_or(output_mask[3] and edges, x_l, src.shape[0], edge_dim),
            _empty_or(output_mask[4] and edges, x_l, heads * channels, edge_dim),
            _empty_or(output_mask[5], x_l, num_src, heads, channels))


def _dropout_fake(x, dropout, seed):
    return torch.empty_like(x, memory_format=torch.contiguous_format)


def _sparse_linear_fake(row, col, values, weight, num_rows):
    return values.new_empty(num_rows, weight.shape[0])


def _sparse_linear_backward_fake(grad_out, row, col, values, weight, output_mask):
    return (_empty_or(output_mask[0], values, values.shape[0]),
            _empty_or(output_mask[1], weight, *weight.shape))


def _head_scores_fake(x, att):
    return x.new_empty(x.shape[0], x.shape[1])


def _head_scores_backward_fake(grad, x, att, output_mask):
    return _empty_or(output_mask[0], x, *x.shape), _empty_or(output_mask[1], att, *att.shape)


def _sparse_dropout_fake(indices, values, dropout, seed):
    kept = torch.library.get_ctx().new_dynamic_size()   # how many entries the mask keeps
    return indices.new_empty(indices.shape[0], kept), values.new_empty(kept, *values.shape[1:])


def _contiguous(t: Optional[torch.Tensor]) -> Optional[torch.Tensor]:
    return None if t is None else t.contiguous()


def _grads(grads, mask):
    return tuple(g if want else None for g, want in zip(grads, mask))


# Forward inputs: ptr, src, t_ptr, t_col, t_perm, <features ...>, negative_slope, dropout, seed,
# message_dropout, message_seed. Saved for backward: the graph, the features, the (pre-dropout)
# alpha and the seeds, i.e. O(E + N*H*C) already held by the caller plus alpha [E, H]; the
# dropout masks are regenerated. (The same as the C++ autograd in csrc/autograd.cpp.)
_GRAPH = 5
_SCALARS = 5


def _setup_context(ctx, inputs, output):
    ctx.save_for_backward(*inputs[:-_SCALARS], output[1], inputs[-3], inputs[-1])
    ctx.negative_slope, ctx.dropout, ctx.message_dropout = inputs[-5], inputs[-4], inputs[-2]
    # An unused alpha would otherwise get an [E, H] tensor of zeros as its gradient.
    ctx.set_materialize_grads(False)


def _saved(ctx):
    *tensors, alpha, seed, message_seed = ctx.saved_tensors
    if tensors[2] is None:
        raise RuntimeError('gat_pyg: backward needs the transposed order (t_ptr, t_col, '
                           't_perm); pass it to the forward call when gradients are needed')
    return tensors, alpha, seed, message_seed


def _upstream(grad_out, tensors):
    """grad_out, contiguous; zeros if only alpha was used (h_src is the last feature saved)."""
    if grad_out is None:
        ptr, h_src = tensors[0], tensors[-1]
        return h_src.new_zeros(ptr.shape[0] - 1, *h_src.shape[1:])
    return grad_out.contiguous()


def _gat_backward(ctx, grad_out, grad_alpha):
    tensors, alpha, seed, message_seed = _saved(ctx)
    s_dst, s_edge = tensors[6], tensors[7]
    needs = ctx.needs_input_grad
    mask = [needs[5], needs[6] and s_dst is not None, needs[7] and s_edge is not None, needs[8]]
    grads = torch.ops.gat_pyg.gat_backward(
        _upstream(grad_out, tensors), _contiguous(grad_alpha), *tensors, alpha,
        ctx.negative_slope, ctx.dropout, seed, mask, ctx.message_dropout, message_seed)
    return (None, ) * _GRAPH + _grads(grads, mask) + (None, ) * _SCALARS


def _gatv2_backward(ctx, grad_out, grad_alpha):
    tensors, alpha, seed, message_seed = _saved(ctx)
    edge_attr = tensors[8]
    needs = ctx.needs_input_grad
    mask = [needs[5], needs[6], needs[7], needs[8] and edge_attr is not None,
            needs[9] and edge_attr is not None, needs[10]]
    grads = torch.ops.gat_pyg.gatv2_backward(
        _upstream(grad_out, tensors), _contiguous(grad_alpha), *tensors, alpha,
        ctx.negative_slope, ctx.dropout, seed, mask, ctx.message_dropout, message_seed)
    return (None, ) * _GRAPH + _grads(grads, mask) + (None, ) * _SCALARS


def _dropout_setup_context(ctx, inputs, output):
    ctx.save_for_backward(inputs[2])
    ctx.dropout = inputs[1]


def _dropout_backward_of(name: str):
    def backward(ctx, grad):
        (seed, ) = ctx.saved_tensors
        op = getattr(torch.ops.gat_pyg, name)
        return op(grad.contiguous(), ctx.dropout, seed), None, None
    return backward


def _sparse_linear_setup_context(ctx, inputs, output):
    ctx.save_for_backward(*inputs[:4])


def _sparse_linear_backward(ctx, grad):
    row, col, values, weight = ctx.saved_tensors
    mask = [ctx.needs_input_grad[2], ctx.needs_input_grad[3]]
    grads = torch.ops.gat_pyg.sparse_linear_backward(grad.contiguous(), row, col, values,
                                                     weight, mask)
    return (None, None) + _grads(grads, mask) + (None, )


def _head_scores_setup_context(ctx, inputs, output):
    ctx.save_for_backward(*inputs)


def _head_scores_backward(ctx, grad):
    x, att = ctx.saved_tensors
    mask = list(ctx.needs_input_grad[:2])
    grads = torch.ops.gat_pyg.head_scores_backward(grad.contiguous(), x, att, mask)
    return _grads(grads, mask)


def _vmap_by_loop(op):
    """A vmap rule that calls ``op`` once per batch element and stacks the results.

    Simple and exact for every argument that may be batched (features, graph, seed); a batch
    of B costs B kernel calls. Batched slices are made contiguous, as the kernels require.
    (``in_dims`` mirrors the arguments: a list argument such as ``output_mask`` gets a list.)
    """
    def rule(info, in_dims, *args):
        def sample(b):
            return (a.select(d, b).contiguous() if isinstance(a, torch.Tensor) and d is not None
                    else a for a, d in zip(args, in_dims))

        results = [op(*sample(b)) for b in range(info.batch_size)]
        if isinstance(results[0], torch.Tensor):
            return torch.stack(results), 0
        outputs = tuple(torch.stack(parts) for parts in zip(*results))
        return outputs, (0, ) * len(outputs)
    return rule


# op name -> (fake, setup_context, backward); the backward ops have no autograd of their own.
_REGISTRY = {
    'gat_forward': (_gat_forward_fake, _setup_context, _gat_backward),
    'gatv2_forward': (_gatv2_forward_fake, _setup_context, _gatv2_backward),
    'attention_dropout': (_dropout_fake, _dropout_setup_context,
                          _dropout_backward_of('attention_dropout')),
    'feature_dropout': (_dropout_fake, _dropout_setup_context,
                        _dropout_backward_of('feature_dropout')),
    'sparse_linear': (_sparse_linear_fake, _sparse_linear_setup_context,
                      _sparse_linear_backward),
    'head_scores': (_head_scores_fake, _head_scores_setup_context, _head_scores_backward),
    'gat_backward': (_gat_backward_fake, None, None),
    'gatv2_backward': (_gatv2_backward_fake, None, None),
    'sparse_linear_backward': (_sparse_linear_backward_fake, None, None),
    'head_scores_backward': (_head_scores_backward_fake, None, None),
    # Not differentiable (the wrapper takes values that need no gradient).
    'sparse_dropout': (_sparse_dropout_fake, None, None),
}
# Ops without a vmap rule: sparse_dropout keeps a different number of entries per batch
# element, so its results cannot be stacked (its wrapper is not used under transforms).
_NO_VMAP = {'sparse_dropout'}


def _transformable(name: str, setup_context, backward) -> type:
    """``torch.ops.gat_pyg.<name>`` as an autograd.Function usable under torch.func transforms."""
    op = getattr(torch.ops.gat_pyg, name).default

    def forward(*args):
        return op(*args)

    return type(f'Transformable_{name}', (torch.autograd.Function, ), {
        'generate_vmap_rule': True,
        'forward': staticmethod(forward),
        'setup_context': staticmethod(setup_context),
        'backward': staticmethod(backward),
    })


TRANSFORMABLE = {}


def _register() -> None:
    for name, (fake, setup_context, backward) in _REGISTRY.items():
        qualname = f'gat_pyg::{name}'
        torch.library.register_fake(qualname, fake)
        op = getattr(torch.ops.gat_pyg, name).default
        if name not in _NO_VMAP:
            torch.library.register_vmap(qualname, _vmap_by_loop(op))
        if backward is not None:
            TRANSFORMABLE[name] = _transformable(name, setup_context, backward)


_LOAD_ERROR = _load()
if _LOAD_ERROR is None:
    _register()
    log.debug('gat_pyg native kernels loaded (torch.ops.gat_pyg)')
else:
    log.debug('gat_pyg native kernels not loaded: %s', _LOAD_ERROR)

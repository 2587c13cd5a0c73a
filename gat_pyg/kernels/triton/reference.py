r"""The plain meaning of every operator the Triton kernels implement, in pure torch (no Triton,
no native library), with the operators' exact arguments and results.

It is written the way PyG's message passing computes GAT / GATv2 (gather per edge, LeakyReLU,
softmax over each target's edges, dropout, scatter-add) and builds ``E x H x C`` tensors on
purpose: it is the reference the kernels are tested against (here against the C++ kernels too,
and on a GPU by ``benchmarks/gpu.py``), for small graphs only. Backward functions differentiate
the forward formula with autograd. The dropout masks are a NumPy replay of the hash
(:func:`keep_single`, :func:`keep_paired`; computed on the CPU, then moved to the device).
"""
from typing import Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _mix(z: np.ndarray) -> np.ndarray:
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def _threshold(p: float) -> int:
    return (1 << 32) if p >= 1.0 else int(np.floor(p * 4294967296.0 + 0.5))


def _base(seed) -> np.uint64:
    value = int(seed.item()) if isinstance(seed, Tensor) else int(seed)
    with np.errstate(over='ignore'):
        return _mix(np.array([value & ((1 << 64) - 1)], dtype=np.uint64))[0]


def keep_single(seed, n: int, p: float) -> np.ndarray:
    """Attention dropout's mask over counters 0..n-1 (bool ``[n]``): the upper 32 bits of the
    counter's SplitMix64 word against ``round(p * 2**32)``."""
    if p <= 0.0:
        return np.ones(n, dtype=bool)
    with np.errstate(over='ignore'):
        counters = np.arange(n, dtype=np.uint64) + np.uint64(1)
        words = _mix(_base(seed) + counters * _GOLDEN)
    return (words >> np.uint64(32)) >= np.uint64(min(_threshold(p), 1 << 32))


def keep_paired(seed, n: int, p: float) -> np.ndarray:
    """Message / feature dropout's mask over flat indices 0..n-1: element k takes the low
    (k even) or high (k odd) 32 bits of the word of k // 2."""
    if p <= 0.0:
        return np.ones(n, dtype=bool)
    with np.errstate(over='ignore'):
        pairs = np.arange((n + 1) // 2, dtype=np.uint64) + np.uint64(1)
        words = _mix(_base(seed) + pairs * _GOLDEN)
    bits = np.empty(2 * len(words), dtype=np.uint64)
    bits[0::2] = words & np.uint64(0xFFFFFFFF)
    bits[1::2] = words >> np.uint64(32)
    return bits[:n] >= np.uint64(min(_threshold(p), 1 << 32))


def _scale(p: float) -> float:
    return 0.0 if p >= 1.0 or _threshold(p) > 0xFFFFFFFF else 1.0 / (1.0 - p)


def _drop(x: Tensor, p: float, seed, paired: bool) -> Tensor:
    if p <= 0.0:
        return x
    keep = (keep_paired if paired else keep_single)(seed, x.numel(), p)
    keep = torch.from_numpy(keep).to(x.device).view(x.shape)
    return x * _scale(p) * keep.to(x.dtype)


def attention_dropout(alpha: Tensor, dropout: float, seed) -> Tensor:
    """``alpha * keep / (1 - p)``, counter = flat index of ``[E, H]`` ``alpha``."""
    return _drop(alpha.contiguous(), dropout, seed, paired=False).clone()


def feature_dropout(x: Tensor, dropout: float, seed) -> Tensor:
    """``x * keep / (1 - p)``, the paired mask at ``x``'s flat index."""
    return _drop(x.contiguous(), dropout, seed, paired=True).clone()


def head_scores(x: Tensor, att: Tensor) -> Tensor:
    """``s[n, h] = sum_c x[n, h, c] att[h, c]``."""
    return (x * att.unsqueeze(0)).sum(-1)


def head_scores_backward(grad: Tensor, x: Tensor, att: Tensor,
                         output_mask: Sequence[bool]) -> Tuple[Tensor, Tensor]:
    gx = grad.unsqueeze(-1) * att.unsqueeze(0) if output_mask[0] else x.new_empty(0)
    ga = (grad.unsqueeze(-1) * x).sum(0) if output_mask[1] else att.new_empty(0)
    return gx, ga


def _targets(ptr: Tensor) -> Tensor:
    counts = (ptr[1:] - ptr[:-1]).long()
    return torch.repeat_interleave(torch.arange(ptr.numel() - 1, device=ptr.device), counts)


def _aggregate(ptr: Tensor, src: Tensor, score: Tensor, values: Tensor, dropout: float,
               seed) -> Tuple[Tensor, Tensor]:
    """Softmax of ``score`` [E, H] over each target's edges (PyG's ``softmax``, without its
    1e-16), attention dropout, and the weighted sum of ``values[src]``."""
    num_dst = ptr.numel() - 1
    dst = _targets(ptr)
    heads = score.shape[1]
    if score.numel():
        row_max = score.new_full((num_dst, heads), float('-inf')).scatter_reduce(
            0, dst.unsqueeze(-1).expand_as(score), score, 'amax', include_self=True)
        row_max = torch.where(torch.isinf(row_max), torch.zeros_like(row_max), row_max)
        numer = (score - row_max[dst].detach()).exp()
        total = score.new_zeros(num_dst, heads).index_add(0, dst, numer)
        alpha = numer / total[dst]
    else:
        alpha = score
    kept = _drop(alpha, dropout, seed, paired=False)
    out = values.new_zeros(num_dst, *values.shape[1:])
    out = out.index_add(0, dst, kept.unsqueeze(-1) * values[src.long()])
    return out, alpha


def gat_forward(ptr, src, t_ptr, t_col, t_perm, s_src, s_dst, s_edge, h_src, negative_slope,
                dropout, seed, message_dropout=0.0, message_seed=None):
    """``(out, alpha)`` of GAT (arXiv 1710.10903): ``score = LeakyReLU(s_src[j] + s_dst[i] +
    s_edge[e])``, alpha before dropout."""
    dst = _targets(ptr)
    raw = s_src[src.long()]
    if s_dst is not None:
        raw = raw + s_dst[dst]
    if s_edge is not None:
        raw = raw + s_edge
    values = _drop(h_src, message_dropout, message_seed, paired=True)
    return _aggregate(ptr, src, F.leaky_relu(raw, negative_slope), values, dropout, seed)


def gatv2_forward(ptr, src, t_ptr, t_col, t_perm, x_l, x_r, att, edge_attr, w_edge, h_src,
                  negative_slope, dropout, seed, message_dropout=0.0, message_seed=None):
    """``(out, alpha)`` of GATv2 (arXiv 2105.14491): ``score = att . LeakyReLU(x_l[j] + x_r[i]
    + W_e edge_attr[e])``."""
    dst = _targets(ptr)
    z = x_r[dst] + x_l[src.long()]
    if edge_attr is not None:
        z = z + (edge_attr @ w_edge.t()).view(-1, *x_l.shape[1:])
    score = (F.leaky_relu(z, negative_slope) * att).sum(-1)
    values = _drop(h_src, message_dropout, message_seed, paired=True)
    return _aggregate(ptr, src, score, values, dropout, seed)


def _grads(forward, inputs: Sequence[Optional[Tensor]], grad_out: Tensor,
           grad_alpha: Optional[Tensor], wanted: Sequence[bool]) -> list:
    leaves = [t.detach().requires_grad_(w) if t is not None else None
              for t, w in zip(inputs, wanted)]
    with torch.enable_grad():
        out, alpha = forward(leaves)
        loss = (out * grad_out).sum()
        if grad_alpha is not None:
            loss = loss + (alpha * grad_alpha).sum()
        targets = [t for t, w in zip(leaves, wanted) if t is not None and w]
        got = iter(torch.autograd.grad(loss, targets, allow_unused=True) if targets else [])
    result = []
    for t, w in zip(leaves, wanted):
        if t is None or not w:
            result.append(None)
        else:
            g = next(got)
            result.append(torch.zeros_like(t) if g is None else g)
    return result


def gat_backward(grad_out, grad_alpha, ptr, src, t_ptr, t_col, t_perm, s_src, s_dst, s_edge,
                 h_src, alpha, negative_slope, dropout, seed, output_mask, message_dropout=0.0,
                 message_seed=None):
    """Autograd of :func:`gat_forward`; empty tensors where not wanted (or no input)."""
    def forward(x):
        return gat_forward(ptr, src, None, None, None, *x, negative_slope, dropout, seed,
                           message_dropout, message_seed)
    grads = _grads(forward, (s_src, s_dst, s_edge, h_src), grad_out, grad_alpha, output_mask)
    return tuple(g if g is not None else h_src.new_empty(0) for g in grads)


def gatv2_backward(grad_out, grad_alpha, ptr, src, t_ptr, t_col, t_perm, x_l, x_r, att,
                   edge_attr, w_edge, h_src, alpha, negative_slope, dropout, seed, output_mask,
                   message_dropout=0.0, message_seed=None, merge_h_src=False):
    """Autograd of :func:`gatv2_forward`, ``x_l`` and ``h_src`` as separate inputs; with
    ``merge_h_src`` (both wanted, no message dropout) their sum comes back as ``grad_x_l``."""
    def forward(x):
        return gatv2_forward(ptr, src, None, None, None, *x[:5], x[5], negative_slope, dropout,
                             seed, message_dropout, message_seed)
    grads = _grads(forward, (x_l, x_r, att, edge_attr, w_edge, h_src), grad_out, grad_alpha,
                   output_mask)
    grads = [g if g is not None else x_l.new_empty(0) for g in grads]
    if merge_h_src and output_mask[0] and output_mask[5] and message_dropout == 0.0:
        grads[0], grads[5] = grads[0] + grads[5], x_l.new_empty(0)
    return tuple(grads)

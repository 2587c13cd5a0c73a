"""Helpers shared by the layer tests: graph builders, layer pairs with copied weights, input
forms, and a plain NumPy implementation of the GAT / GATv2 formulas.

Imported by the test modules of this folder as ``reference`` (pytest puts the folder of a test
module without ``__init__.py`` on ``sys.path``).
"""
import os
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import pytest
import torch
import torch_geometric.typing
import torch_geometric.nn as pyg_nn
from torch import Tensor
from torch_geometric.utils import to_torch_coo_tensor, to_torch_csc_tensor, to_torch_csr_tensor

import gat_pyg

OURS = {'gat': gat_pyg.GATConv, 'gatv2': gat_pyg.GATv2Conv}
THEIRS = {'gat': pyg_nn.GATConv, 'gatv2': pyg_nn.GATv2Conv}
KINDS = tuple(OURS)

# Every test taking ``fast_path`` runs each implementation (see tests/nn/conftest.py).
FAST = pytest.mark.parametrize('fast_path', ['plain', 'csr', 'native'], indirect=True)

# Tolerances of the issue: float32 outputs / attention, float32 gradients, fast vs plain path.
OUT_TOL = dict(atol=1e-6, rtol=1e-5)
GRAD_TOL = dict(atol=1e-6, rtol=1e-5)
PATH_TOL = dict(atol=1e-5, rtol=1e-5)


# Graphs ------------------------------------------------------------------------------------

def random_graph(num_src: int, num_dst: int, num_edges: int, seed: int, *,
                 self_loops: bool = True, duplicates: bool = True,
                 isolated: Sequence[int] = ()) -> Tensor:
    """A random ``[2, E]`` edge_index (row 0 sources, row 1 targets).

    ``isolated`` target nodes receive no edge and send none. With ``self_loops`` a few edges
    i -> i are included (for i < min(num_src, num_dst)); with ``duplicates`` a few edges appear
    twice. Edges are in random order, not sorted by target.
    """
    gen = torch.Generator().manual_seed(seed)
    allowed_src = torch.tensor([i for i in range(num_src) if i not in isolated])
    allowed_dst = torch.tensor([i for i in range(num_dst) if i not in isolated])
    src = allowed_src[torch.randint(len(allowed_src), (num_edges, ), generator=gen)]
    dst = allowed_dst[torch.randint(len(allowed_dst), (num_edges, ), generator=gen)]
    edge_index = torch.stack([src, dst])
    parts = [edge_index]
    if self_loops:
        loops = [i for i in range(0, min(num_src, num_dst), 3) if i not in isolated]
        parts.append(torch.tensor([loops, loops]))
    if duplicates:
        parts.append(edge_index[:, :max(1, num_edges // 5)])
    edge_index = torch.cat(parts, dim=1)
    if not duplicates:
        edge_index = torch.unique(edge_index, dim=1)
    perm = torch.randperm(edge_index.size(1), generator=gen)
    return edge_index[:, perm]


def features(num_nodes: int, channels: int, seed: int, dtype=torch.float32) -> Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(num_nodes, channels, generator=gen).to(dtype)


INPUT_FORMS = ('edge_index', 'csr', 'csc', 'coo', 'sparse_tensor')


def as_input_form(edge_index: Tensor, form: str, num_src: int, num_dst: int):
    """``edge_index`` in one of PyG's adjacency forms.

    Sparse adjacencies are ``[num_dst, num_src]`` (rows are targets), so the edge list is
    flipped before conversion. Conversion coalesces: build these from duplicate-free graphs.
    """
    if form == 'edge_index':
        return edge_index
    flipped = edge_index.flip(0)
    size = (num_dst, num_src)
    if form == 'csr':
        return to_torch_csr_tensor(flipped, size=size)
    if form == 'csc':
        return to_torch_csc_tensor(flipped, size=size)
    if form == 'coo':
        return to_torch_coo_tensor(flipped, size=size)
    if form == 'sparse_tensor':
        from torch_sparse import SparseTensor
        return SparseTensor(row=edge_index[1], col=edge_index[0], sparse_sizes=size)
    raise ValueError(form)


def require_native() -> None:
    """Skips a test of the native kernels when the library is not built, saying why; fails
    instead with ``GAT_PYG_EXPECT_NATIVE=1`` (CI builds it, so a broken build cannot pass)."""
    from gat_pyg import kernels
    if kernels.available():
        return
    reason = f'gat_pyg native kernels not available: {kernels.load_error()}'
    if os.environ.get('GAT_PYG_EXPECT_NATIVE') == '1':
        pytest.fail(f'{reason} (GAT_PYG_EXPECT_NATIVE=1 expects them built)')
    pytest.skip(reason)


def require_torch_sparse() -> None:
    """Skips a test of the SparseTensor form when PyG runs without torch_sparse (not installed,
    or hidden together with torch_scatter, which it imports)."""
    if not torch_geometric.typing.WITH_TORCH_SPARSE:
        pytest.skip('torch_sparse is not available')


# Layers ------------------------------------------------------------------------------------

def randomize_parameters(module: torch.nn.Module, seed: int) -> None:
    """Overwrites every parameter (biases and attention vectors too, which PyG zero- or
    glorot-initialises) with random values, so that a test notices each of them."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in sorted(module.named_parameters()):
            fan_in = p.size(-1) if p.dim() > 1 else 4
            p.copy_(torch.randn(p.shape, generator=gen, dtype=p.dtype) / fan_in ** 0.5)


def layer_pair(kind: str, *args, source: str = 'theirs', fast_path=None, seed: int = 0,
               **kwargs) -> Tuple[torch.nn.Module, torch.nn.Module]:
    """(ours, theirs): the same layer from gat_pyg and from PyG, with identical weights.

    ``source`` names the layer whose random weights are copied into the other one, so that
    ``state_dict`` loading is exercised in both directions (strictly).
    """
    torch.manual_seed(seed)
    ours = OURS[kind](*args, fast_path=fast_path, **kwargs)
    theirs = THEIRS[kind](*args, **kwargs)
    copy_weights(ours, theirs, source, seed)
    return ours, theirs


def copy_weights(ours, theirs, source: str, seed: int) -> None:
    origin, target = (theirs, ours) if source == 'theirs' else (ours, theirs)
    randomize_parameters(origin, seed)
    target.load_state_dict(origin.state_dict(), strict=True)


def run(layer, x, edge_index, edge_attr=None, **kwargs):
    return layer(x, edge_index, edge_attr=edge_attr, **kwargs)


def split_returned(returned) -> Tuple[object, Tensor]:
    """(adjacency, attention) from any of PyG's return_attention_weights formats:
    ``(edge_index, alpha)``, ``(sparse adjacency, alpha)`` or a SparseTensor holding alpha."""
    if isinstance(returned, tuple):
        return returned
    return returned, returned.storage.value()


def loss_of(out: Tensor, seed: int = 1) -> Tensor:
    """A scalar whose gradient differs per output entry (a plain sum would hide errors that
    are constant along a row).

    Scaled like a mean, so that parameter gradients are O(1) and float32 rounding (which PyG's
    layers incur too: about 1e-6 relative to the largest gradient entry, measured against
    float64) stays below the absolute tolerance of the comparisons.
    """
    gen = torch.Generator().manual_seed(seed)
    weight = torch.randn(out.shape, generator=gen).to(out.dtype)
    return (out * weight).sum() / max(1, out.numel()) ** 0.5


def grads_by_name(module: torch.nn.Module) -> Dict[str, Tensor]:
    return {name: p.grad for name, p in module.named_parameters()}


def assert_same_grads(ours: torch.nn.Module, theirs: torch.nn.Module, **tol) -> None:
    g_ours, g_theirs = grads_by_name(ours), grads_by_name(theirs)
    assert sorted(g_ours) == sorted(g_theirs)
    assert any(g is not None for g in g_ours.values())
    for name in g_ours:
        # A parameter the inputs do not reach (att_dst without target features, lin_edge
        # without edge features) has no gradient in either library.
        assert (g_ours[name] is None) == (g_theirs[name] is None), name
        if g_ours[name] is None:
            continue
        torch.testing.assert_close(g_ours[name], g_theirs[name], **(tol or GRAD_TOL),
                                   msg=lambda m, name=name: f'{name}: {m}')


def clone_inputs(*tensors):
    """Leaf copies requiring grad (``None`` stays ``None``)."""
    return [None if t is None else t.detach().clone().requires_grad_() for t in tensors]


# The formulas in NumPy --------------------------------------------------------------------
# Written from the papers, independently of torch: projection, per-edge scores, a softmax over
# each target's incoming edges (self-loops included), weighted sums, heads concatenated or
# averaged. Weights follow torch.nn.Linear's layout: y = x @ W.T (+ b).

# Five nodes; (3, 3) is an existing self-loop that add_self_loops replaces; node 4 only receives.
LITERAL_EDGES = [(0, 1), (1, 0), (1, 2), (2, 1), (3, 2), (0, 3), (3, 3), (2, 4), (1, 4)]
NUM_NODES, IN_CHANNELS, OUT_CHANNELS = 5, 3, 2


def attention_by_edge(edge_index: Tensor, alpha: Tensor) -> Dict[Tuple[int, int], np.ndarray]:
    """{(source, target): attention per head} from a layer's returned (edge_index, alpha)."""
    return {(int(j), int(i)): a for (j, i), a in zip(edge_index.t(), alpha.detach().numpy())}


def _leaky_relu(z: np.ndarray, slope: float) -> np.ndarray:
    return np.where(z > 0, z, slope * z)


def with_self_loops(edges: List[Tuple[int, int]], num_nodes: int) -> List[Tuple[int, int]]:
    """The paper's neighbourhood N(i) ∪ {i}: existing loops replaced by one per node."""
    return [(j, i) for j, i in edges if j != i] + [(i, i) for i in range(num_nodes)]


def _attend(scores: Dict[Tuple[int, int], np.ndarray], messages: np.ndarray,
            edges: List[Tuple[int, int]], num_dst: int, heads: int, channels: int):
    """Softmax per target over its incoming edges, then the weighted sum of messages."""
    out = np.zeros((num_dst, heads, channels))
    alpha = np.zeros((len(edges), heads))
    for i in range(num_dst):
        incoming = [k for k, (_, t) in enumerate(edges) if t == i]
        if not incoming:
            continue
        for h in range(heads):
            e = np.array([scores[k][h] for k in incoming])
            w = np.exp(e - e.max())
            w = w / w.sum()
            for weight, k in zip(w, incoming):
                alpha[k, h] = weight
                out[i, h] += weight * messages[edges[k][0], h]
    return out, alpha


def _combine_heads(out: np.ndarray, concat: bool, bias: Optional[np.ndarray]) -> np.ndarray:
    out = out.reshape(out.shape[0], -1) if concat else out.mean(axis=1)
    return out if bias is None else out + bias


def numpy_gat(x: np.ndarray, edges: List[Tuple[int, int]], weight: np.ndarray,
              att_src: np.ndarray, att_dst: np.ndarray, bias: Optional[np.ndarray],
              heads: int, concat: bool, negative_slope: float,
              att_bias: Optional[np.ndarray] = None):
    """GAT: e_ij = LeakyReLU(a_s · W x_j + a_t · W x_i + b), per head (``att_bias`` b ``[H]``,
    the official code's score bias; 0 if ``None``); returns (out, alpha)."""
    channels = weight.shape[0] // heads
    wx = (x @ weight.T).reshape(len(x), heads, channels)
    b = np.zeros(heads) if att_bias is None else att_bias
    scores = {}
    for k, (j, i) in enumerate(edges):
        scores[k] = np.array([
            _leaky_relu(att_src[h] @ wx[j, h] + att_dst[h] @ wx[i, h] + b[h], negative_slope)
            for h in range(heads)])
    out, alpha = _attend(scores, wx, edges, len(x), heads, channels)
    return _combine_heads(out, concat, bias), alpha


def numpy_gatv2(x: np.ndarray, edges: List[Tuple[int, int]], w_src: np.ndarray,
                b_src: np.ndarray, w_dst: np.ndarray, b_dst: np.ndarray, att: np.ndarray,
                bias: Optional[np.ndarray], heads: int, concat: bool, negative_slope: float):
    """GATv2: e_ij = a · LeakyReLU(W_s x_j + W_t x_i), per head; returns (out, alpha)."""
    channels = w_src.shape[0] // heads
    xs = (x @ w_src.T + b_src).reshape(len(x), heads, channels)
    xt = (x @ w_dst.T + b_dst).reshape(len(x), heads, channels)
    scores = {}
    for k, (j, i) in enumerate(edges):
        scores[k] = np.array([att[h] @ _leaky_relu(xs[j, h] + xt[i, h], negative_slope)
                              for h in range(heads)])
    out, alpha = _attend(scores, xs, edges, len(x), heads, channels)
    return _combine_heads(out, concat, bias), alpha


def run_with_numpy_weights(layer, weights: Dict[str, np.ndarray], x: np.ndarray):
    """Loads NumPy ``weights`` (strictly) into ``layer`` and runs it on the literal graph;
    returns ``(out, edge_index, alpha)``."""
    layer.load_state_dict({k: torch.tensor(v, dtype=torch.float32) for k, v in weights.items()},
                          strict=True)
    out, (edge_index, alpha) = layer(torch.tensor(x, dtype=torch.float32),
                                     torch.tensor(LITERAL_EDGES).t(),
                                     return_attention_weights=True)
    return out, edge_index, alpha


def assert_matches_numpy(out, edge_index, alpha, edges, expected_out, expected_alpha) -> None:
    """The layer's output and per-edge attention equal the NumPy reference's."""
    torch.testing.assert_close(out.detach().double(), torch.from_numpy(expected_out), **OUT_TOL)
    got = attention_by_edge(edge_index, alpha)
    assert sorted(got) == sorted(edges)
    for k, edge in enumerate(edges):
        np.testing.assert_allclose(got[edge], expected_alpha[k], atol=1e-6, rtol=1e-5)

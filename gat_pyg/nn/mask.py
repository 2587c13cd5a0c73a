r"""Attention masks: build them from a score matrix and convert them to and from edge indices.

Convention, everywhere in the package: ``mask[i, j] = True`` means that **target** ``i`` may
attend to **source** ``j``. Rows are targets, as in PyG's transposed adjacency ``adj_t`` and in
the sparse adjacencies that :class:`~gat_pyg.GATConv` accepts, so

    ``mask_to_edge_index(mask)[:, e] == (j, i)``  for every allowed pair ``mask[i, j]``

(row 0 of an ``edge_index`` holds sources, row 1 targets). For a label co-occurrence matrix
``P[i, j] = P(label j | label i)`` this lets label ``i`` gather from the labels ``j`` that tend to
appear when ``i`` does.
"""
import math
import numbers
import warnings
from typing import Optional

import torch
from torch import Tensor
from torch_geometric.utils import is_torch_sparse_tensor, to_edge_index

from gat_pyg.nn import checks


def as_bool_mask(mask, name: str = 'mask') -> Tensor:
    """Returns a dense ``mask`` as a ``torch.bool`` tensor of the same shape.

    A boolean mask is returned as is; a floating point or integer mask is accepted when every
    entry is 0 or 1 (the usual ``adj`` of dense layers). Anything else is an error rather than a
    silent ``!= 0``: a weighted matrix passed by mistake (probabilities, counts) would otherwise
    allow every pair with a non-zero weight.
    """
    if not isinstance(mask, Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor (bool, or 0/1 values), got "
                        f"{type(mask).__name__}")
    if mask.dtype == torch.bool:
        return mask
    if mask.dtype.is_complex:
        raise TypeError(f"{name}: expected a bool or 0/1 real tensor, got {mask.dtype}")
    if mask.numel() > 0:
        bad = (mask != 0) & (mask != 1)
        if bool(bad.any()):
            value = mask[bad].flatten()[0].item()
            raise ValueError(
                f"{name}: a non-boolean mask must hold only 0 and 1, found {value!r}; "
                f"threshold a score matrix with gat_pyg.mask_from_scores(scores, "
                f"threshold=...) or pass scores > t")
    return mask != 0


def mask_from_scores(scores, threshold: Optional[float] = None, top_k: Optional[int] = None,
                     self_loops: bool = True) -> Tensor:
    r"""Boolean attention mask from a dense ``[N, N]`` matrix of pair scores.

    Exactly one rule picks the allowed off-diagonal pairs:

    * ``threshold``: :math:`M_{ij} = [S_{ij} \ge \tau]` (``>=``, as the binarised correlation
      matrix of ML-GCN, :math:`A_{ij} = 1` if :math:`P_{ij} \ge \tau`);
    * ``top_k``: each target row ``i`` keeps the ``k`` sources ``j \ne i`` with the largest
      :math:`S_{ij}`; ties go to the smaller index ``j``.

    The diagonal of ``scores`` is never read (a co-occurrence matrix has
    :math:`P(i \mid i) = 1`, which would otherwise pass any threshold and take a top-k slot):
    ``self_loops`` alone decides it.

    Args:
        scores (Tensor): ``[N, N]`` real scores, row ``i`` = target, column ``j`` = source,
            e.g. :math:`P_{ij} = P(j \mid i)`. No NaN; ``±inf`` is allowed.
        threshold (float, optional): Keep pairs with ``scores >= threshold``. A value outside
            the data's range is accepted; if it leaves no off-diagonal pair a
            :class:`UserWarning` says so. (default: ``None``)
        top_k (int, optional): Keep the ``top_k`` best sources of each target, ``1 <= top_k
            <= N - 1``. (default: ``None``)
        self_loops (bool, optional): Allow every node to attend to itself. (default: ``True``)

    Returns:
        ``torch.bool`` tensor ``[N, N]`` on the device of ``scores``; ``mask[i, j]`` = target
        ``i`` may attend to source ``j``.
    """
    if not isinstance(scores, Tensor):
        try:
            scores = torch.as_tensor(scores)
        except (TypeError, ValueError, RuntimeError):
            raise TypeError(f"scores: expected a [N, N] tensor or array of real scores, got "
                            f"{type(scores).__name__}") from None
    if scores.dtype == torch.bool or scores.dtype.is_complex:
        raise TypeError(f"scores: expected real numbers, got {scores.dtype}")
    if is_torch_sparse_tensor(scores):
        raise TypeError("scores: expected a dense [N, N] score matrix, got a sparse tensor "
                        "(call .to_dense() first)")
    if scores.dim() != 2 or scores.size(0) != scores.size(1):
        raise ValueError(f"scores: expected a square [N, N] matrix (rows targets, columns "
                         f"sources), got shape {checks.shape_of(scores)}")
    if (threshold is None) == (top_k is None):
        raise ValueError(f"threshold, top_k: give exactly one of them, got threshold="
                         f"{threshold!r} and top_k={top_k!r}")
    if scores.is_floating_point() and bool(torch.isnan(scores).any()):
        where = torch.isnan(scores).nonzero()[0].tolist()
        raise ValueError(f"scores: contains NaN (first at [{where[0]}, {where[1]}]); "
                         f"replace them (e.g. torch.nan_to_num) before building a mask")
    num_nodes = scores.size(0)
    off_diagonal = ~torch.eye(num_nodes, dtype=torch.bool, device=scores.device)

    if threshold is not None:
        if isinstance(threshold, Tensor) and threshold.numel() == 1:
            threshold = threshold.item()
        if isinstance(threshold, bool) or not isinstance(threshold, numbers.Real) \
                or math.isnan(threshold):
            raise ValueError(f"threshold: expected a real number, got {threshold!r}")
        mask = (scores >= threshold) & off_diagonal
        if not bool(mask.any()):
            values = scores[off_diagonal]
            seen = (f"off-diagonal scores range from {values.min().item():.6g} to "
                    f"{values.max().item():.6g}" if values.numel() else "there is no "
                    "off-diagonal pair")
            left = "only self-loops remain" if self_loops else "the mask is empty"
            warnings.warn(f"mask_from_scores: threshold={threshold!r} allows no pair between "
                          f"distinct nodes ({seen}); {left}", UserWarning, stacklevel=2)
    else:
        if isinstance(top_k, bool) or not isinstance(top_k, numbers.Integral) \
                or not 1 <= top_k <= num_nodes - 1:
            raise ValueError(f"top_k: expected an integer in [1, N - 1] = [1, "
                             f"{num_nodes - 1}] for N = {num_nodes} nodes, got {top_k!r}")
        # Sorting the [N, N - 1] off-diagonal entries keeps the diagonal out of the race; a
        # stable sort makes ties deterministic (smaller source index first).
        rest = scores[off_diagonal].view(num_nodes, num_nodes - 1)
        order = torch.argsort(rest, dim=1, descending=True, stable=True)[:, :int(top_k)]
        cols = torch.arange(num_nodes, device=scores.device).expand(num_nodes, -1)
        cols = cols[off_diagonal].view(num_nodes, num_nodes - 1)
        mask = torch.zeros(num_nodes, num_nodes, dtype=torch.bool, device=scores.device)
        mask.scatter_(1, cols.gather(1, order), True)

    if self_loops:
        mask.fill_diagonal_(True)
    return mask


def mask_to_edge_index(mask) -> Tensor:
    """``[2, E]`` edge_index (row 0 sources, row 1 targets) of the pairs a mask allows.

    Args:
        mask (Tensor): ``[N, N]`` with ``mask[i, j]`` = target ``i`` may attend to source ``j``:
            ``torch.bool``, 0/1 values, or a torch.sparse (COO/CSR/CSC) tensor whose stored
            entries are 0/1 (stored zeros are not edges).

    Returns:
        ``torch.long`` ``[2, E]``, sorted by target, then source.
    """
    if isinstance(mask, Tensor) and is_torch_sparse_tensor(mask):
        if mask.dim() != 2 or mask.size(0) != mask.size(1):
            raise ValueError(f"mask: expected a square [N, N] sparse mask, got shape "
                             f"{checks.shape_of(mask)}")
        (row, col), values = to_edge_index(mask.to_sparse_coo().coalesce())
        keep = as_bool_mask(values, 'mask (stored values)')
        return torch.stack([col[keep], row[keep]]).long()
    mask = as_bool_mask(mask)
    if mask.dim() != 2 or mask.size(0) != mask.size(1):
        raise ValueError(f"mask: expected a square [N, N] mask (rows targets, columns "
                         f"sources), got shape {checks.shape_of(mask)}")
    target, source = mask.nonzero(as_tuple=True)
    return torch.stack([source, target])


def edge_index_to_mask(edge_index: Tensor, num_nodes: int) -> Tensor:
    """Dense boolean ``[N, N]`` mask with ``mask[i, j] = True`` for every edge ``j -> i``.

    Args:
        edge_index (Tensor): ``[2, E]`` integer indices, row 0 sources, row 1 targets.
        num_nodes (int): ``N``.
    """
    num_nodes = checks.check_num_nodes(num_nodes)
    if not isinstance(edge_index, Tensor) or is_torch_sparse_tensor(edge_index):
        raise TypeError(f"edge_index: expected a [2, E] index tensor, got "
                        f"{type(edge_index).__name__} (a sparse adjacency already is a mask: "
                        f"use .to_dense().bool())")
    checks.check_graph(edge_index, int(num_nodes), int(num_nodes))
    mask = torch.zeros(num_nodes, num_nodes, dtype=torch.bool, device=edge_index.device)
    mask[edge_index[1], edge_index[0]] = True
    return mask

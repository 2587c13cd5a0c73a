r"""Node degrees, and how a model's accuracy depends on them.

Attention is said to help most where neighbourhoods are large and mixed, while a node of degree
one sees a single neighbour whatever the aggregation; :func:`accuracy_by_degree` puts numbers on
that by grouping the evaluated nodes into degree bins.
"""
import math
from dataclasses import dataclass
from typing import List, Optional, Sequence, Union

import torch
from torch import Tensor

from gat_pyg.analysis._checks import (check_edge_index, check_node_mask, check_node_vector,
                                      check_num_nodes)


@dataclass
class DegreeDistribution:
    """In-degrees of a graph.

    Attributes:
        degree (Tensor): ``[N]`` (``torch.long``), ``degree[i]`` = number of edges into node
            ``i``.
        counts (Tensor): ``[max_degree + 1]`` (``torch.long``), ``counts[d]`` = number of nodes
            of in-degree ``d``; ``counts[0]`` counts the nodes no edge reaches (the isolated
            nodes of an undirected graph).
    """
    degree: Tensor
    counts: Tensor

    @property
    def num_nodes(self) -> int:
        return self.degree.numel()

    @property
    def num_isolated(self) -> int:
        """Nodes with in-degree 0 (isolated nodes, for an undirected graph)."""
        return int(self.counts[0]) if self.counts.numel() else 0

    @property
    def max_degree(self) -> int:
        return self.counts.numel() - 1

    @property
    def mean_degree(self) -> float:
        return float(self.degree.double().mean()) if self.num_nodes else math.nan


def degree_distribution(edge_index: Tensor, num_nodes: int) -> DegreeDistribution:
    r"""In-degree of every node and the number of nodes per degree.

    An edge ``j -> i`` (``edge_index[:, e] = (j, i)``) counts for its target ``i``, the node
    whose attention it enters. Edges are counted as given: pass the graph without the
    self-loops that a layer adds itself (Planetoid graphs store none), and an undirected graph
    with both directions (as PyG stores it), where in- and out-degree agree.

    Args:
        edge_index (Tensor): ``[2, E]``, row 0 sources, row 1 targets.
        num_nodes (int): ``N``; nodes no edge touches still get degree 0.

    Returns:
        :class:`DegreeDistribution`, on the CPU.
    """
    num_nodes = check_num_nodes(num_nodes)
    edge_index = check_edge_index(edge_index, num_nodes).cpu()
    degree = torch.bincount(edge_index[1], minlength=num_nodes)
    counts = torch.bincount(degree) if num_nodes else torch.zeros(0, dtype=torch.long)
    return DegreeDistribution(degree=degree, counts=counts)


# Degree bins of the default: 0 (isolated, only the self-loop), 1, 2, 3, 4-5, 6-10, >= 11.
DEFAULT_DEGREE_BINS = (0, 1, 2, 3, 4, 6, 11, math.inf)


@dataclass
class AccuracyByDegree:
    """Accuracy of a prediction per degree bin; bin ``k`` holds ``edges[k] <= degree <
    edges[k + 1]``.

    Attributes:
        edges (Tensor): ``[K + 1]`` bin edges (``float64``, the last may be ``inf``).
        count (Tensor): ``[K]`` evaluated nodes per bin.
        correct (Tensor): ``[K]`` correctly predicted nodes per bin.
        accuracy (Tensor): ``[K]`` ``correct / count`` (``float64``), ``nan`` for an empty bin.
    """
    edges: Tensor
    count: Tensor
    correct: Tensor
    accuracy: Tensor

    @property
    def labels(self) -> List[str]:
        """One readable range per bin: ``'0'``, ``'4-5'``, ``'>=11'``."""
        out = []
        for low, high in zip(self.edges[:-1].tolist(), self.edges[1:].tolist()):
            low_i = math.ceil(low)
            if math.isinf(high):
                out.append(f'>={low_i}')
                continue
            high_i = math.ceil(high) - 1          # the largest integer degree < high
            out.append(f'{low_i}' if high_i == low_i else f'{low_i}-{high_i}')
        return out

    def rows(self) -> List[dict]:
        """The table, one dict per bin (``degree``, ``nodes``, ``correct``, ``accuracy``)."""
        return [dict(degree=label, nodes=int(n), correct=int(c), accuracy=float(a))
                for label, n, c, a in zip(self.labels, self.count, self.correct, self.accuracy)]


def accuracy_by_degree(pred: Tensor, y: Tensor, degree: Tensor, mask: Optional[Tensor] = None,
                       bins: Union[int, Sequence[float]] = DEFAULT_DEGREE_BINS
                       ) -> AccuracyByDegree:
    r"""Accuracy of ``pred`` on the nodes of ``mask``, grouped by degree.

    Args:
        pred (Tensor): Predicted classes ``[N]``, or scores ``[N, C]`` (their arg-max is the
            prediction).
        y (Tensor): True classes ``[N]``.
        degree (Tensor): ``[N]`` node degrees, e.g. :func:`degree_distribution`'s ``degree``.
        mask (Tensor, optional): The evaluated nodes: a bool ``[N]`` mask (e.g.
            ``data.test_mask``) or node indices; ``None`` for all nodes. (default: ``None``)
        bins (int or sequence, optional): Increasing bin edges, bin ``k`` = ``[edges[k],
            edges[k+1])`` (end with ``math.inf`` to keep every large degree), or a number ``K``
            of bins with about equally many evaluated nodes (edges at degree quantiles; equal
            degrees never straddle two bins, so there may be fewer). Nodes outside the edges
            are not counted. (default: ``0, 1, 2, 3, 4, 6, 11, inf``)

    Returns:
        :class:`AccuracyByDegree`, on the CPU.
    """
    if not isinstance(y, Tensor):
        raise TypeError(f"y: expected a torch.Tensor [N] of classes, got {type(y).__name__}")
    if y.dim() != 1:
        raise ValueError(f"y: expected classes of shape [N], got {list(y.shape)}")
    num_nodes = y.size(0)
    if not isinstance(pred, Tensor):
        raise TypeError(f"pred: expected a torch.Tensor [N] or [N, C], got "
                        f"{type(pred).__name__}")
    if pred.dim() == 2:
        pred = pred.argmax(dim=-1)
    pred = check_node_vector(pred, 'pred', num_nodes)
    degree = check_node_vector(degree, 'degree', num_nodes).detach().cpu()
    mask = check_node_mask(mask, num_nodes).cpu()

    degree = degree[mask].double()
    hit = (pred.detach().cpu() == y.detach().cpu())[mask]
    edges = _bin_edges(bins, degree)
    # searchsorted(..., right=True) - 1 is the k with edges[k] <= d < edges[k + 1].
    which = torch.searchsorted(edges, degree, right=True) - 1
    inside = (which >= 0) & (which < edges.numel() - 1)
    num_bins = edges.numel() - 1
    count = torch.bincount(which[inside], minlength=num_bins)
    correct = torch.bincount(which[inside & hit], minlength=num_bins)
    accuracy = correct.double() / count.double()   # 0 / 0 = nan marks an empty bin
    return AccuracyByDegree(edges=edges, count=count, correct=correct, accuracy=accuracy)


def _bin_edges(bins, degree: Tensor) -> Tensor:
    if isinstance(bins, bool):
        raise ValueError(f"bins: expected a number of bins or a sequence of edges, got {bins!r}")
    if isinstance(bins, int):
        if bins < 1:
            raise ValueError(f"bins: expected at least 1 bin, got {bins}")
        if degree.numel() == 0:
            return torch.tensor([0.0, math.inf], dtype=torch.float64)
        quantiles = torch.quantile(degree, torch.linspace(0, 1, bins + 1, dtype=torch.float64))
        # Degrees are integers: round the inner edges up to one, drop duplicates, and close
        # the top so that the largest degree falls inside.
        inner = torch.unique(quantiles[1:-1].ceil())
        low = degree.min().reshape(1)
        inner = inner[inner > low]
        return torch.cat([low, inner, torch.tensor([math.inf], dtype=torch.float64)])
    try:
        edges = torch.as_tensor(list(bins), dtype=torch.float64)
    except (TypeError, ValueError):
        raise ValueError(f"bins: expected a number of bins or a sequence of edges, got "
                         f"{bins!r}") from None
    if edges.dim() != 1 or edges.numel() < 2 or bool(torch.isnan(edges).any()) \
            or not bool((edges[1:] > edges[:-1]).all()):
        raise ValueError(f"bins: expected at least two strictly increasing edges, got "
                         f"{list(bins)}")
    return edges

"""degree_distribution and accuracy_by_degree on hand-made graphs and predictions."""
import math

import pytest
import torch

from gat_pyg.analysis import accuracy_by_degree, degree_distribution


def star(leaves: int) -> torch.Tensor:
    """Undirected star, centre 0, stored in both directions as PyG stores undirected graphs."""
    centre = torch.zeros(leaves, dtype=torch.long)
    leaf = torch.arange(1, leaves + 1)
    return torch.stack([torch.cat([centre, leaf]), torch.cat([leaf, centre])])


def test_star_graph_with_an_isolated_node():
    result = degree_distribution(star(4), num_nodes=6)       # node 5 has no edge
    assert result.degree.tolist() == [4, 1, 1, 1, 1, 0]
    assert result.counts.tolist() == [1, 4, 0, 0, 1]          # one of degree 0, four of 1, one of 4
    assert result.num_isolated == 1
    assert result.max_degree == 4
    assert result.mean_degree == pytest.approx(8 / 6)
    assert int(result.counts.sum()) == result.num_nodes == 6


def test_in_degree_counts_targets_only():
    # 0 -> 1, 0 -> 2, 1 -> 2: in-degrees 0, 1, 2 (out-degrees would be 2, 1, 0)
    edge_index = torch.tensor([[0, 0, 1], [1, 2, 2]])
    result = degree_distribution(edge_index, 3)
    assert result.degree.tolist() == [0, 1, 2]
    assert result.counts.tolist() == [1, 1, 1]


def test_graph_without_edges_and_without_nodes():
    result = degree_distribution(torch.empty(2, 0, dtype=torch.long), 3)
    assert result.degree.tolist() == [0, 0, 0]
    assert result.counts.tolist() == [3]
    assert result.num_isolated == 3
    empty = degree_distribution(torch.empty(2, 0, dtype=torch.long), 0)
    assert empty.degree.numel() == 0 and empty.num_isolated == 0


@pytest.mark.parametrize('edge_index, num_nodes, error, match', [
    (torch.tensor([[0, 3], [1, 0]]), 3, ValueError, 'out of range'),
    (torch.tensor([0, 1]), 3, ValueError, r'expected shape \[2, num_edges\]'),
    (torch.tensor([[0.0], [1.0]]), 3, TypeError, 'integer node indices'),
    (torch.tensor([[0], [1]]), -1, ValueError, 'num_nodes: expected a non-negative integer'),
    (torch.eye(3).to_sparse(), 3, TypeError, 'torch.sparse adjacency'),
])
def test_degree_distribution_errors(edge_index, num_nodes, error, match):
    with pytest.raises(error, match=match):
        degree_distribution(edge_index, num_nodes)


# Eight nodes, all of class 0; the prediction is wrong on nodes 1 and 4.
DEGREE = torch.tensor([0, 1, 1, 2, 3, 5, 8, 12])
Y = torch.zeros(8, dtype=torch.long)
PRED = torch.tensor([0, 1, 0, 0, 1, 0, 0, 0])


def test_accuracy_by_degree_on_a_hand_made_prediction():
    result = accuracy_by_degree(PRED, Y, DEGREE, bins=(0, 1, 2, 4, math.inf))
    assert result.labels == ['0', '1', '2-3', '>=4']
    assert result.count.tolist() == [1, 2, 2, 3]
    assert result.correct.tolist() == [1, 1, 1, 3]
    assert result.accuracy.tolist() == [1.0, 0.5, 0.5, 1.0]
    assert result.rows()[2] == dict(degree='2-3', nodes=2, correct=1, accuracy=0.5)


def test_mask_as_booleans_or_indices_and_scores_as_logits():
    mask = torch.tensor([False, True, True, True, True, False, False, True])
    logits = torch.nn.functional.one_hot(PRED, 3).float() * 5 + 0.1   # arg-max = PRED
    by_mask = accuracy_by_degree(logits, Y, DEGREE, mask, bins=(0, 2, math.inf))
    by_index = accuracy_by_degree(PRED, Y, DEGREE, torch.tensor([1, 2, 3, 4, 7]),
                                  bins=(0, 2, math.inf))
    for result in (by_mask, by_index):
        assert result.count.tolist() == [2, 3]        # degrees {1, 1} and {2, 3, 12}
        assert result.correct.tolist() == [1, 2]
        assert result.accuracy.tolist() == [0.5, pytest.approx(2 / 3)]


def test_empty_bin_is_nan_and_degrees_outside_the_edges_are_not_counted():
    result = accuracy_by_degree(PRED, Y, DEGREE, bins=(1, 2, 4, 5, 6))
    assert result.labels == ['1', '2-3', '4', '5']
    assert result.count.tolist() == [2, 2, 0, 1]      # degrees 0, 8 and 12 fall outside
    assert math.isnan(result.accuracy[2])
    assert result.accuracy[[0, 1, 3]].tolist() == [0.5, 0.5, 1.0]


def test_default_bins_cover_every_degree():
    result = accuracy_by_degree(PRED, Y, DEGREE)
    assert int(result.count.sum()) == 8
    assert result.labels == ['0', '1', '2', '3', '4-5', '6-10', '>=11']
    assert result.count.tolist() == [1, 2, 1, 1, 1, 1, 1]


def test_a_number_of_bins_splits_at_degree_quantiles():
    degree = torch.tensor([1, 1, 2, 2, 3, 3, 4, 4])
    result = accuracy_by_degree(PRED, Y, degree, bins=2)
    assert result.edges.tolist() == [1.0, 3.0, math.inf]    # median 2.5, rounded up to 3
    assert result.count.tolist() == [4, 4]
    # equal degrees never straddle a bin: one distinct degree gives one bin
    single = accuracy_by_degree(PRED, Y, torch.full((8, ), 2), bins=4)
    assert single.count.tolist() == [8] and single.labels == ['>=2']


@pytest.mark.parametrize('kwargs, error, match', [
    (dict(bins=(0, 2, 2)), ValueError, 'strictly increasing'),
    (dict(bins=(3, )), ValueError, 'at least two'),
    (dict(bins=0), ValueError, 'at least 1 bin'),
    (dict(mask=torch.tensor([0, 9])), ValueError, r'mask: node indices must lie in \[0, 7\]'),
    (dict(mask=torch.ones(5, dtype=torch.bool)), ValueError, r'mask: expected shape \[N\]'),
    (dict(degree=torch.zeros(3)), ValueError, r'degree: expected shape \[N\] = \[8\]'),
])
def test_accuracy_by_degree_errors(kwargs, error, match):
    arguments = dict(pred=PRED, y=Y, degree=DEGREE) | kwargs
    with pytest.raises(error, match=match):
        accuracy_by_degree(**arguments)

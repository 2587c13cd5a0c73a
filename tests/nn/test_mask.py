"""Mask builders: from a score matrix to a boolean mask, and between masks and edge indices."""
import warnings

import numpy as np
import pytest
import torch

from gat_pyg import edge_index_to_mask, mask_from_scores, mask_to_edge_index

# Rows are targets: S[i, j] scores "target i attends to source j".
S = torch.tensor([[1.0, 0.5, 0.2, 0.7],
                  [0.3, 1.0, 0.5, 0.1],
                  [0.5, 0.5, 1.0, 0.4],
                  [0.0, 0.9, 0.6, 1.0]])


def test_threshold_is_greater_or_equal_and_ignores_the_diagonal():
    mask = mask_from_scores(S, threshold=0.5, self_loops=False)
    expected = torch.tensor([[0, 1, 0, 1],
                             [0, 0, 1, 0],
                             [1, 1, 0, 0],
                             [0, 1, 1, 0]], dtype=torch.bool)
    assert mask.dtype == torch.bool
    assert torch.equal(mask, expected)          # the 0.5 entries are kept: >=, not >
    with_loops = mask_from_scores(S, threshold=0.5)
    assert torch.equal(with_loops, expected | torch.eye(4, dtype=torch.bool))
    # A diagonal below the threshold does not matter either: self_loops decides it.
    low_diagonal = S - 2 * torch.eye(4)
    assert torch.equal(mask_from_scores(low_diagonal, threshold=0.5), with_loops)


def test_threshold_matches_numpy_on_a_random_matrix():
    rng = np.random.default_rng(0)
    scores = rng.random((9, 9))
    mask = mask_from_scores(torch.from_numpy(scores), threshold=0.6)
    expected = scores >= 0.6
    np.fill_diagonal(expected, True)
    np.testing.assert_array_equal(mask.numpy(), expected)
    # numpy input is accepted as is
    np.testing.assert_array_equal(mask_from_scores(scores, threshold=0.6).numpy(), expected)


def test_top_k_per_target_excludes_the_diagonal_and_breaks_ties_by_index():
    mask = mask_from_scores(S, top_k=2, self_loops=False)
    expected = torch.tensor([[0, 1, 0, 1],     # 0.7, 0.5
                             [1, 0, 1, 0],     # 0.5, 0.3
                             [1, 1, 0, 0],     # 0.5 = 0.5 > 0.4: both ties kept
                             [0, 1, 1, 0]], dtype=torch.bool)
    assert torch.equal(mask, expected)
    assert mask.sum(dim=1).tolist() == [2, 2, 2, 2]
    one = mask_from_scores(S, top_k=1)
    # row 2 ties 0.5 / 0.5 between sources 0 and 1: the smaller index wins
    assert one[2].tolist() == [True, False, True, False]
    assert one.sum(dim=1).tolist() == [2, 2, 2, 2]      # 1 + the self-loop


def test_top_k_matches_a_brute_force_reference():
    torch.manual_seed(1)
    scores = torch.rand(7, 7)
    mask = mask_from_scores(scores, top_k=3, self_loops=False)
    for i in range(7):
        others = [j for j in range(7) if j != i]
        best = sorted(others, key=lambda j: -scores[i, j].item())[:3]
        assert sorted(mask[i].nonzero().view(-1).tolist()) == sorted(best)


@pytest.mark.parametrize('kwargs', [{}, {'threshold': 0.5, 'top_k': 2}])
def test_exactly_one_rule(kwargs):
    with pytest.raises(ValueError, match='threshold, top_k: give exactly one'):
        mask_from_scores(S, **kwargs)


@pytest.mark.parametrize('scores, match', [
    (torch.rand(3, 4), r'scores: expected a square \[N, N\]'),
    (torch.rand(4), r'scores: expected a square'),
    (torch.rand(2, 3, 3), r'scores: expected a square'),
])
def test_scores_shape_errors(scores, match):
    with pytest.raises(ValueError, match=match):
        mask_from_scores(scores, threshold=0.5)


def test_scores_nan_and_type_errors():
    bad = S.clone()
    bad[2, 1] = float('nan')
    with pytest.raises(ValueError, match=r'scores: contains NaN \(first at \[2, 1\]\)'):
        mask_from_scores(bad, threshold=0.5)
    with pytest.raises(ValueError, match='scores: contains NaN'):
        mask_from_scores(bad, top_k=1)
    with pytest.raises(TypeError, match='scores: expected real numbers'):
        mask_from_scores(S > 0.5, threshold=0.5)
    with pytest.raises(TypeError, match='scores: expected a'):
        mask_from_scores('not a matrix', threshold=0.5)
    with pytest.raises(ValueError, match='threshold: expected a real number'):
        mask_from_scores(S, threshold=float('nan'))


@pytest.mark.parametrize('top_k', [0, 4, -1, 1.5, True])
def test_top_k_out_of_range(top_k):
    with pytest.raises(ValueError, match=r'top_k: expected an integer in \[1, N - 1\] = \[1, 3\]'):
        mask_from_scores(S, top_k=top_k)


def test_threshold_outside_the_data_range_warns_but_works():
    with pytest.warns(UserWarning, match='allows no pair between distinct nodes.*only self-loops'):
        mask = mask_from_scores(S, threshold=5.0)
    assert torch.equal(mask, torch.eye(4, dtype=torch.bool))
    with pytest.warns(UserWarning, match='the mask is empty'):
        mask = mask_from_scores(S, threshold=5.0, self_loops=False)
    assert not mask.any()
    # below the range: everything allowed, and no warning
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        assert mask_from_scores(S, threshold=-3.0).all()


def test_mask_to_edge_index_and_back():
    mask = torch.tensor([[1, 1, 0],
                         [0, 0, 0],
                         [1, 0, 1]], dtype=torch.bool)
    edge_index = mask_to_edge_index(mask)
    # row 0 sources (columns), row 1 targets (rows), sorted by target
    assert edge_index.tolist() == [[0, 1, 0, 2], [0, 0, 2, 2]]
    assert edge_index.dtype == torch.long
    assert torch.equal(edge_index_to_mask(edge_index, 3), mask)
    # 0/1 float / int masks and torch.sparse masks give the same edges
    assert torch.equal(mask_to_edge_index(mask.float()), edge_index)
    assert torch.equal(mask_to_edge_index(mask.int()), edge_index)
    assert torch.equal(mask_to_edge_index(mask.float().to_sparse()), edge_index)
    assert torch.equal(mask_to_edge_index(mask.float().to_sparse_csr()), edge_index)
    # a stored zero in a sparse mask is not an edge
    stored_zero = torch.sparse_coo_tensor(torch.tensor([[0, 2], [1, 0]]),
                                          torch.tensor([0.0, 1.0]), (3, 3),
                                          check_invariants=True)
    assert mask_to_edge_index(stored_zero).tolist() == [[0], [2]]


def test_mask_conversion_errors():
    with pytest.raises(ValueError, match='mask: a non-boolean mask must hold only 0 and 1, '
                                         'found 0.5'):
        mask_to_edge_index(torch.tensor([[1.0, 0.5], [0.0, 1.0]]))
    with pytest.raises(ValueError, match=r'mask: expected a square \[N, N\] mask'):
        mask_to_edge_index(torch.ones(2, 3, dtype=torch.bool))
    with pytest.raises(TypeError, match='mask: expected a torch.Tensor'):
        mask_to_edge_index([[True]])
    with pytest.raises(ValueError, match='edge_index: source index 3 is out of range'):
        edge_index_to_mask(torch.tensor([[3], [0]]), 3)
    with pytest.raises(ValueError, match=r'edge_index: expected shape \[2, num_edges\]'):
        edge_index_to_mask(torch.tensor([[0, 1, 2]]), 3)
    with pytest.raises(ValueError, match='num_nodes: expected a non-negative integer'):
        edge_index_to_mask(torch.tensor([[0], [1]]), -1)

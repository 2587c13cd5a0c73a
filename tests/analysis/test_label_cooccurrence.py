"""label_cooccurrence: P(label j | label i) on hand-counted multi-hot labels."""
import pytest
import torch

from gat_pyg import mask_from_scores
from gat_pyg.analysis import label_cooccurrence

# Four samples, three labels (plus a fourth that never occurs):
# label 0 in samples {0, 1, 2}, label 1 in {0, 2}, label 2 in {2, 3}.
LABELS = torch.tensor([[1, 1, 0, 0],
                       [1, 0, 0, 0],
                       [1, 1, 1, 0],
                       [0, 0, 1, 0]])


def test_conditional_probabilities_by_hand():
    P = label_cooccurrence(LABELS)
    expected = torch.tensor([[1, 2 / 3, 1 / 3, 0],     # P(j | 0): 3 samples with label 0
                             [1, 1, 1 / 2, 0],         # P(j | 1): 2 samples with label 1
                             [1 / 2, 1 / 2, 1, 0],     # P(j | 2): 2 samples with label 2
                             [0, 0, 0, 0]])            # label 3 never seen: a zero row
    assert P.dtype == torch.float32
    torch.testing.assert_close(P, expected)
    assert torch.equal(label_cooccurrence(LABELS.bool()), P)


def test_thresholded_into_a_mask():
    mask = mask_from_scores(label_cooccurrence(LABELS), threshold=0.5)
    # target 0 attends to 1 (2/3) but not 2 (1/3); targets 1 and 2 to everyone seen
    assert mask.int().tolist() == [[1, 1, 0, 0],
                                   [1, 1, 1, 0],
                                   [1, 1, 1, 0],
                                   [0, 0, 0, 1]]


@pytest.mark.parametrize('labels, match', [
    (torch.tensor([1, 0, 1]), r'labels: expected multi-hot labels \[S, L\]'),
    (torch.tensor([[0.5, 1.0]]), 'multi-hot 0/1'),
])
def test_label_cooccurrence_errors(labels, match):
    with pytest.raises(ValueError, match=match):
        label_cooccurrence(labels)

"""attention_entropy: known values for uniform and one-hot attention, and GATConv's weights."""
import math

import pytest
import torch

from gat_pyg import GATConv
from gat_pyg.analysis import attention_entropy


def star_with_self_loops(leaves: int) -> torch.Tensor:
    centre = torch.zeros(leaves, dtype=torch.long)
    leaf = torch.arange(1, leaves + 1)
    loops = torch.arange(leaves + 1)
    return torch.stack([torch.cat([centre, leaf, loops]), torch.cat([leaf, centre, loops])])


def uniform_weights(edge_index: torch.Tensor, num_nodes: int) -> torch.Tensor:
    degree = torch.bincount(edge_index[1], minlength=num_nodes).double()
    return 1.0 / degree[edge_index[1]]


def test_uniform_attention_has_entropy_log_degree():
    edge_index = star_with_self_loops(4)                   # centre degree 5, leaves 2
    alpha = uniform_weights(edge_index, 5).unsqueeze(-1).repeat(1, 3)     # 3 identical heads
    result = attention_entropy(edge_index, alpha, 5)
    assert result.entropy.shape == (5, 3) and result.heads == 3
    assert result.degree.tolist() == [5, 2, 2, 2, 2]
    expected = torch.tensor([math.log(5)] + [math.log(2)] * 4, dtype=torch.float64)
    torch.testing.assert_close(result.uniform, expected)
    torch.testing.assert_close(result.entropy, expected.unsqueeze(-1).expand(5, 3))


def test_one_hot_attention_has_zero_entropy():
    edge_index = star_with_self_loops(4)
    # every node puts all its attention on its self-loop (the last 5 edges)
    alpha = (edge_index[0] == edge_index[1]).float()
    result = attention_entropy(edge_index, alpha, 5)       # 1-D alpha: one head
    assert result.entropy.shape == (5, 1)
    assert result.entropy.abs().max().item() == 0.0
    assert result.uniform[0].item() == pytest.approx(math.log(5))


def test_a_two_neighbour_split_and_a_node_without_edges():
    edge_index = torch.tensor([[1, 2], [0, 0]])            # 1 -> 0, 2 -> 0; nodes 1, 2, 3: none
    alpha = torch.tensor([[0.25, 0.5], [0.75, 0.5]])       # head 0 skewed, head 1 uniform
    result = attention_entropy(edge_index, alpha, 4)
    skewed = -(0.25 * math.log(0.25) + 0.75 * math.log(0.75))
    assert result.entropy[0].tolist() == [pytest.approx(skewed), pytest.approx(math.log(2))]
    assert result.entropy[1:].abs().max().item() == 0.0
    assert result.uniform.tolist() == [pytest.approx(math.log(2)), 0.0, 0.0, 0.0]
    assert result.degree.tolist() == [2, 0, 0, 0]
    summary = result.summary()                             # over the one node with edges
    assert summary['nodes'] == 1 and summary['heads'] == 2
    assert summary['entropy'] == pytest.approx((skewed + math.log(2)) / 2)


def test_gatconv_weights_lie_between_zero_and_uniform_and_match_a_loop():
    torch.manual_seed(0)
    x = torch.randn(7, 5)
    edge_index = torch.tensor([[0, 1, 2, 3, 4, 5, 6, 2, 0], [1, 2, 3, 4, 5, 6, 0, 0, 2]])
    conv = GATConv(5, 4, heads=3).eval()
    _, (edges, alpha) = conv(x, edge_index, return_attention_weights=True)
    result = attention_entropy(edges, alpha, 7)
    assert (result.entropy >= 0).all()
    assert (result.entropy <= result.uniform.unsqueeze(-1) + 1e-9).all()
    for i in range(7):
        into = edges[1] == i
        for h in range(3):
            a = alpha[into, h].double()
            assert result.entropy[i, h].item() == pytest.approx(-(a * a.log()).sum().item())


@pytest.mark.parametrize('alpha, error, match', [
    (torch.rand(3, 2), ValueError, r'alpha: expected \[E, H\] or \[E\] weights for the E = 2'),
    (torch.ones(2, dtype=torch.long), TypeError, 'floating point'),
    (torch.tensor([0.5, -0.1]), ValueError, 'non-negative'),
    ([0.5, 0.5], TypeError, 'alpha: expected a torch.Tensor'),
])
def test_attention_entropy_errors(alpha, error, match):
    with pytest.raises(error, match=match):
        attention_entropy(torch.tensor([[1, 2], [0, 0]]), alpha, 3)

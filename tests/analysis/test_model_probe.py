"""probe_model: per-layer outputs and attention of the package's models, equal to forward."""
import pytest
import torch

from gat_pyg.analysis import attention_entropy, probe_model
from gat_pyg.models import GAT, GCN, MLP, GATv2

EDGES = torch.tensor([[0, 1, 1, 2, 2, 3, 3, 4, 0, 4], [1, 0, 2, 1, 3, 2, 4, 3, 4, 0]])


@pytest.mark.parametrize('cls', [GAT, GATv2])
def test_attention_models(cls):
    torch.manual_seed(0)
    x = torch.rand(5, 6)
    model = cls(6, 4, 3, heads=2)
    probe = probe_model(model, x, EDGES)
    assert model.training                           # mode restored
    assert [tuple(o.shape) for o in probe.outputs] == [(5, 8), (5, 3)]
    model.eval()
    torch.testing.assert_close(probe.outputs[-1], model(x, EDGES))
    # the hidden layer went through ELU: nothing below -1
    assert probe.hidden.min() >= -1
    for (edge_index, alpha), heads in zip(probe.attention, (2, 1)):
        assert edge_index.size(1) == EDGES.size(1) + 5          # self-loops added
        assert alpha.shape == (15, heads)
        sums = torch.zeros(5, heads).index_add_(0, edge_index[1], alpha)
        torch.testing.assert_close(sums, torch.ones(5, heads))
        assert attention_entropy(edge_index, alpha, 5).entropy.shape == (5, heads)


@pytest.mark.parametrize('cls', [GCN, MLP])
def test_models_without_attention(cls):
    torch.manual_seed(0)
    x = torch.rand(5, 6).to_sparse()                # sparse features pass through as in forward
    model = cls(6, 4, 3).eval()
    probe = probe_model(model, x, EDGES)
    assert probe.attention == [None, None]
    assert probe.hidden.shape == (5, 4) and probe.hidden.min() >= 0      # ReLU
    torch.testing.assert_close(probe.outputs[-1], model(x, EDGES))
    assert not model.training


def test_only_package_models_are_probed():
    with pytest.raises(TypeError, match='expected a gat_pyg.models model'):
        probe_model(torch.nn.Linear(6, 3), torch.rand(5, 6), EDGES)

"""Our layers inside PyG's machinery: the AttentionExplainer (torch.compile: test_precision)."""
import pytest
import torch
from torch_geometric.explain import Explainer
from torch_geometric.explain.algorithm import AttentionExplainer

from reference import KINDS, OURS, THEIRS, features, random_graph, randomize_parameters


class TwoLayer(torch.nn.Module):
    def __init__(self, conv1, conv2, in_channels=6, hidden=4, heads=2, out_channels=3):
        super().__init__()
        self.conv1 = conv1(in_channels, hidden, heads=heads)
        self.conv2 = conv2(hidden * heads, out_channels, heads=1, concat=False)

    def forward(self, x, edge_index):
        return self.conv2(torch.nn.functional.elu(self.conv1(x, edge_index)), edge_index)


def model_pair(kind1, kind2, seed=0):
    torch.manual_seed(seed)
    theirs = TwoLayer(THEIRS[kind1], THEIRS[kind2])
    randomize_parameters(theirs, seed)
    ours = TwoLayer(OURS[kind1], OURS[kind2])
    ours.load_state_dict(theirs.state_dict(), strict=True)
    return ours.eval(), theirs.eval()


@pytest.mark.parametrize('kind', KINDS)
def test_attention_explainer(kind):
    edge_index = random_graph(15, 15, 45, seed=1, duplicates=False)
    x = features(15, 6, seed=2)
    ours, theirs = model_pair(kind, kind)
    masks = []
    for model in (ours, theirs):
        explainer = Explainer(model=model, algorithm=AttentionExplainer(),
                              explanation_type='model', edge_mask_type='object',
                              model_config=dict(mode='multiclass_classification',
                                                task_level='node', return_type='raw'))
        explanation = explainer(x, edge_index, index=3)
        masks.append(explanation.edge_mask)
    assert masks[0].shape == (edge_index.size(1), )
    torch.testing.assert_close(masks[0], masks[1], atol=1e-6, rtol=1e-5)
    # Node 3's explanation is confined to its receptive field and is not trivial.
    assert masks[0].max() > 0 and (masks[0] == 0).any()
    # The hooks are gone afterwards and the operators are used again.
    assert not ours.conv1._message_forward_hooks
    assert ours.conv1.why_propagate() is None

"""Subclasses written for PyG's layers work with ours: an override of ``edge_update``, ``message``
or ``aggregate`` (PyG's hook names and signatures) runs through PyG's ``propagate``
automatically, equal to the same subclass of PyG's layer; ``fast_path=True`` refuses it by name.

Issue replayed: PyG's ``examples/contrib/rbcd_attack.py`` subclasses ``GATConv`` to weight the
attention by differentiable edge weights (``edge_update(alpha_j, alpha_i, edge_attr, index,
ptr, size_i)``, the weights passed as a 1-D ``edge_attr``, no ``edge_dim``); on our default path
the override was silently ignored, with ``fast_path=False`` it failed on the hook's argument
names.
"""
import pytest
import torch
import torch.nn.functional as F
import torch_geometric.nn as pyg_nn
from torch_geometric.utils import softmax

import gat_pyg
from reference import features, random_graph, randomize_parameters


def weighted(base):
    """The edge-weighted GAT of a robustness attack, as a subclass of ``base``: the attention
    logits are shifted by the log of each edge's weight before the softmax."""
    class WeightedGATConv(base):
        def edge_update(self, alpha_j, alpha_i, edge_attr, index, ptr, size_i):
            alpha = alpha_j if alpha_i is None else alpha_j + alpha_i
            alpha = F.leaky_relu(alpha, self.negative_slope)
            if edge_attr is not None:
                assert edge_attr.dim() == 1, 'scalar edge weights only'
                alpha = alpha + edge_attr.clamp_min(1e-8).log().view(-1, 1)
            return softmax(alpha, index, ptr, size_i)
    return WeightedGATConv


def test_an_edge_update_override_runs_and_equals_pyg_subclass():
    edge_index = random_graph(12, 12, 40, seed=1, duplicates=False)
    x = features(12, 5, seed=2)
    torch.manual_seed(0)
    theirs = weighted(pyg_nn.GATConv)(5, 3, heads=2)
    randomize_parameters(theirs, 3)
    ours = weighted(gat_pyg.GATConv)(5, 3, heads=2)
    ours.load_state_dict(theirs.state_dict())
    assert ours.why_propagate() == 'WeightedGATConv overrides edge_update'
    results = []
    for layer in (ours, theirs):
        weights = torch.rand(edge_index.size(1), generator=torch.Generator().manual_seed(4))
        weights.requires_grad_()
        out, (_, alpha) = layer(x, edge_index, weights, return_attention_weights=True)
        out.square().sum().backward()
        results.append((out, alpha, weights.grad))
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    # The weights matter (the override is honoured, not skipped).
    plain = gat_pyg.GATConv(5, 3, heads=2)
    plain.load_state_dict(theirs.state_dict())
    assert not torch.allclose(plain(x, edge_index), results[0][0], atol=1e-4)
    with pytest.raises(ValueError, match='fast_path=True: .*WeightedGATConv overrides '
                                         'edge_update'):
        weighted(gat_pyg.GATConv)(5, 3, heads=2, fast_path=True)(x, edge_index)


@pytest.mark.parametrize('kind', ['gat', 'gatv2'])
def test_message_and_aggregate_overrides_equal_pyg_subclasses(kind):
    ours_cls = {'gat': gat_pyg.GATConv, 'gatv2': gat_pyg.GATv2Conv}[kind]
    theirs_cls = {'gat': pyg_nn.GATConv, 'gatv2': pyg_nn.GATv2Conv}[kind]

    # Each subclass gets its own name: PyG generates (and caches) a class's propagate code by
    # module and class name.
    def squared_messages(base):
        def message(self, x_j, alpha):
            return alpha.unsqueeze(-1) * x_j.square()
        return type(f'Squared{base.__name__}', (base, ), {'message': message})

    def max_aggregation(base):
        def aggregate(self, inputs, index, ptr=None, dim_size=None):
            return torch_scatter_max(inputs, index, dim_size)
        return type(f'Maximum{base.__name__}', (base, ), {'aggregate': aggregate})

    edge_index = random_graph(10, 10, 30, seed=5)
    x = features(10, 4, seed=6)
    for make in (squared_messages, max_aggregation):
        torch.manual_seed(0)
        theirs = make(theirs_cls)(4, 3, heads=2)
        randomize_parameters(theirs, 7)
        ours = make(ours_cls)(4, 3, heads=2)
        ours.load_state_dict(theirs.state_dict())
        assert ours.why_propagate().endswith(('overrides message', 'overrides aggregate'))
        torch.testing.assert_close(ours(x, edge_index), theirs(x, edge_index),
                                   atol=1e-6, rtol=1e-5)


def torch_scatter_max(inputs, index, dim_size):
    out = inputs.new_full((dim_size, *inputs.shape[1:]), float('-inf'))
    out = out.scatter_reduce(0, index.view(-1, 1, 1).expand_as(inputs), inputs, 'amax')
    return out.masked_fill(out == float('-inf'), 0.0)


def test_a_subclass_that_overrides_nothing_keeps_the_kernels():
    class Named(gat_pyg.GATConv):
        """A subclass for a new name or extra methods only."""

        def describe(self):
            return 'named'

    assert Named(4, 3).why_propagate() is None

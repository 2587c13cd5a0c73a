"""GATv2Conv against a plain NumPy implementation of the paper's formula, on a literal graph."""
import numpy as np
import pytest
import torch

import gat_pyg
from reference import (FAST, IN_CHANNELS, LITERAL_EDGES as EDGES, NUM_NODES, OUT_CHANNELS,
                       assert_matches_numpy, numpy_gatv2, run_with_numpy_weights, with_self_loops)


@FAST
@pytest.mark.parametrize('share_weights', [False, True])
@pytest.mark.parametrize('add_self_loops', [True, False])
@pytest.mark.parametrize('heads,concat', [(1, True), (2, True), (2, False)])
def test_matches_numpy_formula(heads, concat, add_self_loops, share_weights, fast_path):
    rng = np.random.default_rng(2)
    x = rng.normal(size=(NUM_NODES, IN_CHANNELS))
    w_src = rng.normal(size=(heads * OUT_CHANNELS, IN_CHANNELS))
    b_src = rng.normal(size=heads * OUT_CHANNELS)
    w_dst = w_src if share_weights else rng.normal(size=(heads * OUT_CHANNELS, IN_CHANNELS))
    b_dst = b_src if share_weights else rng.normal(size=heads * OUT_CHANNELS)
    att = rng.normal(size=(heads, OUT_CHANNELS))
    bias = rng.normal(size=heads * OUT_CHANNELS if concat else OUT_CHANNELS)

    layer = gat_pyg.GATv2Conv(IN_CHANNELS, OUT_CHANNELS, heads=heads, concat=concat,
                              add_self_loops=add_self_loops, share_weights=share_weights,
                              fast_path=fast_path)
    as_torch = {'lin_l.weight': w_src, 'lin_l.bias': b_src, 'lin_r.weight': w_dst,
                'lin_r.bias': b_dst, 'att': att[None], 'bias': bias}
    out, edge_index_out, alpha = run_with_numpy_weights(layer, as_torch, x)

    edges = with_self_loops(EDGES, NUM_NODES) if add_self_loops else EDGES
    expected_out, expected_alpha = numpy_gatv2(x, edges, w_src, b_src, w_dst, b_dst, att,
                                               bias, heads, concat, negative_slope=0.2)
    assert_matches_numpy(out, edge_index_out, alpha, edges, expected_out, expected_alpha)


def test_positional_arguments_follow_pyg_gatv2_signature():
    import torch_geometric.nn as pyg_nn
    torch.manual_seed(0)
    theirs = pyg_nn.GATv2Conv(5, 3, heads=2, edge_dim=2)
    ours = gat_pyg.GATv2Conv(5, 3, heads=2, edge_dim=2)
    ours.load_state_dict(theirs.state_dict())
    x, edge_index, edge_attr = torch.randn(6, 5), torch.tensor([[0, 1, 2, 3], [1, 2, 3, 4]]), \
        torch.randn(4, 2)
    out, (edges, alpha) = ours(x, edge_index, edge_attr, True)
    ref_out, (ref_edges, ref_alpha) = theirs(x, edge_index, edge_attr, True)
    torch.testing.assert_close(out, ref_out, atol=1e-6, rtol=0)
    torch.testing.assert_close(alpha, ref_alpha, atol=1e-6, rtol=0)
    assert torch.equal(edges, ref_edges)


def test_share_weights_needs_equal_widths():
    """Issue: ``GATv2Conv((6, 3), 8, heads=2, share_weights=True)`` built without complaint and
    failed in the matrix product (PyG's layer does the same)."""
    with pytest.raises(ValueError, match=r'^share_weights=True: .*in_channels needs equal '
                                         r'widths, got \(6, 3\)'):
        gat_pyg.GATv2Conv((6, 3), 8, heads=2, share_weights=True, add_self_loops=False)
    gat_pyg.GATv2Conv((6, 6), 8, heads=2, share_weights=True)
    lazy = gat_pyg.GATv2Conv((-1, -1), 8, heads=2, share_weights=True, add_self_loops=False)
    with pytest.raises(ValueError, match=r'^x: share_weights=True .*got 6 and 3'):
        lazy((torch.randn(4, 6), torch.randn(2, 3)), torch.tensor([[0, 1], [0, 1]]))

"""GATConv against a plain NumPy implementation of the paper's formula, on a literal graph."""
import numpy as np
import pytest

import gat_pyg
from reference import (FAST, IN_CHANNELS, LITERAL_EDGES as EDGES, NUM_NODES, OUT_CHANNELS,
                       assert_matches_numpy, numpy_gat, run_with_numpy_weights, with_self_loops)


@FAST
@pytest.mark.parametrize('add_self_loops', [True, False])
@pytest.mark.parametrize('heads,concat', [(1, True), (2, True), (2, False)])
def test_matches_numpy_formula(heads, concat, add_self_loops, fast_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(NUM_NODES, IN_CHANNELS))
    weight = rng.normal(size=(heads * OUT_CHANNELS, IN_CHANNELS))
    att_src = rng.normal(size=(heads, OUT_CHANNELS))
    att_dst = rng.normal(size=(heads, OUT_CHANNELS))
    bias = rng.normal(size=heads * OUT_CHANNELS if concat else OUT_CHANNELS)

    layer = gat_pyg.GATConv(IN_CHANNELS, OUT_CHANNELS, heads=heads, concat=concat,
                            add_self_loops=add_self_loops, fast_path=fast_path)
    as_torch = {'lin.weight': weight, 'att_src': att_src[None], 'att_dst': att_dst[None],
                'bias': bias}
    out, edge_index_out, alpha = run_with_numpy_weights(layer, as_torch, x)

    edges = with_self_loops(EDGES, NUM_NODES) if add_self_loops else EDGES
    expected_out, expected_alpha = numpy_gat(x, edges, weight, att_src, att_dst, bias, heads,
                                             concat, negative_slope=0.2)
    assert_matches_numpy(out, edge_index_out, alpha, edges, expected_out, expected_alpha)


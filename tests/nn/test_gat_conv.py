"""GATConv against a plain NumPy implementation of the paper's formula, on a literal graph."""
import numpy as np
import pytest
import torch

import gat_pyg
from reference import (IN_CHANNELS, LITERAL_EDGES as EDGES, NUM_NODES, OUT_CHANNELS, OUT_TOL,
                       attention_by_edge, numpy_gat, with_self_loops)


@pytest.mark.parametrize('fast_path', [False, True], ids=['plain', 'fast'])
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
    layer.load_state_dict({k: torch.tensor(v, dtype=torch.float32)
                           for k, v in as_torch.items()}, strict=True)
    edge_index = torch.tensor(EDGES).t()
    out, (edge_index_out, alpha) = layer(torch.tensor(x, dtype=torch.float32), edge_index,
                                         return_attention_weights=True)

    edges = with_self_loops(EDGES, NUM_NODES) if add_self_loops else EDGES
    expected_out, expected_alpha = numpy_gat(x, edges, weight, att_src, att_dst, bias, heads,
                                             concat, negative_slope=0.2)
    torch.testing.assert_close(out.detach().double(), torch.from_numpy(expected_out),
                               **OUT_TOL)
    got = attention_by_edge(edge_index_out, alpha)
    assert sorted(got) == sorted(edges)
    for k, edge in enumerate(edges):
        np.testing.assert_allclose(got[edge], expected_alpha[k], atol=1e-6, rtol=1e-5)


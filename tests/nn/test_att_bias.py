"""GATConv's ``att_bias``: the official GAT code's per-head score bias (``f_1`` and ``f_2`` of
``attn_head`` are ``conv1d`` with biases), e_ij = LeakyReLU(a_s · W x_j + a_t · W x_i + b).

Against the NumPy formula on every route, zero bias = today's layer, the bias acting only
through the LeakyReLU, the dense masked layer, state_dicts with PyG's layer; the float64
gradcheck is in test_gradcheck.py."""
import numpy as np
import pytest
import torch
import torch_geometric.nn as pyg_nn

import gat_pyg
from reference import (FAST, IN_CHANNELS, LITERAL_EDGES as EDGES, NUM_NODES, OUT_CHANNELS,
                       PATH_TOL, assert_matches_numpy, features, loss_of, numpy_gat,
                       random_graph, randomize_parameters, run_with_numpy_weights,
                       with_self_loops)


def _numpy_weights(heads: int, concat: bool, seed: int = 0):
    rng = np.random.default_rng(seed)
    return dict(x=rng.normal(size=(NUM_NODES, IN_CHANNELS)),
                weight=rng.normal(size=(heads * OUT_CHANNELS, IN_CHANNELS)),
                att_src=rng.normal(size=(heads, OUT_CHANNELS)),
                att_dst=rng.normal(size=(heads, OUT_CHANNELS)),
                bias=rng.normal(size=heads * OUT_CHANNELS if concat else OUT_CHANNELS),
                # Of the scores' order of magnitude, so that it moves some across the kink.
                att_bias=rng.normal(size=heads) * 2.0)


@FAST
@pytest.mark.parametrize('add_self_loops', [True, False])
@pytest.mark.parametrize('heads,concat', [(1, True), (2, True), (2, False)])
def test_matches_numpy_formula(heads, concat, add_self_loops, fast_path):
    w = _numpy_weights(heads, concat)
    layer = gat_pyg.GATConv(IN_CHANNELS, OUT_CHANNELS, heads=heads, concat=concat,
                            add_self_loops=add_self_loops, att_bias=True, fast_path=fast_path)
    out, edge_index, alpha = run_with_numpy_weights(
        layer, {'lin.weight': w['weight'], 'att_src': w['att_src'][None],
                'att_dst': w['att_dst'][None], 'att_bias': w['att_bias'], 'bias': w['bias']},
        w['x'])
    edges = with_self_loops(EDGES, NUM_NODES) if add_self_loops else EDGES
    args = (w['x'], edges, w['weight'], w['att_src'], w['att_dst'], w['bias'], heads, concat,
            0.2)
    expected_out, expected_alpha = numpy_gat(*args, att_bias=w['att_bias'])
    assert_matches_numpy(out, edge_index, alpha, edges, expected_out, expected_alpha)
    # The test can tell: without the bias the formula gives other attention.
    _, alpha_without = numpy_gat(*args)
    assert np.abs(alpha_without - expected_alpha).max() > 1e-2


@FAST
def test_without_target_features_the_bias_joins_the_source_scores(fast_path):
    """Bipartite (x_src, None): the score is LeakyReLU(a_s · W x_j + b) alone."""
    heads, num_dst = 2, 4
    w = _numpy_weights(heads, True, seed=1)
    layer = gat_pyg.GATConv((IN_CHANNELS, IN_CHANNELS), OUT_CHANNELS, heads=heads,
                            add_self_loops=False, att_bias=True, fast_path=fast_path)
    layer.load_state_dict({k: torch.tensor(v, dtype=torch.float32) for k, v in {
        'lin_src.weight': w['weight'], 'lin_dst.weight': w['weight'] * 0.5,
        'att_src': w['att_src'][None], 'att_dst': w['att_dst'][None],
        'att_bias': w['att_bias'], 'bias': w['bias']}.items()}, strict=True)
    edges = [(j, i) for j, i in EDGES if i < num_dst]
    out, (edge_index, alpha) = layer((torch.tensor(w['x'], dtype=torch.float32), None),
                                     torch.tensor(edges).t(), size=(NUM_NODES, num_dst),
                                     return_attention_weights=True)
    # No target term: the NumPy formula with a_t = 0 (its rows past num_dst receive nothing).
    expected_out, expected_alpha = numpy_gat(w['x'], edges, w['weight'], w['att_src'],
                                             np.zeros_like(w['att_dst']), w['bias'], heads,
                                             True, 0.2, att_bias=w['att_bias'])
    assert_matches_numpy(out, edge_index, alpha, edges, expected_out[:num_dst], expected_alpha)


@FAST
@pytest.mark.parametrize('concat', [True, False])
def test_zero_bias_is_exactly_todays_layer(concat, fast_path):
    """A fresh att_bias is 0 (TensorFlow's conv1d bias initialiser): the same outputs,
    attention and gradients, bit for bit, and a gradient for the bias to start learning."""
    edge_index = random_graph(7, 7, 20, seed=3)
    x = features(7, 5, seed=4)
    torch.manual_seed(0)
    with_bias = gat_pyg.GATConv(5, 3, heads=2, concat=concat, att_bias=True,
                                fast_path=fast_path)
    assert torch.equal(with_bias.att_bias, torch.zeros(2))
    today = gat_pyg.GATConv(5, 3, heads=2, concat=concat, fast_path=fast_path)
    today.load_state_dict({k: v for k, v in with_bias.state_dict().items() if k != 'att_bias'},
                          strict=True)
    results = []
    for layer in (with_bias, today):
        out, (_, alpha) = layer(x, edge_index, return_attention_weights=True)
        (loss_of(out) + loss_of(alpha, seed=2)).backward()
        results.append((out, alpha, {n: p.grad for n, p in layer.named_parameters()}))
    (out_b, alpha_b, grads_b), (out_t, alpha_t, grads_t) = results
    assert torch.equal(out_b, out_t) and torch.equal(alpha_b, alpha_t)
    for name, grad in grads_t.items():
        assert torch.equal(grads_b[name], grad), name
    assert grads_b['att_bias'].abs().min() > 0


def test_the_bias_acts_through_the_leaky_relu_only():
    """With slope 1 the LeakyReLU is the identity and a per-head constant cancels in the
    softmax; with the default slope it changes the attention."""
    edge_index = random_graph(7, 7, 20, seed=5)
    x = features(7, 5, seed=6)
    for slope, changes in ((1.0, False), (0.2, True)):
        torch.manual_seed(0)
        layer = gat_pyg.GATConv(5, 3, heads=2, negative_slope=slope, att_bias=True)
        _, (_, alpha_zero) = layer(x, edge_index, return_attention_weights=True)
        with torch.no_grad():
            layer.att_bias.copy_(torch.tensor([1.5, -2.0]))
        _, (_, alpha) = layer(x, edge_index, return_attention_weights=True)
        difference = (alpha - alpha_zero).abs().max().item()
        assert (difference > 1e-2) if changes else (difference < 1e-6), (slope, difference)


@FAST
@pytest.mark.parametrize('bipartite', [False, True])
def test_every_route_gives_the_same_numbers_and_gradients(bipartite, fast_path):
    """fast_path False (PyG's propagate) against None / True (csr and C++ kernels)."""
    num_src, num_dst = (6, 4) if bipartite else (7, 7)
    in_channels = (5, 3) if bipartite else 5
    edge_index = random_graph(num_src, num_dst, 20, seed=7, isolated=[1])
    x = (features(num_src, 5, seed=8), features(num_dst, 3, seed=9)) if bipartite \
        else features(num_src, 5, seed=8)
    torch.manual_seed(0)
    plain = gat_pyg.GATConv(in_channels, 3, heads=2, att_bias=True, residual=True,
                            fast_path=False)
    randomize_parameters(plain, seed=10)
    fast = gat_pyg.GATConv(in_channels, 3, heads=2, att_bias=True, residual=True,
                           fast_path=fast_path)
    fast.load_state_dict(plain.state_dict(), strict=True)
    results = []
    for layer in (plain, fast):
        out, (_, alpha) = layer(x, edge_index, return_attention_weights=True)
        (loss_of(out) + loss_of(alpha, seed=2)).backward()
        results.append((out, alpha, {n: p.grad for n, p in layer.named_parameters()}))
    (out_p, alpha_p, grads_p), (out_f, alpha_f, grads_f) = results
    torch.testing.assert_close(out_f, out_p, **PATH_TOL)
    torch.testing.assert_close(alpha_f, alpha_p, **PATH_TOL)
    assert grads_p['att_bias'].abs().min() > 0
    for name, grad in grads_p.items():
        torch.testing.assert_close(grads_f[name], grad, **PATH_TOL, msg=name)


def test_the_dense_masked_layer_adds_it_as_the_sparse_one():
    mask = torch.rand(6, 6, generator=torch.Generator().manual_seed(11)) < 0.5
    mask.fill_diagonal_(True)
    x = features(6, 4, seed=12)
    torch.manual_seed(0)
    sparse = gat_pyg.MaskedGATConv(4, 3, heads=2, att_bias=True)
    randomize_parameters(sparse, seed=13)
    dense = gat_pyg.DenseMaskedGATConv(4, 3, heads=2, att_bias=True)
    dense.load_state_dict(sparse.state_dict(), strict=True)
    torch.testing.assert_close(dense(x[None], mask)[0], sparse(x, mask), **PATH_TOL)
    without = gat_pyg.MaskedGATConv(4, 3, heads=2)
    without.load_state_dict({k: v for k, v in sparse.state_dict().items() if k != 'att_bias'})
    assert not torch.allclose(without(x, mask), sparse(x, mask), atol=1e-3)


def test_state_dicts_load_both_ways_with_pygs_layer_when_off():
    torch.manual_seed(0)
    ours, theirs = gat_pyg.GATConv(5, 3, heads=2), pyg_nn.GATConv(5, 3, heads=2)
    theirs.load_state_dict(ours.state_dict(), strict=True)
    ours.load_state_dict(theirs.state_dict(), strict=True)
    assert ours.att_bias is None and 'att_bias' not in dict(ours.named_parameters())
    on = gat_pyg.GATConv(5, 3, heads=2, att_bias=True)
    assert set(on.state_dict()) == set(theirs.state_dict()) | {'att_bias'}
    assert on.att_bias.shape == (2, )


def test_gatv2_refuses_it_saying_why():
    with pytest.raises(ValueError, match="^att_bias: GATv2Conv has no attention bias"):
        gat_pyg.GATv2Conv(5, 3, att_bias=True)
    assert gat_pyg.GATv2Conv(5, 3, att_bias=False).state_dict().keys() == \
        pyg_nn.GATv2Conv(5, 3).state_dict().keys()

"""Properties of the shared attention core, for both layers on both paths: normalisation,
permutation equivariance, empty graphs, isolated nodes, dropout, repr and lazy shapes."""
import pytest
import torch

import gat_pyg
from reference import (FAST, KINDS, OURS, OUT_TOL, THEIRS, features, layer_pair, random_graph,
                       randomize_parameters)



def build(kind, *args, seed=0, **kwargs):
    torch.manual_seed(seed)
    layer = OURS[kind](*args, **kwargs)
    randomize_parameters(layer, seed)
    return layer


@FAST
@pytest.mark.parametrize('add_self_loops', [True, False])
@pytest.mark.parametrize('kind', KINDS)
def test_attention_is_a_distribution_over_incoming_edges(kind, add_self_loops, fast_path):
    num_nodes = 30
    edge_index = random_graph(num_nodes, num_nodes, 90, seed=1, isolated=[4, 17])
    x = features(num_nodes, 5, seed=2)
    layer = build(kind, 5, 4, heads=3, add_self_loops=add_self_loops, fast_path=fast_path)
    _, (edges, alpha) = layer(x, edge_index, return_attention_weights=True)
    assert alpha.shape == (edges.size(1), 3)
    assert alpha.min() >= 0 and alpha.max() <= 1
    totals = torch.zeros(num_nodes, 3).index_add_(0, edges[1], alpha)
    has_incoming = torch.zeros(num_nodes, dtype=torch.bool)
    has_incoming[edges[1]] = True
    torch.testing.assert_close(totals[has_incoming], torch.ones(int(has_incoming.sum()), 3))
    assert torch.all(totals[~has_incoming] == 0)
    # Nodes 4 and 17 only have their self-loop (weight 1) or nothing at all.
    assert has_incoming[4].item() == add_self_loops
    # Attention is not uniform: the scores matter.
    assert alpha[edges[1] != edges[0]].std() > 1e-2


@FAST
@pytest.mark.parametrize('kind', KINDS)
def test_permuting_nodes_permutes_outputs(kind, fast_path):
    num_nodes = 12
    edge_index = random_graph(num_nodes, num_nodes, 30, seed=3, isolated=[2])
    x = features(num_nodes, 5, seed=4)
    edge_attr = features(edge_index.size(1), 3, seed=5)
    layer = build(kind, 5, 4, heads=2, edge_dim=3, residual=True, fast_path=fast_path)
    out, (edges, alpha) = layer(x, edge_index, edge_attr, return_attention_weights=True)

    perm = torch.randperm(num_nodes, generator=torch.Generator().manual_seed(6))
    new_id = torch.empty_like(perm)
    new_id[perm] = torch.arange(num_nodes)        # node perm[k] becomes node k
    edge_perm = torch.randperm(edge_index.size(1), generator=torch.Generator().manual_seed(7))
    out_p, (edges_p, alpha_p) = layer(x[perm], new_id[edge_index][:, edge_perm],
                                      edge_attr[edge_perm], return_attention_weights=True)
    torch.testing.assert_close(out_p, out[perm], **OUT_TOL)
    # The same attention on the same (renamed) edges. Duplicate edges share a key only if
    # they also share their edge features, so compare per edge through a sort.
    key = lambda e, a: sorted(zip(e[0].tolist(), e[1].tolist(), a.tolist()))  # noqa: E731
    for (s, t, a), (s_p, t_p, a_p) in zip(key(new_id[edges], alpha), key(edges_p, alpha_p)):
        assert (s, t) == (s_p, t_p)
        torch.testing.assert_close(torch.tensor(a), torch.tensor(a_p), **OUT_TOL)


@FAST
@pytest.mark.parametrize('add_self_loops', [True, False])
@pytest.mark.parametrize('kind', KINDS)
def test_empty_graph(kind, add_self_loops, fast_path):
    layer = build(kind, 5, 4, heads=2, edge_dim=3, add_self_loops=add_self_loops,
                  fast_path=fast_path)
    x = features(0, 5, seed=8).requires_grad_()
    edge_index = torch.empty(2, 0, dtype=torch.long)
    out, (edges, alpha) = layer(x, edge_index, torch.empty(0, 3),
                                return_attention_weights=True)
    assert out.shape == (0, 8) and alpha.shape == (0, 2) and edges.shape == (2, 0)
    out.sum().backward()
    assert x.grad.shape == (0, 5)


@FAST
@pytest.mark.parametrize('kind', KINDS)
def test_nodes_without_edges(kind, fast_path):
    """No edges: with self-loops every node attends to itself alone; without them the
    output is the bias (plus the residual), finite, with finite gradients."""
    x = features(4, 5, seed=9).requires_grad_()
    edge_index = torch.empty(2, 0, dtype=torch.long)
    looped = build(kind, 5, 3, heads=2, fast_path=fast_path)
    source_side = looped.lin if kind == 'gat' else looped.lin_l
    torch.testing.assert_close(looped(x, edge_index), source_side(x) + looped.bias, **OUT_TOL)

    layer = build(kind, 5, 3, heads=2, add_self_loops=False, residual=True, fast_path=fast_path)
    out = layer(x, edge_index)
    torch.testing.assert_close(out, layer.res(x) + layer.bias, **OUT_TOL)
    out.sum().backward()
    assert torch.isfinite(x.grad).all()
    assert all(torch.isfinite(p.grad).all() for p in layer.parameters() if p.grad is not None)


@FAST
@pytest.mark.parametrize('kind', KINDS)
def test_isolated_node_without_self_loops_gets_the_bias(kind, fast_path):
    edge_index = random_graph(6, 6, 12, seed=10, isolated=[3])
    x = features(6, 5, seed=11).requires_grad_()
    layer = build(kind, 5, 3, heads=2, concat=False, add_self_loops=False, fast_path=fast_path)
    out = layer(x, edge_index)
    assert torch.isfinite(out).all()
    assert torch.equal(out[3], layer.bias.detach())
    assert not torch.allclose(out[0], layer.bias, atol=1e-3)
    out.sum().backward()
    assert torch.isfinite(x.grad).all() and torch.all(x.grad[3] == 0)


@FAST
@pytest.mark.parametrize('kind', KINDS)
def test_dropout(kind, fast_path):
    edge_index = random_graph(10, 10, 30, seed=12)
    x = features(10, 5, seed=13)
    layer = build(kind, 5, 4, heads=2, dropout=0.5, fast_path=fast_path, seed=14)
    reference = build(kind, 5, 4, heads=2, dropout=0.0, fast_path=fast_path, seed=14)
    reference.load_state_dict(layer.state_dict())

    layer.eval()
    out_eval = layer(x, edge_index)
    assert torch.equal(layer(x, edge_index), out_eval)
    torch.testing.assert_close(out_eval, reference(x, edge_index), atol=0, rtol=0)

    layer.train()
    torch.manual_seed(15)
    out_train, (_, alpha) = layer(x, edge_index, return_attention_weights=True)
    torch.manual_seed(15)
    assert torch.equal(layer(x, edge_index), out_train)
    assert not torch.allclose(out_train, out_eval, atol=1e-3)
    # Dropout acts on the normalised attention: some weights are zeroed, the rest scaled by 2.
    assert (alpha == 0).any()
    _, (_, alpha_eval) = reference(x, edge_index, return_attention_weights=True)
    kept = alpha != 0
    torch.testing.assert_close(alpha[kept], 2 * alpha_eval[kept], **OUT_TOL)


@pytest.mark.parametrize('kind', KINDS)
@pytest.mark.parametrize('args,kwargs', [
    ((8, 32), dict(heads=2)),
    ((8, 32), dict()),
    (((8, 16), 4), dict(heads=3, concat=False)),
    ((-1, 4), dict(heads=2, residual=True)),
    (((-1, -1), 4), dict()),
])
def test_repr_matches_pyg(kind, args, kwargs):
    assert repr(OURS[kind](*args, **kwargs)) == repr(THEIRS[kind](*args, **kwargs))
    if args == (8, 32) and kwargs:
        assert repr(OURS[kind](*args, **kwargs)) == f'{OURS[kind].__name__}(8, 32, heads=2)'


@FAST
@pytest.mark.parametrize('residual', [False, True])
@pytest.mark.parametrize('kind', KINDS)
def test_lazy_in_channels(kind, residual, fast_path):
    edge_index = random_graph(7, 7, 14, seed=16)
    x = features(7, 5, seed=17)
    lazy = OURS[kind](-1, 3, heads=2, residual=residual, fast_path=fast_path)
    lazy(x, edge_index)        # materialises the parameters
    assert all(not isinstance(p, torch.nn.parameter.UninitializedParameter)
               for p in lazy.parameters())
    ours, theirs = layer_pair(kind, 5, 3, heads=2, residual=residual)
    lazy.load_state_dict(theirs.state_dict(), strict=True)
    torch.testing.assert_close(lazy(x, edge_index), theirs(x, edge_index), **OUT_TOL)


@FAST
@pytest.mark.parametrize('kind', KINDS)
def test_lazy_bipartite_in_channels(kind, fast_path):
    edge_index = random_graph(7, 4, 14, seed=18)
    x = (features(7, 5, seed=19), features(4, 3, seed=20))
    lazy = OURS[kind]((-1, -1), 3, heads=2, residual=True, fast_path=fast_path)
    lazy(x, edge_index)
    _, theirs = layer_pair(kind, (5, 3), 3, heads=2, residual=True)
    lazy.load_state_dict(theirs.state_dict(), strict=True)
    out = lazy(x, edge_index)
    assert out.shape == (4, 6)
    torch.testing.assert_close(out, theirs(x, edge_index), **OUT_TOL)


@pytest.mark.parametrize('kind', KINDS)
def test_tuple_in_channels_parameter_shapes(kind):
    layer = OURS[kind]((6, 4), 3, heads=2, residual=True)
    reference = THEIRS[kind]((6, 4), 3, heads=2, residual=True)
    assert {k: v.shape for k, v in layer.state_dict().items()} == \
        {k: v.shape for k, v in reference.state_dict().items()}
    src = layer.lin_src if kind == 'gat' else layer.lin_l
    dst = layer.lin_dst if kind == 'gat' else layer.lin_r
    assert src.weight.shape == (6, 6) and dst.weight.shape == (6, 4)
    assert layer.res.weight.shape == (6, 4)
    assert isinstance(layer, gat_pyg.AttentionConv)


@FAST
@pytest.mark.parametrize('conv_cls', [gat_pyg.GATConv, gat_pyg.GATv2Conv])
def test_message_dropout_drops_summed_values_only_in_training(conv_cls, fast_path):
    torch.manual_seed(0)
    x, edge_index = torch.randn(8, 5), torch.randint(0, 8, (2, 20))
    plain = conv_cls(5, 4, heads=2, message_dropout=0.5, fast_path=False)
    layer = conv_cls(5, 4, heads=2, message_dropout=0.5, fast_path=fast_path)
    reference = conv_cls(5, 4, heads=2)
    layer.load_state_dict(plain.state_dict())
    reference.load_state_dict(plain.state_dict())
    for conv in (plain, layer, reference):
        conv.eval()
    # Off in eval mode: exactly the layer without it.
    torch.testing.assert_close(layer(x, edge_index), reference(x, edge_index))
    plain.train()
    layer.train()
    torch.manual_seed(1)
    out, (_, alpha) = layer(x, edge_index, return_attention_weights=True)
    # The scores see the undropped projection: attention is unchanged by message dropout.
    _, (_, alpha_eval) = reference(x, edge_index, return_attention_weights=True)
    torch.testing.assert_close(alpha, alpha_eval)
    assert not torch.allclose(out, reference(x, edge_index))
    if fast_path == 'native' or fast_path is True and gat_pyg.kernels.available():
        return      # the kernels draw their own mask: its values are checked below
    # The pure-torch paths drop h_src with one function: one seed, one output.
    torch.manual_seed(1)
    torch.testing.assert_close(out, plain(x, edge_index), atol=1e-5, rtol=1e-5)


@FAST
@pytest.mark.parametrize('conv_cls', [gat_pyg.GATConv, gat_pyg.GATv2Conv])
def test_message_dropout_keeps_each_source_value_or_zeroes_it(conv_cls, fast_path):
    """One edge into each target and no self-loops: the attention is 1, so each output value
    is the source's projected value scaled by 1 / (1 - p), or 0, with about a share p zeroed;
    a source's mask is shared by all its edges (two targets read source 0)."""
    torch.manual_seed(3)
    n, p = 400, 0.5
    x = torch.randn(n, 5)
    src = torch.cat([torch.tensor([0]), torch.arange(n - 1)])
    edge_index = torch.stack([src, torch.arange(n)])
    layer = conv_cls(5, 4, heads=3, message_dropout=p, add_self_loops=False, bias=False,
                     fast_path=fast_path)
    clean = layer.eval()(x, edge_index)
    dropped = layer.train()(x, edge_index)
    kept = dropped.ne(0)
    torch.testing.assert_close(dropped[kept], clean[kept] / (1 - p))
    share = kept.double().mean().item()
    assert abs(share - (1 - p)) < 0.03, share
    torch.testing.assert_close(dropped[0], dropped[1])      # targets 0 and 1 both read source 0


def test_message_dropout_must_be_a_probability():
    with pytest.raises(ValueError, match=r'^message_dropout: expected a probability in \[0, 1\]'):
        gat_pyg.GATConv(4, 2, message_dropout=1.5)
    with pytest.raises(TypeError, match='^message_dropout: expected a probability'):
        gat_pyg.GATConv(4, 2, message_dropout='0.5')

"""Per-head input dropout (``head_input_dropout``; :class:`gat_pyg.nn.functional.HeadInputs`):
the official GAT code's ``attn_head`` drops its input inside every head, so each head of a
layer projects its own masked copy of the input.

The reference is the official code's structure: the layer split into ``H`` one-head layers
(each head's rows of the weights), each run without dropout on the input masked by that
head's mask (replayed from :mod:`gat_pyg.kernels.hashing`), the heads concatenated or
averaged. The float64 gradcheck is in test_gradcheck.py."""
import pytest
import torch

import gat_pyg
from gat_pyg.kernels import hashing
from gat_pyg.nn.functional import HeadInputs
from reference import FAST, OURS, PATH_TOL, features, random_graph, randomize_parameters

P = 0.4


def _seed(manual_seed: int) -> torch.Tensor:
    """The seed an operator draws after ``torch.manual_seed(manual_seed)``."""
    torch.manual_seed(manual_seed)
    return torch.randint(0, 2**62, (), dtype=torch.int64)


def _sparse_features(num_nodes: int, channels: int, seed: int) -> torch.Tensor:
    x = features(num_nodes, channels, seed)
    return x * (x > 0.3)                     # ~40 % stored entries, as bag-of-words rows


def _as_form(x: torch.Tensor, form: str) -> torch.Tensor:
    return {'dense': x, 'coo': x.to_sparse(), 'csr': x.to_sparse_csr()}[form]


def _replayed_masks(x: torch.Tensor, heads: int, seed: torch.Tensor) -> torch.Tensor:
    """``[H, N, F]``: 0 or 1 / (1 - P) per entry, as HeadInputs draws them: a dense x's
    copies by flat index of ``[H, N, F]`` (feature_dropout), a sparse x's stored entries by
    their index in the ``H`` stacked copies (sparse_dropout)."""
    num_nodes, channels = x.shape
    if x.layout == torch.strided:
        keep = hashing.paired_keep_mask(seed, P, heads * x.numel()).view(heads, *x.shape)
        return keep / (1 - P)
    coo = x.to_sparse_coo().coalesce()
    row, col = coo.indices()
    keep = hashing.keep_mask(seed, P, heads * coo._nnz()).view(heads, -1)
    masks = torch.zeros(heads, num_nodes, channels)
    for k in range(heads):
        masks[k, row[keep[k]], col[keep[k]]] = 1 / (1 - P)
    return masks


def one_head_layers(layer) -> list:
    """The layer as the official code builds it: ``H`` separate one-head layers, each with its
    head's rows of every projection and attention vector (and of the bias and residual when
    the heads are concatenated; averaged heads share them)."""
    heads, channels = layer.heads, layer.out_channels
    rows = lambda k: slice(k * channels, (k + 1) * channels)        # noqa: E731
    split = []
    for k in range(heads):
        one = type(layer)(layer.in_channels, channels, heads=1, residual=layer.residual,
                          add_self_loops=layer.add_self_loops,
                          **({'share_weights': layer.share_weights}
                             if isinstance(layer, gat_pyg.GATv2Conv) else {}))
        state = {}
        for name, value in layer.state_dict().items():
            if name.startswith(('att', )):
                state[name] = value[:, k:k + 1]
            elif name.startswith(('lin', )) or (name.startswith(('res', 'bias'))
                                                and layer.concat):
                state[name] = value[rows(k)]
            else:
                state[name] = value
        one.load_state_dict(state, strict=True)
        split.append(one.eval())
    return split


def _official(layer, x_src, x_dst, edge_index, masks_src, masks_dst):
    dense_src = x_src.to_dense()
    outs = []
    for k, one in enumerate(one_head_layers(layer)):
        head_src = dense_src * masks_src[k]
        x = head_src if x_dst is None else (head_src, x_dst.to_dense() * masks_dst[k])
        outs.append(one(x, edge_index))
    return torch.cat(outs, dim=-1) if layer.concat else torch.stack(outs).mean(dim=0)


@FAST
@pytest.mark.parametrize('form', ['dense', 'coo', 'csr'])
@pytest.mark.parametrize('kind', ['gat', 'gatv2'])
@pytest.mark.parametrize('concat,residual', [(True, False), (True, True), (False, True)])
def test_matches_the_official_heads_on_their_own_masks(kind, form, concat, residual,
                                                      fast_path):
    heads, num_nodes = 3, 9
    edge_index = random_graph(num_nodes, num_nodes, 24, seed=1, isolated=[2])
    x = _sparse_features(num_nodes, 6, seed=2)
    torch.manual_seed(0)
    layer = OURS[kind](6, 4, heads=heads, concat=concat, residual=residual,
                       head_input_dropout=P, fast_path=fast_path)
    randomize_parameters(layer, seed=3)
    torch.manual_seed(5)
    out = layer.train()(_as_form(x, form), edge_index)
    masks = _replayed_masks(_as_form(x, form), heads, _seed(5))
    # x is x_dst too: a head's source and target ends (GATv2's lin_l and lin_r) share its mask.
    expected = _official(layer, x, None, edge_index, masks, masks)
    torch.testing.assert_close(out, expected, **PATH_TOL)
    # The masks are on, and differ between heads.
    assert not torch.allclose(out, layer.eval()(x, edge_index), atol=1e-3)
    assert not torch.equal(masks[0], masks[1])


@FAST
@pytest.mark.parametrize('form', ['dense', 'coo'])
def test_bipartite_inputs_get_a_mask_each(form, fast_path):
    """A pair (x_src, x_dst) of different tensors: the sources' masks are drawn first, then the
    targets' (a GATConv with lin_src and lin_dst)."""
    heads = 2
    edge_index = random_graph(8, 5, 20, seed=6)
    x_src, x_dst = _sparse_features(8, 6, seed=7), _sparse_features(5, 3, seed=8)
    torch.manual_seed(0)
    layer = gat_pyg.GATConv((6, 3), 4, heads=heads, add_self_loops=False, residual=True,
                            head_input_dropout=P, fast_path=fast_path)
    randomize_parameters(layer, seed=9)
    torch.manual_seed(10)
    out = layer.train()((_as_form(x_src, form), _as_form(x_dst, form)), edge_index)
    torch.manual_seed(10)
    seed_src = torch.randint(0, 2**62, (), dtype=torch.int64)
    seed_dst = torch.randint(0, 2**62, (), dtype=torch.int64)
    expected = _official(layer, x_src, x_dst, edge_index,
                         _replayed_masks(_as_form(x_src, form), heads, seed_src),
                         _replayed_masks(_as_form(x_dst, form), heads, seed_dst))
    torch.testing.assert_close(out, expected, **PATH_TOL)


@pytest.mark.parametrize('kind', ['gat', 'gatv2'])
def test_eval_and_rate_zero_are_todays_layer(kind):
    edge_index = random_graph(7, 7, 20, seed=11)
    x = features(7, 5, seed=12)
    torch.manual_seed(0)
    today = OURS[kind](5, 3, heads=2, residual=True)
    for rate, training in ((0.5, False), (0.0, True)):
        layer = OURS[kind](5, 3, heads=2, residual=True, head_input_dropout=rate)
        layer.load_state_dict(today.state_dict(), strict=True)
        assert torch.equal(layer.train(training)(x, edge_index),
                           today.train(training)(x, edge_index))


def test_a_seed_repeats_the_masks_and_heads_differ():
    """x = I: head k's row n is W_k[:, n] / (1 - p) or 0, so the output shows every mask."""
    heads, n = 4, 300
    x = torch.eye(n).to_sparse()
    weight = torch.randn(heads * 2, n)
    torch.manual_seed(1)
    out = HeadInputs(x, heads, P).linear(weight)
    torch.manual_seed(1)
    assert torch.equal(out, HeadInputs(x, heads, P).linear(weight))
    scaled = weight.view(heads, 2, n).permute(2, 0, 1) / (1 - P)      # [n, H, 2]
    kept = out.ne(0).all(-1)
    assert torch.equal(out.ne(0).any(-1), kept)
    torch.testing.assert_close(out[kept], scaled[kept])
    assert abs(kept.double().mean().item() - (1 - P)) < 0.03
    shared = (kept[:, 1:] == kept[:, :1]).double().mean().item()
    assert abs(shared - (P ** 2 + (1 - P) ** 2)) < 0.05      # independent, not one mask


def test_sparse_features_are_never_densified():
    """20,000 x 50,000 bag-of-words rows: 8 dense copies would need 32 GB."""
    gen = torch.Generator().manual_seed(2)
    num_nodes, channels, nnz = 20_000, 50_000, 60_000
    row = torch.randint(num_nodes, (nnz, ), generator=gen)
    col = torch.randint(channels, (nnz, ), generator=gen)
    x = torch.sparse_coo_tensor(torch.stack([row, col]), torch.ones(nnz),
                                (num_nodes, channels)).coalesce()
    inputs = HeadInputs(x, 8, 0.6)
    assert inputs.stacked is None
    assert abs(inputs.values.numel() / (8 * x._nnz()) - 0.4) < 0.01
    out = inputs.linear(torch.randn(64, channels, generator=gen))
    assert out.shape == (num_nodes, 8, 8)


def test_the_dense_masked_layer_draws_the_sparse_ones_masks():
    mask = torch.rand(6, 6, generator=torch.Generator().manual_seed(13)) < 0.5
    mask.fill_diagonal_(True)
    x = features(6, 4, seed=14)
    torch.manual_seed(0)
    sparse = gat_pyg.MaskedGATConv(4, 3, heads=2, head_input_dropout=P).train()
    randomize_parameters(sparse, seed=15)
    dense = gat_pyg.DenseMaskedGATConv(4, 3, heads=2, head_input_dropout=P).train()
    dense.load_state_dict(sparse.state_dict(), strict=True)
    torch.manual_seed(16)
    out = sparse(x, mask)
    torch.manual_seed(16)
    torch.testing.assert_close(dense(x[None], mask)[0], out, **PATH_TOL)
    assert not torch.allclose(out, sparse.eval()(x, mask), atol=1e-3)


def test_a_lazy_layer_initialises_from_the_first_training_call():
    edge_index = random_graph(7, 7, 20, seed=17)
    x = features(7, 5, seed=18)
    layer = gat_pyg.GATConv(-1, 3, heads=2, head_input_dropout=P).train()
    layer(x.to_sparse(), edge_index)
    assert layer.lin.weight.shape == (6, 5)


def test_the_rate_must_be_a_probability():
    with pytest.raises(ValueError, match=r'^head_input_dropout: expected a probability'):
        gat_pyg.GATConv(4, 2, head_input_dropout=1.5)

"""The kernels (the C++ ones, and the pure-torch csr ones registered over them for the CPU)
against PyG's ``propagate`` route (1e-5) on random graphs with isolated nodes, self-loops,
duplicate edges, bipartite inputs and edge features: outputs, attention, every parameter
gradient and the input gradients; plus the graph cache and the automatic choice."""
import pytest
import torch

from gat_pyg import kernels
from gat_pyg.kernels.csr import attend_kernel
from reference import (KINDS, OURS, PATH_TOL, as_input_form, clone_inputs, features, loss_of,
                       random_graph, randomize_parameters, require_native,
                       require_torch_sparse, split_returned)


@pytest.fixture(autouse=True, params=['csr', 'native'])
def implementation(request):
    """Every test here compares one backend's kernels with the plain path."""
    if request.param == 'csr':
        with kernels.use_backend('csr', 'cpu'):
            yield request.param
    else:
        require_native()
        yield request.param


def path_pair(kind, *args, seed=0, **kwargs):
    torch.manual_seed(seed)
    fast = OURS[kind](*args, fast_path=True, **kwargs)
    randomize_parameters(fast, seed)
    plain = OURS[kind](*args, fast_path=False, **kwargs)
    plain.load_state_dict(fast.state_dict(), strict=True)
    return fast, plain


def compare_paths(fast, plain, x, edge_index, edge_attr=None):
    is_pair = isinstance(x, tuple)
    xs = x if is_pair else (x, )
    results = []
    for layer in (fast, plain):
        inputs = clone_inputs(*xs, edge_attr)
        layer_x = tuple(inputs[:len(xs)]) if is_pair else inputs[0]
        out, returned = layer(layer_x, edge_index, edge_attr=inputs[-1],
                              return_attention_weights=True)
        edges, alpha = split_returned(returned)
        (loss_of(out) + loss_of(alpha, seed=2)).backward()
        results.append((out, edges, alpha, inputs, dict(layer.named_parameters())))
    (out_f, edges_f, alpha_f, in_f, par_f), (out_p, edges_p, alpha_p, in_p, par_p) = results
    torch.testing.assert_close(out_f, out_p, **PATH_TOL)
    if isinstance(edges_f, torch.Tensor) and edges_f.layout == torch.strided:
        assert torch.equal(edges_f, edges_p)
    torch.testing.assert_close(alpha_f, alpha_p, **PATH_TOL)
    for name in par_f:
        assert (par_f[name].grad is None) == (par_p[name].grad is None), name
        if par_f[name].grad is not None:
            torch.testing.assert_close(par_f[name].grad, par_p[name].grad, **PATH_TOL,
                                       msg=lambda m, name=name: f'{name}: {m}')
    for a, b in zip(in_f, in_p):
        if a is not None:
            assert a.grad is not None
            torch.testing.assert_close(a.grad, b.grad, **PATH_TOL)
    return out_f


@pytest.mark.parametrize('seed', [0, 1, 2])
@pytest.mark.parametrize('kind', KINDS)
def test_random_graphs(kind, seed):
    gen = torch.Generator().manual_seed(seed)
    num_nodes = int(torch.randint(20, 60, (1, ), generator=gen))
    edge_index = random_graph(num_nodes, num_nodes, 4 * num_nodes, seed=seed,
                              isolated=[1, num_nodes - 2])
    x = features(num_nodes, 7, seed=seed + 10)
    edge_attr = features(edge_index.size(1), 3, seed=seed + 20)
    for kwargs in (dict(heads=4, residual=True),
                   dict(heads=2, concat=False, edge_dim=3, fill_value='add'),
                   dict(heads=3, add_self_loops=False, edge_dim=3)):
        fast, plain = path_pair(kind, 7, 5, seed=seed, **kwargs)
        compare_paths(fast, plain, x, edge_index,
                      edge_attr if 'edge_dim' in kwargs else None)


@pytest.mark.parametrize('kind,with_x_dst', [('gat', True), ('gat', False), ('gatv2', True)])
def test_bipartite(kind, with_x_dst):
    num_src, num_dst = 40, 15
    edge_index = random_graph(num_src, num_dst, 120, seed=3, isolated=[0, 7])
    x_src, x_dst = features(num_src, 6, seed=4), features(num_dst, 4, seed=5)
    edge_attr = features(edge_index.size(1), 2, seed=6)
    for add_self_loops in (True, False):
        fast, plain = path_pair(kind, (6, 4), 3, heads=2, edge_dim=2, residual=with_x_dst,
                                add_self_loops=add_self_loops, fill_value='min')
        x = (x_src, x_dst if with_x_dst else None)
        out = compare_paths(fast, plain, x, edge_index, edge_attr)
        assert out.shape[0] == (num_dst if with_x_dst else num_src)


@pytest.mark.parametrize('form', ['csr', 'coo', 'sparse_tensor'])
@pytest.mark.parametrize('kind', KINDS)
def test_sparse_adjacencies(kind, form):
    if form == 'sparse_tensor':
        require_torch_sparse()
    edge_index = random_graph(30, 30, 100, seed=7, duplicates=False, isolated=[5])
    adj = as_input_form(edge_index, form, 30, 30)
    x = features(30, 6, seed=8)
    fast, plain = path_pair(kind, 6, 4, heads=3)
    compare_paths(fast, plain, x, adj)


@pytest.mark.parametrize('kind', KINDS)
def test_many_score_blocks(kind, monkeypatch):
    """GATv2's score is computed (and recomputed in backward) in blocks of edges; make the
    blocks tiny so that block boundaries fall inside every destination's segment."""
    monkeypatch.setattr(attend_kernel, 'SCORE_BLOCK_ELEMENTS', 13)
    edge_index = random_graph(25, 25, 90, seed=9, isolated=[3])
    x = features(25, 5, seed=10)
    edge_attr = features(edge_index.size(1), 2, seed=11)
    fast, plain = path_pair(kind, 5, 3, heads=2, edge_dim=2)
    compare_paths(fast, plain, x, edge_index, edge_attr)


@pytest.mark.parametrize('kind', KINDS)
def test_sparse_node_features(kind):
    """Bag-of-words features as torch.sparse COO / CSR give the numbers of the dense ones."""
    edge_index = random_graph(20, 20, 60, seed=12)
    dense = features(20, 9, seed=13)
    dense = dense * (dense > 1.0)           # mostly zeros
    fast, plain = path_pair(kind, 9, 4, heads=2)
    expected = plain(dense, edge_index)
    for x in (dense.to_sparse(), dense.to_sparse_csr()):
        torch.testing.assert_close(fast(x, edge_index), expected, **PATH_TOL)
        torch.testing.assert_close(plain(x, edge_index), expected, **PATH_TOL)


@pytest.mark.parametrize('kind', KINDS)
def test_graph_cache_follows_the_graph(kind):
    """The sorted graph is cached per edge_index tensor; an in-place edit, another tensor or
    another number of nodes must not reuse a stale entry."""
    edge_index = random_graph(20, 20, 60, seed=14)
    x = features(20, 5, seed=15)
    fast, plain = path_pair(kind, 5, 3, heads=2)
    first = fast(x, edge_index)
    torch.testing.assert_close(fast(x, edge_index), first, atol=0, rtol=0)

    edge_index[1, :10] = edge_index[1, :10].flip(0)         # in place: version changes
    torch.testing.assert_close(fast(x, edge_index), plain(x, edge_index), **PATH_TOL)
    assert not torch.allclose(fast(x, edge_index), first, atol=1e-4)

    other = random_graph(20, 20, 60, seed=16)
    torch.testing.assert_close(fast(x, other), plain(x, other), **PATH_TOL)

    # Same tensor, fewer nodes seen as sources/targets of a bipartite call.
    bipartite, plain_b = path_pair(kind, 5, 3, heads=2, add_self_loops=False)
    small = edge_index[:, (edge_index[1] < 8)].contiguous()
    for x_dst in (x[:8], x[:12]):
        torch.testing.assert_close(bipartite((x, x_dst), small), plain_b((x, x_dst), small),
                                   **PATH_TOL)
    # The cache is not part of the model's state and does not break copies.
    import copy
    import pickle
    clone = copy.deepcopy(fast)
    torch.testing.assert_close(clone(x, edge_index), fast(x, edge_index), atol=0, rtol=0)
    pickle.loads(pickle.dumps(fast))
    assert set(fast.state_dict()) == set(plain.state_dict())


@pytest.mark.parametrize('kind', KINDS)
def test_automatic_choice(kind, monkeypatch):
    """fast_path=None takes the kernels, and PyG's propagate whenever message hooks are
    registered (the Explainer's way of reading the attention)."""
    edge_index = random_graph(10, 10, 30, seed=17)
    x = features(10, 5, seed=18)
    layer, plain = path_pair(kind, 5, 3, heads=2)
    layer.fast_path = None
    calls = []
    original = layer.propagate

    def spy(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(layer, 'propagate', spy)
    expected = plain(x, edge_index)
    torch.testing.assert_close(layer(x, edge_index), expected, **PATH_TOL)
    assert len(calls) == 0
    seen = []
    handle = layer.register_message_forward_hook(lambda m, inputs, out: seen.append(out))
    torch.testing.assert_close(layer(x, edge_index), expected, **PATH_TOL)
    handle.remove()
    assert len(calls) == 1 and len(seen) == 1
    layer(x, edge_index)
    assert len(calls) == 1


@pytest.mark.parametrize('kind', KINDS)
def test_the_chosen_implementation_runs(kind, implementation, monkeypatch):
    """The automatic choice calls the attention operator, which runs the C++ kernel when it is
    loaded and the csr one when that is registered for the CPU (its sparse products are
    counted), never PyG's propagate here; which one runs is what kernel_for says."""
    layer = OURS[kind](5, 3, heads=2)
    monkeypatch.setattr(layer, 'propagate', lambda *a, **k: pytest.fail('plain path taken'))
    assert kernels.kernel_for(f'{kind}_forward', 'cpu', torch.float32) == implementation
    products = []
    real = attend_kernel.spmm
    monkeypatch.setattr(attend_kernel, 'spmm', lambda *a: products.append(1) or real(*a))
    layer(features(10, 5, seed=1), random_graph(10, 10, 30, seed=2))
    assert len(products) == (1 if implementation == 'csr' else 0)

"""The prepared graph: built once per graph, shared by layers, never stale, never re-sorted when
the input is already sorted; and the failures it replaced (inference tensors, writes the version
counter does not see, per-layer copies, round trips, ignored hooks)."""
import copy
import pickle

import numpy as np
import pytest
import torch
import torch_geometric
from torch_geometric import EdgeIndex
from torch_geometric.explain.algorithm.utils import set_masks
from torch_geometric.utils import add_self_loops, remove_self_loops
from torch_geometric.utils.sparse import index2ptr

import gat_pyg.nn.graph.build as graph_module
import gat_pyg.nn.graph.cache as cache_module
from gat_pyg import GATConv, GATv2Conv, MaskedGATConv
from gat_pyg.models import GAT, GATv2
from gat_pyg.nn.graph import GraphCache, PreparedGraph, prepare_graph
from reference import (FAST, KINDS, OURS, PATH_TOL, THEIRS, as_input_form, features, random_graph,
                       randomize_parameters, require_torch_sparse)

EXACT = dict(atol=0, rtol=0)


def fresh_copy(layer):
    """The same parameters in a new layer (nothing cached)."""
    other = copy.deepcopy(layer)
    return other


def pyg_looped(edge_index, num_src, num_dst, loops):
    """The edge list PyG's GATConv attends over, in its order."""
    if not loops:
        return edge_index
    edge_index, _ = remove_self_loops(edge_index)
    return add_self_loops(edge_index, num_nodes=min(num_src, num_dst))[0]


def check_structure(graph: PreparedGraph, looped: torch.Tensor, num_dst: int):
    """``graph`` holds ``looped`` (caller order) sorted stably by target."""
    order = torch.sort(looped[1], stable=True).indices
    assert torch.equal(graph.src, looped[0, order])
    assert torch.equal(graph.dst, looped[1, order])
    assert torch.equal(graph.ptr, index2ptr(looped[1, order], num_dst))
    assert torch.equal(graph.edge_index, looped)
    perm = torch.arange(looped.size(1)) if graph.perm is None else graph.perm
    assert torch.equal(looped[:, perm], torch.stack([graph.src, graph.dst]))
    t_ptr, t_col, t_perm = graph.transpose()
    assert torch.equal(graph.src[t_perm], torch.sort(graph.src, stable=True).values)
    assert torch.equal(t_col, graph.dst[t_perm])
    assert torch.equal(t_ptr, index2ptr(graph.src[t_perm], graph.num_src))


# --- structure --------------------------------------------------------------------------------

@pytest.mark.parametrize('loops', [True, False])
@pytest.mark.parametrize('sizes', [(30, 30), (30, 12), (12, 30)])
@pytest.mark.parametrize('presorted', [False, True])
def test_edge_index_is_prepared_as_pyg_orders_it(loops, sizes, presorted):
    num_src, num_dst = sizes
    edge_index = random_graph(num_src, num_dst, 80, seed=1, isolated=[2, 5])
    if presorted:   # a NeighborLoader-like input: targets non-decreasing
        edge_index = edge_index[:, torch.sort(edge_index[1], stable=True).indices]
    graph = prepare_graph(edge_index, sizes, add_self_loops=loops)
    check_structure(graph, pyg_looped(edge_index, num_src, num_dst, loops), num_dst)


@pytest.mark.parametrize('form', ['csr', 'coo', 'sparse_tensor', 'edge_index_col',
                                  'edge_index_row', 'edge_index_unsorted'])
@pytest.mark.parametrize('loops', [True, False])
def test_every_input_form_gives_the_same_graph(form, loops):
    if form == 'sparse_tensor':
        require_torch_sparse()
    edge_index = random_graph(20, 20, 60, seed=2, duplicates=False, isolated=[3])
    if form.startswith('edge_index'):
        adj = EdgeIndex(edge_index, sparse_size=(20, 20))
        if form != 'edge_index_unsorted':
            adj = adj.sort_by(form.split('_')[-1])[0]
        plain_input = adj.as_tensor()
    else:
        adj = as_input_form(edge_index, form, 20, 20)
        plain_input = torch.stack([*reversed(
            torch_geometric.utils.to_edge_index(as_input_form(edge_index, 'coo', 20, 20))[0])])
    graph = prepare_graph(adj, (20, 20), add_self_loops=loops)
    reference = prepare_graph(plain_input, (20, 20), add_self_loops=loops)
    # The same edges into every target (the order within a target may differ by form).
    for i in range(20):
        assert sorted(graph.src[graph.ptr[i]:graph.ptr[i + 1]].tolist()) == \
            sorted(reference.src[reference.ptr[i]:reference.ptr[i + 1]].tolist())
    assert torch.equal(graph.ptr, reference.ptr)


@pytest.mark.parametrize('form', ['csr', 'sparse_tensor', 'coo'])
def test_sparse_adjacency_keeps_its_own_entry_order(form):
    """A sparse adjacency's looped entries are in its canonical order (targets, then sources),
    which is also the sorted order: the attention goes back in the adjacency as is."""
    if form == 'sparse_tensor':
        require_torch_sparse()
    edge_index = random_graph(9, 9, 25, seed=3, duplicates=False)
    graph = prepare_graph(as_input_form(edge_index, form, 9, 9), add_self_loops=True)
    assert graph.perm is None
    keys = graph.dst * 9 + graph.src
    assert torch.equal(keys, torch.sort(keys).values)           # row-major, sources sorted
    assert (graph.src[graph.ptr[:-1]] >= 0).all()
    loops = (graph.src == graph.dst).sum()
    assert loops == 9


def test_already_sorted_inputs_are_not_sorted(monkeypatch):
    sorts = []
    real_sort = torch.sort
    monkeypatch.setattr(graph_module.torch, 'sort',
                        lambda *a, **k: sorts.append(1) or real_sort(*a, **k))
    edge_index = random_graph(15, 15, 40, seed=4, duplicates=False)
    by_target = edge_index[:, real_sort(edge_index[1], stable=True).indices]
    inputs = {'csr': as_input_form(edge_index, 'csr', 15, 15),
              'EdgeIndex by column': EdgeIndex(edge_index, sparse_size=(15, 15)).sort_by('col')[0],
              'target-sorted edge_index': by_target}
    if torch_geometric.typing.WITH_TORCH_SPARSE:
        inputs['SparseTensor'] = as_input_form(edge_index, 'sparse_tensor', 15, 15)
    for name, adj in inputs.items():
        for loops in (True, False):
            sorts.clear()
            prepare_graph(adj, (15, 15), add_self_loops=loops)
            assert sorts == [], (name, loops)
    prepare_graph(edge_index, (15, 15))
    assert sorts == [1]                        # an unsorted input: one stable sort


@pytest.mark.parametrize('kind', KINDS)
def test_neighbor_loader_batches_are_not_sorted_again(kind, monkeypatch):
    require_torch_sparse()
    from torch_geometric.data import Data
    from torch_geometric.loader import NeighborLoader
    edge_index = random_graph(200, 200, 1500, seed=5, duplicates=False)
    data = Data(x=features(200, 6, seed=6), edge_index=edge_index, num_nodes=200)
    loader = NeighborLoader(data, num_neighbors=[5, 5], batch_size=16, shuffle=True)
    layer = OURS[kind](6, 4, heads=2, fast_path=True)
    plain = fresh_copy(layer)
    plain.fast_path = False
    sorts = []
    real_sort = torch.sort
    monkeypatch.setattr(graph_module.torch, 'sort',
                        lambda *a, **k: sorts.append(1) or real_sort(*a, **k))
    for batch, _ in zip(loader, range(3)):
        sorts.clear()           # the sampler sorts for itself
        with torch.no_grad():   # no backward: the transposed order is never needed
            out = layer(batch.x, batch.edge_index)
        assert sorts == []
        torch.testing.assert_close(out, plain(batch.x, batch.edge_index), **PATH_TOL)


# --- layers use it, and accept it ---------------------------------------------------------------

@pytest.mark.parametrize('kind', KINDS)
@FAST
def test_layer_takes_a_prepared_graph(kind, fast_path):
    edge_index = random_graph(12, 12, 40, seed=7)
    x, edge_attr = features(12, 5, seed=8), features(edge_index.size(1), 3, seed=9)
    layer = OURS[kind](5, 3, heads=2, edge_dim=3, fill_value='max', fast_path=fast_path)
    randomize_parameters(layer, 10)
    expected, (ei, alpha) = layer(x, edge_index, edge_attr, return_attention_weights=True)
    graph = layer.prepare(edge_index, 12, edge_attr=edge_attr)
    out, (ei_g, alpha_g) = layer(x, graph, return_attention_weights=True)
    torch.testing.assert_close(out, expected, **EXACT)
    assert torch.equal(ei_g, ei)
    torch.testing.assert_close(alpha_g, alpha, **EXACT)
    # Edge features may also come with the call, for a graph prepared without them.
    bare = layer.prepare(edge_index, 12)
    torch.testing.assert_close(layer(x, bare, edge_attr), expected, **EXACT)


def test_prepared_graph_mismatches_are_refused():
    edge_index = random_graph(10, 10, 30, seed=11)
    x = features(10, 4, seed=12)
    graph = prepare_graph(edge_index, 10, add_self_loops=True)
    with pytest.raises(ValueError, match=r'^edge_index: the PreparedGraph was prepared with '
                                         r'add_self_loops=True.*add_self_loops=False'):
        GATConv(4, 2, add_self_loops=False)(x, graph)
    with pytest.raises(ValueError, match=r'^edge_index: the PreparedGraph has \(num_src, '
                                         r'num_dst\) = \(10, 10\).*\(9, 9\)'):
        GATConv(4, 2)(x[:9], graph)
    num_edges = edge_index.size(1)
    with_attr = prepare_graph(edge_index, 10, edge_attr=features(num_edges, 2, seed=1))
    with pytest.raises(ValueError, match='carries edge features.*without edge_dim'):
        GATConv(4, 2)(x, with_attr)
    with pytest.raises(ValueError, match="fill_value='mean'.*fill_value='add'"):
        GATConv(4, 2, edge_dim=2, fill_value='add')(x, with_attr)
    with pytest.raises(ValueError, match=rf'^edge_attr: expected one row per edge \({num_edges}\)'):
        GATConv(4, 2, edge_dim=2)(x, graph, features(num_edges + 1, 2, seed=2))
    with pytest.raises(ValueError, match=r'^size: pass the number of nodes'):
        prepare_graph(edge_index)


@pytest.mark.parametrize('model_cls', [GAT, GATv2])
def test_a_model_prepares_each_graph_once(model_cls, monkeypatch):
    builds = []
    real_build = graph_module._build
    monkeypatch.setattr(graph_module, '_build', lambda *a: builds.append(1) or real_build(*a))
    torch.manual_seed(0)
    model = model_cls(6, 4, 3, num_layers=3, heads=2).eval()
    edge_index = random_graph(25, 25, 80, seed=13)
    x = features(25, 6, seed=14)
    first = model(x, edge_index)
    assert builds == [1]                        # three layers, one preparation
    torch.testing.assert_close(model(x, edge_index), first, **EXACT)
    assert builds == [1]                        # same contents: reused
    model(x, edge_index.clone())
    assert builds == [1]
    edge_index.numpy()[0, :5] = 0               # a write the version counter does not see
    changed = model(x, edge_index)
    assert builds == [1, 1]
    reference = fresh_copy(model)
    torch.testing.assert_close(changed, reference(x, edge_index), **EXACT)
    # Every layer read the same prepared graph object.
    seen = []
    for conv in model.convs:
        conv.register_forward_pre_hook(lambda m, args: seen.append(args[1]))
    model(x, edge_index)
    assert len(seen) == 3 and all(g is seen[0] for g in seen)
    assert isinstance(seen[0], PreparedGraph)


# --- the reported failures --------------------------------------------------------------------

@pytest.mark.parametrize('make', ['gat', 'gatv2', 'masked'])
def test_inputs_created_under_inference_mode(make):
    """Issue: 'Inference tensors do not track version counter' (PyG's layers work)."""
    torch.manual_seed(0)
    conv = {'gat': lambda: GATConv(5, 4), 'gatv2': lambda: GATv2Conv(5, 4),
            'masked': lambda: MaskedGATConv(5, 4)}[make]().eval()
    x = torch.randn(6, 5)
    edges = [[0, 1, 2], [1, 2, 0]]
    expected = conv(x, torch.tensor(edges))
    with torch.inference_mode():
        out = conv(torch.randn(6, 5) * 0 + x, torch.tensor(edges))
        again = conv(x, torch.tensor(edges))
    torch.testing.assert_close(out, expected, **EXACT)
    torch.testing.assert_close(again, expected, **EXACT)
    with torch.no_grad():
        no_grad_edges = torch.tensor(edges)
    with torch.inference_mode():
        inference_edges = torch.tensor(edges)
    # Indices made under no_grad / inference mode, used later with autograd on.
    conv.train()
    for edges_t in (no_grad_edges, inference_edges):
        x_grad = x.clone().requires_grad_()
        conv(x_grad, edges_t).sum().backward()
        assert x_grad.grad is not None and torch.isfinite(x_grad.grad).all()


EDITS = {
    'in place': lambda e: e[1].__setitem__(slice(0, 4), 0),
    'through .numpy()': lambda e: e.numpy().__setitem__((1, slice(0, 4)), 1),
    'through .data': lambda e: e.data[1, :4].fill_(2),
    'through a view': lambda e: e[:, :4][1].fill_(3),
}


@pytest.mark.parametrize('edit', list(EDITS))
@pytest.mark.parametrize('kind', KINDS)
def test_edits_the_version_counter_misses_are_seen(kind, edit):
    """Issue: after ``e.numpy()[1] = 0`` the next call returned the old graph's output."""
    torch.manual_seed(1)
    edge_index = random_graph(10, 10, 30, seed=15)
    x = features(10, 5, seed=16)
    layer = OURS[kind](5, 3, heads=2)
    before = layer(x, edge_index)
    version = edge_index._version
    EDITS[edit](edge_index)
    if edit in ('through .numpy()', 'through .data'):
        assert edge_index._version == version       # the case the old cache got wrong
    after = layer(x, edge_index)
    torch.testing.assert_close(after, fresh_copy(layer)(x, edge_index), **EXACT)
    assert not torch.allclose(after, before)


# --- caches -----------------------------------------------------------------------------------

def test_graph_cache_compares_contents_and_starts_empty_in_copies():
    cache = GraphCache()
    edge_index = random_graph(6, 6, 10, seed=17)
    graph = prepare_graph(edge_index, 6)
    cache.put(edge_index, (6, ), graph)
    assert cache.get(edge_index, (6, )) is graph
    assert cache.get(edge_index.clone(), (6, )) is graph       # other memory, same contents
    assert cache.get(edge_index, (7, )) is None                 # other sizes
    assert cache.get(edge_index[:, :-1], (6, )) is None         # other shape
    assert cache.get(edge_index.int(), (6, )) is None           # other dtype
    edge_index.numpy()[0, 0] = (edge_index[0, 0].item() + 1) % 6
    assert cache.get(edge_index, (6, )) is None
    assert pickle.loads(pickle.dumps(cache)).get(edge_index, (6, )) is None
    assert copy.deepcopy(cache).get(edge_index, (6, )) is None


def test_layer_state_has_no_cache():
    layer = GATConv(4, 2)
    layer(features(5, 4, seed=0), random_graph(5, 5, 8, seed=1))
    assert set(layer.state_dict()) == {'att_src', 'att_dst', 'bias', 'lin.weight'}
    clone = pickle.loads(pickle.dumps(layer))
    assert clone.graph_cache.get(random_graph(5, 5, 8, seed=1), (5, 5, True)) is None


# --- hooks and explain masks with fast_path=True ------------------------------------------------

@pytest.mark.parametrize('kind', KINDS)
def test_fast_path_true_refuses_hooks_and_explain_masks(kind):
    edge_index = random_graph(8, 8, 20, seed=18)
    x = features(8, 4, seed=19)
    layer = OURS[kind](4, 2, heads=2, fast_path=True)
    handle = layer.register_message_forward_hook(lambda *args: None)
    with pytest.raises(ValueError, match=r'^fast_path=True: .*message-passing hooks are registered'):
        layer(x, edge_index)
    handle.remove()
    handle = layer.register_message_forward_pre_hook(lambda *args: None)
    with pytest.raises(ValueError, match=r'^fast_path=True: .*message-passing hooks are registered'):
        layer(x, edge_index)
    handle.remove()
    edge_mask = torch.nn.Parameter(torch.randn(edge_index.size(1)))
    set_masks(layer, edge_mask, edge_index)
    with pytest.raises(ValueError, match=r'^fast_path=True: .*explain mode is on'):
        layer(x, edge_index)
    # The automatic choice honours the mask, as PyG's layer does.
    layer.fast_path = None
    theirs = THEIRS[kind](4, 2, heads=2)
    theirs.load_state_dict({k: v for k, v in layer.state_dict().items() if k != '_edge_mask'})
    set_masks(theirs, edge_mask, edge_index)
    torch.testing.assert_close(layer(x, edge_index), theirs(x, edge_index), atol=1e-6,
                               rtol=1e-5)


# --- bipartite self-loop features (replayed bug report) ---------------------------------------

def _reduce(rows, how, width):
    if not isinstance(how, str):
        return np.full(width, how)
    if not rows:
        return np.zeros(width)
    rows = np.stack(rows)
    return {'add': rows.sum(0), 'sum': rows.sum(0), 'mean': rows.mean(0), 'max': rows.max(0),
            'min': rows.min(0), 'mul': rows.prod(0)}[how]


def _leaky(z, slope):
    return np.where(z > 0, z, slope * z)


def bipartite_reference(kind, layer, x_src, x_dst, edges, edge_attr, fill_value):
    """The layer's formula written out edge by edge, with loops for the nodes that are both
    source and target and their features reduced from all incoming edges."""
    p = {k: v.detach().double().numpy() for k, v in layer.state_dict().items()}
    heads, channels = layer.heads, layer.out_channels
    num_loops = min(len(x_src), len(x_dst))
    kept = [(j, i, a) for (j, i), a in zip(edges, edge_attr) if j != i]
    loops = [(i, i, _reduce([a for _, t, a in kept if t == i], fill_value, edge_attr.shape[1]))
             for i in range(num_loops)]
    looped = kept + loops
    if kind == 'gat':
        hs = (x_src @ p['lin_src.weight'].T).reshape(-1, heads, channels)
        ht = (x_dst @ p['lin_dst.weight'].T).reshape(-1, heads, channels)
        we = p['lin_edge.weight'].reshape(heads, channels, -1)

        def score(j, i, a):
            return _leaky((hs[j] * p['att_src'][0]).sum(-1) + (ht[i] * p['att_dst'][0]).sum(-1)
                          + ((we @ a) * p['att_edge'][0]).sum(-1), 0.2)
        messages = hs
    else:
        hs = (x_src @ p['lin_l.weight'].T + p['lin_l.bias']).reshape(-1, heads, channels)
        ht = (x_dst @ p['lin_r.weight'].T + p['lin_r.bias']).reshape(-1, heads, channels)
        we = p['lin_edge.weight']

        def score(j, i, a):
            z = hs[j] + ht[i] + (we @ a).reshape(heads, channels)
            return (_leaky(z, 0.2) * p['att'][0]).sum(-1)
        messages = hs
    out = np.zeros((len(x_dst), heads, channels))
    for i in range(len(x_dst)):
        incoming = [(j, a) for j, t, a in looped if t == i]
        if not incoming:
            continue
        e = np.stack([score(j, i, a) for j, a in incoming])            # [k, H]
        w = np.exp(e - e.max(0))
        w /= w.sum(0)
        out[i] = sum(w[k][:, None] * messages[j] for k, (j, _) in enumerate(incoming))
    return out.reshape(len(x_dst), -1) + p['bias']


@pytest.mark.parametrize('fill_value', ['mean', 'add', 'max', 'min', 'mul', 0.5])
@FAST
@pytest.mark.parametrize('kind', KINDS)
def test_bipartite_more_targets_than_sources_with_reduced_loop_features(kind, fast_path,
                                                                        fill_value):
    """Issue: ``GATConv((3, 3), 4, edge_dim=2)`` on 2 sources / 4 targets crashed in PyG's
    scatter (the loop features were reduced over min(N_src, N_dst) slots only); PyG's layer
    crashes the same way, so the expected value is the formula's."""
    gen = torch.Generator().manual_seed(20)
    x_src, x_dst = torch.randn(2, 3, generator=gen), torch.randn(4, 3, generator=gen)
    edge_index = torch.tensor([[0, 1, 1, 0, 1], [0, 3, 2, 1, 3]])
    edge_attr = torch.randn(5, 2, generator=gen)
    layer = OURS[kind]((3, 3), 4, heads=2, edge_dim=2, fill_value=fill_value,
                       fast_path=fast_path)
    randomize_parameters(layer, 21)
    out = layer((x_src, x_dst), edge_index, edge_attr)
    assert out.shape == (4, 8)
    expected = bipartite_reference(kind, layer, x_src.double().numpy(),
                                   x_dst.double().numpy(), edge_index.t().tolist(),
                                   edge_attr.double().numpy(), fill_value)
    torch.testing.assert_close(out.double(), torch.from_numpy(expected), atol=1e-5, rtol=1e-5)


# --- adjacency values are never silently dropped ----------------------------------------------

@pytest.mark.parametrize('form', ['csr', 'coo', 'sparse_tensor'])
@pytest.mark.parametrize('kind', KINDS)
@pytest.mark.parametrize('edge_dim', [None, 1])
def test_adjacency_with_edge_weights_is_refused(kind, form, edge_dim):
    """Issue: PyG's own test_gat_conv_with_edge_attr, with our layer swapped in, passed a
    SparseTensor carrying edge weights that the layer then ignored."""
    if form == 'sparse_tensor':
        require_torch_sparse()
        from torch_sparse import SparseTensor
    edge_index = random_graph(6, 6, 12, seed=22, duplicates=False)
    weights = torch.rand(edge_index.size(1)) + 0.5
    if form == 'sparse_tensor':
        adj = SparseTensor(row=edge_index[1], col=edge_index[0], value=weights,
                           sparse_sizes=(6, 6))
    else:
        adj = torch.sparse_coo_tensor(edge_index.flip(0), weights, (6, 6)).coalesce()
        adj = adj.to_sparse_csr() if form == 'csr' else adj
    for fast_path in (True, False):
        layer = OURS[kind](4, 2, edge_dim=edge_dim, add_self_loops=False, fast_path=fast_path)
        with pytest.raises(ValueError, match=r'^edge_index: this sparse adjacency stores values '
                                             r'other than 1.*edge_attr'):
            layer(features(6, 4, seed=0), adj)
    masked = MaskedGATConv(4, 2)
    with pytest.raises(ValueError, match='mask'):
        masked(features(6, 4, seed=0), adj if form != 'sparse_tensor' else adj.to_dense())


def test_graph_cache_keeps_narrow_copies_and_compares_them_widened(monkeypatch):
    """int64 indices that fit in int32 are copied as int32 (half the memory) and compared in
    chunks widened back: equal contents hit, any change misses (also in a later chunk and beyond
    the int32 range, where narrowing would wrap around); indices that do not fit stay int64."""
    monkeypatch.setattr(cache_module, '_COMPARE_CHUNK', 7)   # several chunks on a small graph
    cache = GraphCache()
    edge_index = random_graph(20, 20, 60, seed=3)
    prepared = prepare_graph(edge_index, 20)
    cache.put(edge_index, (20, 20, True), prepared)
    (copy, dtype), = cache._entry[1]
    assert copy.dtype == torch.int32 and dtype == torch.int64
    assert cache.get(edge_index.clone(), (20, 20, True)) is prepared
    changed = edge_index.clone()
    changed[1, -1] = (changed[1, -1] + 1) % 20            # the last chunk differs
    assert cache.get(changed, (20, 20, True)) is None
    wrapped = edge_index.clone()
    wrapped[0, 5] += 2**32                                   # equal once narrowed to int32
    assert cache.get(wrapped, (20, 20, True)) is None
    assert cache.get(edge_index.to(torch.int32), (20, 20, True)) is None   # another dtype
    huge = edge_index.clone()
    huge[0, 0] = 2**40
    cache.put(huge, (20, 20, True), prepared)
    assert cache._entry[1][0][0].dtype == torch.int64
    assert cache.get(huge.clone(), (20, 20, True)) is prepared


def test_permutation_is_int32_and_still_restores_the_callers_order():
    edge_index = random_graph(30, 30, 90, seed=5)
    graph = prepare_graph(edge_index, 30)
    assert graph.perm.dtype == torch.int32
    # edge_index (built through index_copy_, which needs int64) and to_input_order agree.
    values = torch.arange(graph.num_edges, dtype=torch.float32)
    pairs = torch.stack([graph.src, graph.dst]).float()
    assert torch.equal(graph.to_input_order(pairs.t()).t(), graph.edge_index.float())
    assert torch.equal(graph.to_input_order(values)[graph.perm.long()], values)

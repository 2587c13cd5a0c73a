"""The node classifiers: one base model, each subclass only choosing its layer."""
import pytest
import torch
from torch_geometric.nn import GCNConv, SAGEConv

from gat_pyg import GATConv, GATv2Conv
from gat_pyg.models import GAT, GCN, MLP, MODELS, BaseModel, GATv2, NodeLinear
from gat_pyg.nn.functional import dropout_features

# A 5-node literal graph: a directed 4-cycle plus node 4 pointing at node 0; 6 features.
EDGE_INDEX = torch.tensor([[0, 1, 2, 3, 4], [1, 2, 3, 0, 0]])


def _x() -> torch.Tensor:
    x = torch.zeros(5, 6)
    x[[0, 1, 2, 3, 4, 4], [0, 2, 4, 1, 3, 5]] = 1.0
    return x


def _build(name: str, **kwargs) -> BaseModel:
    torch.manual_seed(0)
    return MODELS[name](6, 4, 3, **kwargs)


@pytest.mark.parametrize('name', list(MODELS))
def test_logits_shape_and_sparse_input_matches_dense(name):
    model = _build(name).eval()
    dense = model(_x(), EDGE_INDEX)
    assert dense.shape == (5, 3)
    assert torch.allclose(model(_x().to_sparse(), EDGE_INDEX), dense, atol=1e-6)


@pytest.mark.parametrize('name', list(MODELS))
def test_dropout_only_in_training(name):
    model = _build(name, dropout=0.5)
    model.train()
    torch.manual_seed(1)
    a = model(_x(), EDGE_INDEX)
    b = model(_x(), EDGE_INDEX)
    assert not torch.equal(a, b)
    model.eval()
    assert torch.equal(model(_x(), EDGE_INDEX), model(_x(), EDGE_INDEX))


@pytest.mark.parametrize('name,conv', [('gat', GATConv), ('gatv2', GATv2Conv)])
def test_attention_models_built_from_the_configs_have_the_paper_shape(name, conv):
    from gat_pyg.train import TrainConfig, build_model

    model = build_model(TrainConfig(dataset='cora', model=name), 1433, 7)
    assert type(model) is MODELS[name]
    hidden, output = model.convs
    assert type(hidden) is conv and type(output) is conv
    assert (hidden.in_channels, hidden.out_channels, hidden.heads, hidden.concat) == \
        (1433, 8, 8, True)
    assert (output.in_channels, output.out_channels, output.heads, output.concat) == \
        (64, 7, 1, False)
    assert hidden.dropout == output.dropout == 0.6
    assert hidden.message_dropout == (0.6 if name == 'gat' else 0.0)
    assert model.dropout == 0.6
    assert isinstance(model.act, torch.nn.ELU)
    pubmed = build_model(TrainConfig(dataset='pubmed', model=name), 500, 3)
    assert pubmed.convs[1].heads == 8 and not pubmed.convs[1].concat     # 8 averaged heads
    assert pubmed(torch.rand(4, 500), torch.tensor([[0, 1], [1, 2]])).shape == (4, 3)


def test_gcn_is_pyg_gcnconv_and_mlp_ignores_the_graph():
    from gat_pyg.train import TrainConfig, build_model

    gcn = build_model(TrainConfig(model='gcn'), 6, 3)
    assert type(gcn) is GCN and all(type(conv) is GCNConv for conv in gcn.convs)
    assert gcn.convs[0].bias is None and isinstance(gcn.act, torch.nn.ReLU)   # Kipf: no bias
    assert (gcn.hidden_channels, gcn.dropout) == (16, 0.5)
    mlp = build_model(TrainConfig(model='mlp'), 6, 3)
    assert type(mlp) is MLP and mlp.convs[0].bias is None and mlp.dropout == 0.5
    mlp = _build('mlp').eval()
    assert all(type(conv) is NodeLinear for conv in mlp.convs)
    assert torch.equal(mlp(_x(), EDGE_INDEX), mlp(_x(), EDGE_INDEX.flip(0)[:, :2]))


def test_a_subclass_only_says_which_layer():
    class SAGE(BaseModel):
        def init_conv(self, in_channels, out_channels, last, **kwargs):
            return SAGEConv(in_channels, out_channels)

    model = SAGE(6, 4, 3, num_layers=3, dropout=0.1).eval()
    assert len(model.convs) == 3
    assert model(_x(), EDGE_INDEX).shape == (5, 3)


@pytest.mark.parametrize('name', list(MODELS))
def test_parameter_groups(name):
    model = _build(name)
    everything = model.parameter_groups(5e-4)
    assert len(everything) == 1 and everything[0]['weight_decay'] == 5e-4
    first, rest = model.parameter_groups(5e-4, first_layer_only=True)
    assert first['weight_decay'] == 5e-4 and rest['weight_decay'] == 0.0
    assert {id(p) for p in first['params']} == {id(p) for p in model.convs[0].parameters()}
    ids = [id(p) for p in first['params'] + rest['params']]
    assert sorted(ids) == sorted(id(p) for p in model.parameters())


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match=r'dropout.*1\.5'):
        GCN(6, 4, 3, dropout=1.5)
    for name, bad, error, message in (
            ('attn_dropout', 1.5, ValueError, r'^attn_dropout: expected a probability in \[0, '
                                              r'1\], got 1\.5$'),
            ('message_dropout', -0.1, ValueError, r'^message_dropout: expected a probability'),
            ('attn_dropout', True, TypeError, r'^attn_dropout: expected a probability, a '
                                              r'number in \[0, 1\], got bool True$'),
            ('message_dropout', '0.5', TypeError, r"^message_dropout: .* got str '0\.5'$")):
        for cls in (GAT, GATv2):
            with pytest.raises(error, match=message):
                cls(6, 4, 3, **{name: bad})
    with pytest.raises(ValueError, match='num_layers must be a positive int'):
        MLP(6, 4, 3, num_layers=0)
    with pytest.raises(NotImplementedError):
        BaseModel(6, 4, 3)


@pytest.mark.parametrize('name', ['gat', 'gatv2'])
def test_model_returns_every_layers_attention(name):
    """PyG issue 6861: a model-level ``return_attention_weights``. Each layer's weights are
    those of the layer called alone on that layer's input."""
    model = _build(name, num_layers=3, heads=2).eval()
    x = _x()
    logits, attention = model(x, EDGE_INDEX, return_attention_weights=True)
    torch.testing.assert_close(logits, model(x, EDGE_INDEX), atol=0, rtol=0)
    assert len(attention) == 3
    h = x
    for i, (conv, (edge_index, alpha)) in enumerate(zip(model.convs, attention)):
        out, (edges_alone, alpha_alone) = conv(h, EDGE_INDEX, return_attention_weights=True)
        assert torch.equal(edge_index, edges_alone)
        torch.testing.assert_close(alpha, alpha_alone, atol=0, rtol=0)
        assert alpha.shape == (EDGE_INDEX.size(1) + 5, 1 if i == 2 else 2)
        h = model.act(out) if i < 2 else out
    torch.testing.assert_close(h, logits, atol=0, rtol=0)


def test_model_attention_without_attention_layers_is_none_per_layer():
    model = _build('gcn').eval()
    logits, attention = model(_x(), EDGE_INDEX, return_attention_weights=True)
    assert attention == [None, None]
    torch.testing.assert_close(logits, model(_x(), EDGE_INDEX))


@pytest.mark.parametrize('name', ['gat', 'gatv2'])
def test_attention_explainer_on_a_model(name):
    from torch_geometric.explain import Explainer
    from torch_geometric.explain.algorithm import AttentionExplainer
    model = _build(name, heads=2).eval()
    explainer = Explainer(model=model, algorithm=AttentionExplainer(), explanation_type='model',
                          edge_mask_type='object',
                          model_config=dict(mode='multiclass_classification', task_level='node',
                                            return_type='raw'))
    explanation = explainer(_x(), EDGE_INDEX, index=0)
    mask = explanation.edge_mask
    assert mask.shape == (EDGE_INDEX.size(1), )
    # Node 0 receives from 3 and 4 (hop 1) and, through 3, from 2 (hop 2); 0 -> 1 and
    # 1 -> 2 do not reach node 0 within two layers.
    assert (mask[[2, 3, 4]] > 0).all() and (mask[[0, 1]] == 0).all()


def test_a_prepared_graph_is_refused_by_gcn():
    from gat_pyg.nn.graph import prepare_graph
    graph = prepare_graph(EDGE_INDEX, 5)
    with pytest.raises(TypeError, match='^edge_index: a PreparedGraph .*GCN takes'):
        _build('gcn')(_x(), graph)
    # an attention model takes it, and gives what the edge_index gives
    model = _build('gat').eval()
    torch.testing.assert_close(model(_x(), model.prepare_graph(EDGE_INDEX, 5)),
                               model(_x(), EDGE_INDEX), atol=0, rtol=0)


def test_model_defaults_are_pygs_neutral_ones():
    """One source per default (issue 20): the papers' settings live in configs/ only; a model
    class built without arguments is what PyG's models give (one head, no dropout, ReLU, a
    bias), and GAT and GATv2 no longer disagree on message dropout."""
    import inspect

    from torch_geometric.nn.models import GAT as PyGGAT
    from torch_geometric.nn.models.basic_gnn import BasicGNN

    pyg = inspect.signature(BasicGNN.__init__).parameters
    pyg_conv = inspect.signature(GATConv.__init__).parameters
    for name in ('gat', 'gatv2'):
        model = MODELS[name](6, 4, 3)
        first, last = model.convs
        assert model.dropout == pyg['dropout'].default == 0.0
        assert type(model.act) is type(PyGGAT(6, 4, 2).act) is torch.nn.ReLU
        assert first.heads == last.heads == pyg_conv['heads'].default == 1
        assert first.dropout == last.dropout == 0.0
        assert first.message_dropout == last.message_dropout == 0.0
        assert first.head_input_dropout == 0.0 and not model.per_head_dropout
        assert getattr(first, 'att_bias', None) is None
        assert first.bias is not None and first.res is None
    for name in ('gcn', 'mlp'):
        model = MODELS[name](6, 4, 3)
        assert model.dropout == 0.0 and isinstance(model.act, torch.nn.ReLU)
        assert model.convs[0].bias is not None


@pytest.mark.parametrize('name', ['gat', 'gatv2'])
@pytest.mark.parametrize('sparse', [False, True])
def test_per_head_dropout_moves_the_input_dropout_into_each_layers_heads(name, sparse):
    """The model drops nothing itself: each layer draws ``dropout`` per head
    (``head_input_dropout``), so a training step is the layers' own chain under one seed; off,
    it is the one-mask chain it always was. The parameters, and eval outputs, are the same."""
    x = _x().to_sparse() if sparse else _x()
    per_head = _build(name, heads=2, dropout=0.5, per_head_dropout=True, act='elu')
    shared = _build(name, heads=2, dropout=0.5, act='elu')
    assert per_head.state_dict().keys() == shared.state_dict().keys()
    per_head.load_state_dict(shared.state_dict(), strict=True)
    assert [c.head_input_dropout for c in per_head.convs] == [0.5, 0.5]
    assert [c.head_input_dropout for c in shared.convs] == [0.0, 0.0]
    for model, layer_input in ((per_head, lambda h: h),
                               (shared, lambda h: dropout_features(h, 0.5, True))):
        torch.manual_seed(3)
        logits = model.train()(x, EDGE_INDEX)
        torch.manual_seed(3)
        first, second = model.convs
        by_hand = second(layer_input(model.act(first(layer_input(x), EDGE_INDEX))), EDGE_INDEX)
        torch.testing.assert_close(logits, by_hand, atol=0, rtol=0)
    torch.manual_seed(3)
    assert not torch.allclose(per_head(x, EDGE_INDEX), logits)
    torch.testing.assert_close(per_head.eval()(x, EDGE_INDEX), shared.eval()(x, EDGE_INDEX),
                               atol=0, rtol=0)


def test_att_bias_is_a_gat_option():
    model = _build('gat', heads=2, att_bias=True)
    assert [tuple(c.att_bias.shape) for c in model.convs] == [(2, ), (1, )]
    assert all(c.att_bias is None for c in _build('gat', heads=2).convs)
    with pytest.raises(ValueError, match='^att_bias: GATv2Conv has no attention bias'):
        _build('gatv2', att_bias=True)

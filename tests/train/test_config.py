"""TrainConfig: the dataclass is the schema, every configs/ file loads, each pair resolves to
exactly its file whichever way it is asked for, errors name the key and its origin."""
import dataclasses
from pathlib import Path

import pytest
import yaml

from gat_pyg.train.config import TrainConfig, load_config, parse_override, resolve_config
from gat_pyg.train.schema import REQUIRED, config_fields, neutral_default

CONFIG_DIR = Path(__file__).resolve().parents[2] / 'configs'
CONFIG_FILES = sorted(CONFIG_DIR.glob('*.yaml'))
PAIRS = [tuple(p.stem.split('_')) for p in CONFIG_FILES]


def test_one_file_per_model_and_dataset():
    names = {p.stem for p in CONFIG_FILES}
    assert names == {f'{d}_{m}' for d in ('cora', 'citeseer', 'pubmed')
                     for m in ('gat', 'gatv2', 'gcn', 'mlp')} | {'ppi_gat'}


@pytest.mark.parametrize('path', CONFIG_FILES, ids=lambda p: p.name)
def test_every_config_file_loads_and_round_trips(path):
    config = load_config(path)
    assert path.stem == f'{config.dataset}_{config.model}'
    assert TrainConfig.from_dict(config.to_dict()) == config
    assert config.split == (None if config.dataset == 'ppi' else 'public')


def _yaml_chain(path):
    """What a file says, read here with plain PyYAML and its `extends` followed by hand: the
    reference the package's resolver is held to."""
    values = yaml.safe_load(path.read_text())
    parent = values.pop('extends', None)
    return {**_yaml_chain(path.parent / parent), **values} if parent else values


@pytest.mark.parametrize('dataset,model', PAIRS, ids=['_'.join(p) for p in PAIRS])
def test_every_way_of_asking_for_a_pair_gives_exactly_its_file(dataset, model):
    """TrainConfig(dataset=, model=), from_dict and the CLI's resolver (no --config) are the
    file's settings, key for key; the keys no file sets are the neutral run defaults."""
    expected = _yaml_chain(CONFIG_DIR / f'{dataset}_{model}.yaml')
    by_file = load_config(CONFIG_DIR / f'{dataset}_{model}.yaml')
    assert TrainConfig(dataset=dataset, model=model) == by_file
    assert TrainConfig.from_dict({'dataset': dataset, 'model': model}) == by_file
    assert resolve_config(None, {'dataset': dataset, 'model': model}) == by_file
    assert TrainConfig(dataset=dataset.upper(), model=model.upper()) == by_file
    resolved = by_file.to_dict()
    assert {k: resolved[k] for k in expected} == {k: float(v) if isinstance(resolved[k], float)
                                                  else v for k, v in expected.items()}
    for key in set(resolved) - set(expected):
        assert neutral_default(dataclasses.fields(TrainConfig)[
            [f.name for f in config_fields()].index(key)]) == resolved[key], key


def test_the_papers_settings_have_no_default_outside_the_files():
    """One source per default: TrainConfig's own defaults are only how a run executes."""
    neutral = {f.name for f in config_fields() if neutral_default(f) is not REQUIRED}
    assert neutral == {'dataset', 'model', 'seed', 'sparse_features', 'batch_size',
                       'num_neighbors', 'inference_batch_size', 'device', 'precision',
                       'deterministic', 'backend'}
    # and no dataclass default at all: every key is resolved at construction
    assert all(repr(f.default) == '<from the config file>' for f in config_fields())


def test_paper_hyper_parameters():
    for dataset in ('cora', 'citeseer', 'pubmed'):
        for model in ('gat', 'gatv2'):
            c = load_config(CONFIG_DIR / f'{dataset}_{model}.yaml')
            pubmed = dataset == 'pubmed'
            assert (c.hidden_channels, c.heads, c.out_heads) == (8, 8, 8 if pubmed else 1)
            assert (c.dropout, c.attn_dropout) == (0.6, 0.6)
            # The official GAT code's dropout of the projected features; GATv2 follows PyG.
            assert c.message_dropout == (0.6 if model == 'gat' else 0.0)
            # The official code's other two differences are options, off (docs/official_code.md).
            assert (c.per_head_dropout, c.att_bias) == (False, False)
            assert (c.lr, c.weight_decay) == ((0.01, 1e-3) if pubmed else (0.005, 5e-4))
            assert (c.early_stopping, c.patience, c.epochs) == ('gat', 100, 100_000)
            assert not c.weight_decay_first_layer_only
        gcn = load_config(CONFIG_DIR / f'{dataset}_gcn.yaml')
        assert (gcn.hidden_channels, gcn.dropout, gcn.lr, gcn.weight_decay) == \
            (16, 0.5, 0.01, 5e-4)
        assert gcn.weight_decay_first_layer_only and not gcn.bias
        assert (gcn.epochs, gcn.early_stopping, gcn.patience) == (200, 'gcn', 10)


def test_ppi_is_the_papers_table_3_model():
    c = load_config(CONFIG_DIR / 'ppi_gat.yaml')
    assert (c.dataset, c.model, c.num_layers, c.hidden_channels, c.heads, c.out_heads) == \
        ('ppi', 'gat', 3, 256, 4, 6)
    assert (c.dropout, c.attn_dropout, c.weight_decay, c.lr) == (0.0, 0.0, 0.0, 0.005)
    assert c.residual and c.graphs_per_batch == 2
    assert (c.early_stopping, c.patience) == ('gat', 100)
    # Planetoid-only keys are not part of a PPI run, nor PPI's of a Planetoid run.
    assert 'split' not in c.to_dict() and 'sparse_features' not in c.to_dict()
    assert 'graphs_per_batch' not in TrainConfig().to_dict()
    assert TrainConfig().residual is False and 'residual' in TrainConfig().to_dict()


def test_defaults_are_the_paper_gat_on_cora_and_gcn_gets_kipfs_settings():
    assert TrainConfig() == load_config(CONFIG_DIR / 'cora_gat.yaml')
    gcn = TrainConfig(model='gcn')
    assert (gcn.lr, gcn.dropout, gcn.hidden_channels, gcn.epochs, gcn.early_stopping,
            gcn.patience, gcn.bias, gcn.weight_decay_first_layer_only, gcn.act) == \
        (0.01, 0.5, 16, 200, 'gcn', 10, False, True, 'relu')
    # The attention keys do not exist for a GCN: None, and left out of its YAML.
    assert (gcn.heads, gcn.attn_dropout, gcn.message_dropout, gcn.residual) == (None,) * 4
    # GATv2 takes PyG's message dropout, not the official GAT code's (the three disagreed).
    assert TrainConfig(model='gatv2').message_dropout == 0.0
    assert TrainConfig(model='gat').message_dropout == 0.6
    # Explicit keys win over the file; the rest stays the file's.
    tuned = TrainConfig(model='gcn', lr=0.02, seed=3)
    assert (tuned.lr, tuned.seed, tuned.hidden_channels) == (0.02, 3, 16)


def test_a_key_the_model_does_not_read_is_refused_however_the_config_is_built():
    with pytest.raises(ValueError, match="^config key 'heads' is only used by models gat, gatv2, "
                                         "not by 'gcn'; remove it$"):
        TrainConfig(model='gcn', heads=8)
    with pytest.raises(ValueError, match="'split' is only used by datasets cora, citeseer, "
                                         "pubmed, not by 'ppi'"):
        TrainConfig(dataset='ppi', split='full')
    gat = TrainConfig()
    with pytest.raises(ValueError, match="config key 'heads' is only used by models gat, gatv2"):
        dataclasses.replace(gat, model='gcn')
    # None is "not set": replacing a GCN's seed keeps its (absent) attention keys absent
    assert dataclasses.replace(TrainConfig(model='gcn'), seed=4).seed == 4


def test_a_pair_without_a_file_must_be_given_every_setting(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"no config file for model 'gcn' on dataset "
                                                r"'ppi': .*ppi_gcn\.yaml does not exist, and it "
                                                r"would give hidden_channels, num_layers, "):
        TrainConfig(dataset='ppi', model='gcn')
    full = {k: v for k, v in TrainConfig(model='gcn').to_dict().items()
            if k not in ('dataset', 'split', 'sparse_features', 'batch_size', 'num_neighbors',
                         'inference_batch_size')}
    ppi_gcn = TrainConfig(dataset='ppi', graphs_per_batch=2, **full)
    assert (ppi_gcn.dataset, ppi_gcn.model, ppi_gcn.lr) == ('ppi', 'gcn', 0.01)


def test_config_dir_chooses_the_files_the_unset_keys_come_from(tmp_path):
    (tmp_path / 'cora_gcn.yaml').write_text(
        (CONFIG_DIR / 'cora_gcn.yaml').read_text().replace('lr: 0.01', 'lr: 0.03'))
    assert TrainConfig(model='gcn', config_dir=tmp_path).lr == 0.03
    assert TrainConfig.from_dict({'model': 'gcn'}, config_dir=tmp_path).lr == 0.03
    assert resolve_config(None, {'model': 'gcn'}, config_dir=tmp_path).lr == 0.03
    assert TrainConfig(model='gcn').lr == 0.01
    (tmp_path / 'cora_gat.yaml').write_text('model: gat\nlr: 0.01\n')
    with pytest.raises(ValueError, match=r"^config keys 'split', 'hidden_channels', 'num_layers', "
                                         r"'heads', .*'patience' are not set: neither the "
                                         r"arguments nor .*cora_gat\.yaml \(and the files it "
                                         r"extends\) give them; add them to the file"):
        TrainConfig(config_dir=tmp_path)
    with pytest.raises(ValueError, match=r"^config key 'patience' is not set: "):
        TrainConfig(config_dir=tmp_path, **{k: v for k, v in TrainConfig().to_dict().items()
                                            if k != 'patience'})


def _write(tmp_path, text):
    path = tmp_path / 'c.yaml'
    path.write_text(text)
    return path


def test_unknown_key_is_named_with_the_file_and_its_likely_meaning(tmp_path):
    path = _write(tmp_path, 'model: gat\nlearning_rate: 0.1\n')
    with pytest.raises(ValueError, match=r"c\.yaml: unknown config key 'learning_rate' \(did you "
                                         r"mean 'lr'\?\); known keys: dataset, split, model"):
        load_config(path)
    for other, ours in (('n_heads', 'heads'), ('l2_coef', 'weight_decay'),
                        ('hidden_chanels', 'hidden_channels'), ('num_epochs', 'epochs')):
        with pytest.raises(ValueError, match=f"unknown config key '{other}' \\(did you mean "
                                             f"'{ours}'\\?\\)"):
            TrainConfig.from_dict({other: 1})
    with pytest.raises(ValueError, match=r"unknown config key 'zzz'; known keys"):
        TrainConfig.from_dict({'zzz': 1})


@pytest.mark.parametrize('text', ['', '\n\n', '# nothing but a comment\n'])
def test_an_empty_or_comment_only_file_is_refused_naming_it(tmp_path, text):
    path = _write(tmp_path, text)
    with pytest.raises(ValueError, match=f'^{path}: the file holds no settings \\(it is empty or '
                                         'only comments\\); a config file is a YAML mapping'):
        load_config(path)


@pytest.mark.parametrize('text,key', [('lr: fast', 'lr'), ('epochs: 1.5', 'epochs'),
                                      ('bias: 1', 'bias'), ('heads: true', 'heads'),
                                      ('dataset: 3', 'dataset')])
def test_wrong_type_is_named(tmp_path, text, key):
    with pytest.raises(TypeError, match=f"config key '{key}': expected"):
        load_config(_write(tmp_path, text))


@pytest.mark.parametrize('values,message', [
    ({'dataset': 'reddit'}, "'dataset': unknown dataset 'reddit'; expected one of cora, "
                            "citeseer, pubmed, ppi"),
    ({'model': 'gin'}, "'model': unknown model 'gin'.*expected one of gat, gatv2, gcn, mlp"),
    ({'model': 'gcn', 'dataset': 'reddit', 'heads': 8}, "unknown dataset 'reddit'"),
    ({'dropout': 1.5}, r"^config key 'dropout': expected a probability in \[0, 1\], got 1\.5$"),
    ({'model': 'gatv2', 'attn_dropout': -0.1}, r"'attn_dropout': expected a probability in "
                                               r"\[0, 1\], got -0\.1"),
    ({'message_dropout': float('nan')}, r"'message_dropout': expected a probability"),
    ({'act': 'relu6'}, r"'act': unknown act 'relu6' \(did you mean 'relu'\?\); expected one "
                       r"of relu, elu, leaky_relu"),
    ({'epochs': 0}, "'epochs': must be >= 1"),
    ({'lr': 0}, "'lr': must be > 0"),
    ({'model': 'gcn', 'heads': 8}, "'heads' is only used by models gat, gatv2, not by 'gcn'"),
    ({'graphs_per_batch': 2}, "'graphs_per_batch' is only used by datasets ppi, not by 'cora'"),
    ({'dataset': 'ppi', 'split': 'full'}, "'split' is only used by datasets cora, citeseer, "
                                          "pubmed, not by 'ppi'"),
    ({'dataset': 'ppi', 'graphs_per_batch': 0}, "'graphs_per_batch': must be >= 1"),
    ({'model': 'gatv2', 'att_bias': True}, "^config key 'att_bias': only model 'gat' has an "
                                           "attention bias, not 'gatv2'"),
    ({'model': 'gcn', 'per_head_dropout': True}, "'per_head_dropout' is only used by models "
                                                 "gat, gatv2, not by 'gcn'"),
])
def test_bad_values_are_named(values, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig.from_dict(values)


def test_dropout_one_is_a_probability_as_in_torch():
    assert TrainConfig(dropout=1.0).dropout == 1.0
    assert isinstance(TrainConfig(dropout=0).dropout, float)


def test_a_bad_value_in_the_pairs_file_is_blamed_on_that_file(tmp_path):
    (tmp_path / 'cora_gcn.yaml').write_text('extends: base.yaml\nmodel: gcn\n')
    (tmp_path / 'base.yaml').write_text(
        (CONFIG_DIR / 'cora_gcn.yaml').read_text().replace('dropout: 0.5', 'dropout: 5'))
    with pytest.raises(ValueError, match=f"^{tmp_path / 'base.yaml'}: config key 'dropout': "
                                         'expected a probability in'):
        TrainConfig(model='gcn', config_dir=tmp_path)
    # an explicit good value is nobody's fault but is used
    assert TrainConfig(model='gcn', dropout=0.1, config_dir=tmp_path).dropout == 0.1


def test_yaml_reads_exponent_floats_and_int_as_float(tmp_path):
    config = load_config(_write(tmp_path, 'weight_decay: 5e-4\nlr: 1\n'))
    assert config.hidden_channels == 8          # the rest: configs/cora_gat.yaml
    assert config.weight_decay == 5e-4 and isinstance(config.lr, float)


def test_overrides_apply_on_top_and_are_validated(tmp_path):
    path = CONFIG_DIR / 'cora_gcn.yaml'
    config = load_config(path, {'lr': 0.02, 'epochs': 7})
    assert (config.lr, config.epochs, config.hidden_channels) == (0.02, 7, 16)
    # The value came from the overrides, not from the file: the message says so.
    with pytest.raises(ValueError, match="^overrides: config key 'heads' is only used by models "
                                         "gat, gatv2, not by 'gcn' \\(model 'gcn' from "
                                         ".*cora_gcn.yaml\\); remove it from the overrides$"):
        load_config(path, {'heads': 4})
    with pytest.raises(ValueError, match="^command line: config key 'lr': must be > 0"):
        load_config(path, {'lr': -1.0}, overrides_origin='command line')
    with pytest.raises(ValueError, match=r"c\.yaml: config key .lr.: must be > 0"):
        load_config(_write(tmp_path, 'model: gcn\nlr: -1\n'), {'epochs': 3})


def test_non_mapping_file_is_refused(tmp_path):
    with pytest.raises(ValueError, match='must be a YAML mapping'):
        load_config(_write(tmp_path, '- 1\n- 2\n'))


def test_resolved_yaml_omits_keys_the_model_does_not_use():
    gcn = TrainConfig.from_dict({'model': 'gcn'})
    assert 'heads' not in gcn.to_dict() and 'attn_dropout' not in gcn.to_dict()
    assert 'heads' in TrainConfig().to_dict()
    assert 'extends' not in TrainConfig(dataset='citeseer').to_yaml()


def test_parse_override_types_text_per_field():
    assert parse_override('lr', '1e-2') == 0.01
    assert parse_override('epochs', '50') == 50
    assert parse_override('bias', 'False') is False and parse_override('bias', 'yes') is True
    assert parse_override('model', 'gcn') == 'gcn'
    for key, text in (('epochs', 'many'), ('bias', 'maybe'), ('lr', 'x')):
        with pytest.raises(ValueError, match=f"config key '{key}': expected"):
            parse_override(key, text)
    with pytest.raises(ValueError, match="unknown config key 'nope'"):
        parse_override('nope', '1')
    with pytest.raises(ValueError, match="unknown config key 'learning_rate' \\(did you mean "
                                         "'lr'\\?\\)"):
        parse_override('learning_rate', '0.1')


def test_every_field_has_help():
    for f in dataclasses.fields(TrainConfig):
        assert f.metadata['help'], f.name


def test_package_exports_stay_functions_whatever_the_import_order():
    """gat_pyg.train exports the function reproduce from its submodule of the same name; the
    lazy package keeps the function even when the submodule is imported first. Neither the
    command line nor the reproduction's planning imports torch (torch loads when a run
    trains)."""
    import subprocess
    import sys

    code = ('import gat_pyg.train.reproduce, gat_pyg.cli; from gat_pyg.train import reproduce; '
            'import gat_pyg.train as t; print(callable(reproduce), type(t.reproduce).__name__, '
            "sorted(m for m in ('torch',) if m in sys.modules))")
    root = Path(__file__).resolve().parents[2]
    printed = subprocess.run([sys.executable, '-c', 'import sys; ' + code], capture_output=True,
                             text=True, env={'PYTHONPATH': str(root), 'PATH': ''}, check=True)
    assert printed.stdout.split() == ['True', 'function', '[]']


def test_the_official_codes_options_reach_the_model():
    from gat_pyg.train import build_model

    model = build_model(TrainConfig(dataset='citeseer', per_head_dropout=True, att_bias=True),
                        3703, 6)
    assert model.per_head_dropout and model.dropout == 0.6
    assert [c.head_input_dropout for c in model.convs] == [0.6, 0.6]
    assert [tuple(c.att_bias.shape) for c in model.convs] == [(8, ), (1, )]
    off = build_model(TrainConfig(dataset='citeseer'), 3703, 6)
    assert not off.per_head_dropout and all(c.att_bias is None for c in off.convs)
    v2 = build_model(TrainConfig(model='gatv2', per_head_dropout=True), 1433, 7)
    assert [c.head_input_dropout for c in v2.convs] == [0.6, 0.6]

"""TrainConfig: the dataclass is the schema, every configs/ file loads, errors name the key."""
import dataclasses
from pathlib import Path

import pytest

from gat_pyg.train.config import TrainConfig, load_config, parse_override

CONFIG_DIR = Path(__file__).resolve().parents[2] / 'configs'
CONFIG_FILES = sorted(CONFIG_DIR.glob('*.yaml'))


def test_one_file_per_model_and_dataset():
    names = {p.stem for p in CONFIG_FILES}
    assert names == {f'{d}_{m}' for d in ('cora', 'citeseer', 'pubmed')
                     for m in ('gat', 'gatv2', 'gcn', 'mlp')} | {'ppi_gat'}


@pytest.mark.parametrize('path', CONFIG_FILES, ids=lambda p: p.name)
def test_every_config_file_loads_and_round_trips(path):
    config = load_config(path)
    assert path.stem == f'{config.dataset}_{config.model}'
    assert TrainConfig.from_dict(config.to_dict()) == config
    assert config.split == 'public'


def test_paper_hyper_parameters():
    for dataset in ('cora', 'citeseer', 'pubmed'):
        for model in ('gat', 'gatv2'):
            c = load_config(CONFIG_DIR / f'{dataset}_{model}.yaml')
            pubmed = dataset == 'pubmed'
            assert (c.hidden_channels, c.heads, c.out_heads) == (8, 8, 8 if pubmed else 1)
            assert (c.dropout, c.attn_dropout) == (0.6, 0.6)
            # The official GAT code's dropout of the projected features; GATv2 follows PyG.
            assert c.message_dropout == (0.6 if model == 'gat' else 0.0)
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


def test_defaults_are_the_paper_gat_on_cora():
    assert TrainConfig() == load_config(CONFIG_DIR / 'cora_gat.yaml')


def _write(tmp_path, text):
    path = tmp_path / 'c.yaml'
    path.write_text(text)
    return path


def test_unknown_key_is_named_with_the_file(tmp_path):
    path = _write(tmp_path, 'model: gat\nlearning_rate: 0.1\n')
    with pytest.raises(ValueError, match=r"c\.yaml: unknown config key 'learning_rate'"):
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
    ({'dropout': 1.0}, r"'dropout': must be in \[0, 1\)"),
    ({'epochs': 0}, "'epochs': must be >= 1"),
    ({'lr': 0}, "'lr': must be > 0"),
    ({'model': 'gcn', 'heads': 8}, "'heads' is only used by models gat, gatv2, not by 'gcn'"),
    ({'graphs_per_batch': 2}, "'graphs_per_batch' is only used by datasets ppi, not by 'cora'"),
    ({'dataset': 'ppi', 'split': 'full'}, "'split' is only used by datasets cora, citeseer, "
                                          "pubmed, not by 'ppi'"),
    ({'dataset': 'ppi', 'graphs_per_batch': 0}, "'graphs_per_batch': must be >= 1"),
])
def test_bad_values_are_named(values, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig.from_dict(values)


def test_yaml_reads_exponent_floats_and_int_as_float(tmp_path):
    config = load_config(_write(tmp_path, 'weight_decay: 5e-4\nlr: 1\n'))
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


def test_every_field_has_help():
    for f in dataclasses.fields(TrainConfig):
        assert f.metadata['help'], f.name


def test_package_exports_stay_functions_whatever_the_import_order():
    """gat_pyg.train exports the function reproduce from its submodule of the same name; the
    lazy package keeps the function even when the submodule is imported first."""
    import subprocess
    import sys

    code = ('import gat_pyg.train.reproduce, gat_pyg.cli; from gat_pyg.train import reproduce; '
            'import gat_pyg.train as t; print(callable(reproduce), type(t.reproduce).__name__, '
            "sorted(m for m in ('torch',) if m in sys.modules))")
    root = Path(__file__).resolve().parents[2]
    printed = subprocess.run([sys.executable, '-c', 'import sys; ' + code], capture_output=True,
                             text=True, env={'PYTHONPATH': str(root), 'PATH': ''}, check=True)
    assert printed.stdout.split() == ['True', 'function', "['torch']"]

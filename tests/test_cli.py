"""The gat-pyg command: end to end through main(), the README's promises, every --help."""
import argparse
import json
import re
from pathlib import Path

import pytest
import torch
import yaml

from gat_pyg.cli import COMMANDS, build_parser, main

README = Path(__file__).resolve().parents[1] / 'README.md'


def _data_args(data_root, mirror):
    return ['--data-root', str(data_root), '--mirror', str(mirror), '--no-progress']


def test_reproduce_end_to_end_writes_every_file(tmp_path, data_root, mirror, capsys):
    out = tmp_path / 'results'
    status = main(['reproduce', '--datasets', 'cora', '--models', 'gat', 'gcn', '--runs', '2',
                   '--epochs', '3', '--patience', '2', '--out', str(out),
                   *_data_args(data_root, mirror)])
    assert status == 0
    printed = capsys.readouterr().out
    assert '| Dataset | Model | Runs | Test accuracy (%) | Paper (%) |' in printed
    assert '| cora | gat | 2 |' in printed and '| 83.0 |' in printed

    rows = json.loads((out / 'results.json').read_text())['rows']
    assert [(r['dataset'], r['model'], r['runs']) for r in rows] == [('cora', 'gat', 2),
                                                                     ('cora', 'gcn', 2)]
    for row in rows:
        assert {'mean', 'std', 'paper', 'seconds', 'test_acc'} <= set(row)
        assert len(row['test_acc']) == 2 and 0.0 <= row['mean'] <= 1.0
    assert (out / 'results.csv').read_text().splitlines()[0] == \
        'dataset,model,runs,mean,std,paper,seconds'
    assert (out / 'results.md').read_text() in printed

    for model in ('gat', 'gcn'):
        for seed in (0, 1):
            folder = out / 'runs' / f'cora_{model}' / f'seed_{seed}'
            config = yaml.safe_load((folder / 'config.yaml').read_text())
            assert (config['model'], config['seed'], config['epochs']) == (model, seed, 3)
            checkpoint = torch.load(folder / 'checkpoint.pt', weights_only=True)
            assert checkpoint['config'] == config           # the checkpoint embeds the config
            assert (folder / 'metrics.csv').read_text().startswith('epoch,train_loss')
            assert json.loads((folder / 'result.json').read_text())['result']['seed'] == seed

    # Every output file the README's reproduction section lists exists.
    section = README.read_text().split('## Reproducing the GAT paper')[1].split('\n## ')[0]
    listing = section.split('**Output files**')[1].split('From Python')[0]
    named = set(re.findall(r'^\| `(?:[^`]*/)?([\w.]+)`', listing, flags=re.MULTILINE))
    assert {'results.json', 'results.csv', 'results.md', 'config.yaml', 'metrics.csv',
            'checkpoint.pt', 'result.json'} <= named
    written = {p.name for p in out.rglob('*') if p.is_file()}
    assert named <= written, named - written


def test_train_applies_overrides_and_dense_features(tmp_path, data_root, mirror, capsys):
    status = main(['train', '--config', 'configs/cora_gcn.yaml', '--epochs', '4', '--lr',
                   '0.02', '--weight-decay', '1e-3', '--seed', '3', '--dense-features',
                   '--out', str(tmp_path), *_data_args(data_root, mirror)])
    assert status == 0
    assert '| cora | gcn | 3 |' in capsys.readouterr().out
    config = yaml.safe_load((tmp_path / 'runs' / 'cora_gcn' / 'seed_3' / 'config.yaml')
                            .read_text())
    assert (config['epochs'], config['lr'], config['weight_decay']) == (4, 0.02, 1e-3)
    assert config['hidden_channels'] == 16 and config['sparse_features'] is False


def test_bad_override_text_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as info:
        main(['train', '--epochs', 'many'])
    assert info.value.code == 2
    assert "config key 'epochs': expected int, got 'many'" in capsys.readouterr().err


def test_config_errors_exit_with_a_message(tmp_path, data_root, mirror, caplog):
    status = main(['train', '--config', 'configs/cora_gcn.yaml', '--heads', '4',
                   '--out', str(tmp_path), *_data_args(data_root, mirror)])
    assert status == 1
    assert "config key 'heads' is only used by models gat, gatv2" in caplog.text
    assert not (tmp_path / 'runs').exists()


def _subparsers(parser):
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return action.choices


def test_every_command_and_option_is_explained():
    parser = build_parser()
    commands = _subparsers(parser)
    assert set(commands) == set(COMMANDS) and {'train', 'reproduce'} <= set(commands)
    for name, sub in commands.items():
        assert sub.description, name
        text = sub.format_help()
        for action in sub._actions:
            if not action.option_strings:
                continue
            assert action.help and action.help != argparse.SUPPRESS, (name, action.dest)
            assert action.option_strings[0] in text


@pytest.mark.parametrize('command', ['train', 'reproduce'])
def test_help_exits_cleanly(command, capsys):
    with pytest.raises(SystemExit) as info:
        main([command, '--help'])
    assert info.value.code == 0
    assert '--dense-features' in capsys.readouterr().out

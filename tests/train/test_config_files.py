"""Config files: the `extends` chain, the shipped files holding only what differs from the file
they build on, and the configs found from an installed package."""
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

from gat_pyg.train.config import TrainConfig, load_config
from gat_pyg.train.config_files import (EXTENDS, config_path, default_config_dir,
                                        read_config_chain)

ROOT = Path(__file__).resolve().parents[2]
CONFIG_DIR = ROOT / 'configs'
FILES = sorted(CONFIG_DIR.glob('*.yaml'))


def _own(path):
    return yaml.safe_load(path.read_text())


def test_configs_in_a_checkout_are_the_packages_files():
    assert default_config_dir() == (ROOT / 'gat_pyg' / 'configs').resolve()
    assert CONFIG_DIR.resolve() == default_config_dir()       # configs/ links to them
    assert config_path('CiteSeer', 'GAT') == default_config_dir() / 'citeseer_gat.yaml'


def test_the_roots_are_the_three_papers_models():
    roots = {p.name for p in FILES if EXTENDS not in _own(p)}
    assert roots == {'cora_gat.yaml', 'cora_gcn.yaml', 'ppi_gat.yaml'}


@pytest.mark.parametrize('path', [p for p in FILES if EXTENDS in _own(p)], ids=lambda p: p.name)
def test_a_file_sets_only_what_differs_from_the_file_it_extends(path):
    own = {k: v for k, v in _own(path).items() if k != EXTENDS}
    parent, _ = read_config_chain(path.parent / _own(path)[EXTENDS])
    assert own, path.name
    same = {k for k, v in own.items() if parent.get(k) == v}
    assert not same, f'{path.name} repeats {same} of {_own(path)[EXTENDS]}'


def test_what_each_file_changes():
    changes = {p.stem: {k: v for k, v in _own(p).items()} for p in FILES if EXTENDS in _own(p)}
    assert changes['citeseer_gat'] == {EXTENDS: 'cora_gat.yaml', 'dataset': 'citeseer'}
    assert changes['pubmed_gat'] == {EXTENDS: 'cora_gat.yaml', 'dataset': 'pubmed',
                                     'out_heads': 8, 'lr': 0.01, 'weight_decay': 1e-3}
    for dataset in ('cora', 'citeseer', 'pubmed'):
        assert changes[f'{dataset}_gatv2'] == {EXTENDS: f'{dataset}_gat.yaml', 'model': 'gatv2',
                                               'message_dropout': 0.0}
        assert changes[f'{dataset}_mlp'] == {EXTENDS: f'{dataset}_gcn.yaml', 'model': 'mlp'}
    for dataset in ('citeseer', 'pubmed'):
        assert changes[f'{dataset}_gcn'] == {EXTENDS: 'cora_gcn.yaml', 'dataset': dataset}


def test_a_chain_remembers_which_file_set_each_key():
    values, origins = read_config_chain(CONFIG_DIR / 'citeseer_gatv2.yaml')
    assert (values['dataset'], values['model'], values['message_dropout'], values['lr']) == \
        ('citeseer', 'gatv2', 0.0, 0.005)
    assert origins['message_dropout'] == str(CONFIG_DIR / 'citeseer_gatv2.yaml')
    assert origins['dataset'] == str(CONFIG_DIR / 'citeseer_gat.yaml')
    assert origins['lr'] == str(CONFIG_DIR / 'cora_gat.yaml')
    assert EXTENDS not in values


def _write(folder, name, text):
    path = folder / name
    path.write_text(text)
    return path


def test_a_users_file_extends_a_file_and_overrides_apply_last(tmp_path):
    shutil.copy(CONFIG_DIR / 'cora_gat.yaml', tmp_path / 'base.yaml')
    mine = _write(tmp_path, 'mine.yaml', 'extends: base.yaml\nlr: 0.01\nheads: 4\n')
    config = load_config(mine, {'heads': 2})
    assert (config.lr, config.heads, config.hidden_channels) == (0.01, 2, 8)
    # an absolute path works too, from anywhere
    elsewhere = tmp_path / 'sub'
    elsewhere.mkdir()
    absolute = _write(elsewhere, 'x.yaml', f'extends: {CONFIG_DIR / "cora_gcn.yaml"}\nseed: 2\n')
    assert load_config(absolute) == TrainConfig(model='gcn', seed=2)


def test_a_users_file_without_extends_builds_on_its_pairs_file(tmp_path):
    mine = _write(tmp_path, 'mine.yaml', 'dataset: citeseer\nmodel: gcn\nlr: 0.02\n')
    assert load_config(mine) == TrainConfig(dataset='citeseer', model='gcn', lr=0.02)


def test_a_bad_value_is_blamed_on_the_file_of_the_chain_that_set_it(tmp_path):
    _write(tmp_path, 'base.yaml', 'model: gcn\ndropout: 2\n')
    child = _write(tmp_path, 'child.yaml', 'extends: base.yaml\nlr: 0.1\n')
    with pytest.raises(ValueError, match=f"^{tmp_path / 'base.yaml'}: config key 'dropout': "
                                         'expected a probability in \\[0, 1\\], got 2'):
        load_config(child)
    _write(tmp_path, 'base.yaml', 'model: gcn\nlearning_rate: 2\n')
    with pytest.raises(ValueError, match=f"^{tmp_path / 'base.yaml'}: unknown config key "
                                         "'learning_rate' \\(did you mean 'lr'\\?\\)"):
        load_config(child)


def test_a_missing_parent_names_the_file_that_extends_it(tmp_path):
    child = _write(tmp_path, 'child.yaml', 'extends: cora_gta.yaml\nlr: 0.1\n')
    shutil.copy(CONFIG_DIR / 'cora_gat.yaml', tmp_path / 'cora_gat.yaml')
    with pytest.raises(FileNotFoundError, match=f'^{child}: extends: config file '
                                                f'{tmp_path / "cora_gta.yaml"} does not exist '
                                                '\\(did you mean .*cora_gat.yaml\\?\\)'):
        load_config(child)


def test_a_cycle_and_a_malformed_extends_are_refused(tmp_path):
    a = _write(tmp_path, 'a.yaml', 'extends: b.yaml\nlr: 0.1\n')
    _write(tmp_path, 'b.yaml', 'extends: a.yaml\nseed: 1\n')
    with pytest.raises(ValueError, match=f"^{a}: the 'extends' chain comes back to a file already "
                                         f"in it: {a} -> {tmp_path / 'b.yaml'} -> {a}$"):
        load_config(a)
    for bad in ('[a.yaml, b.yaml]', '3', "''"):
        path = _write(tmp_path, 'c.yaml', f'extends: {bad}\n')
        with pytest.raises(ValueError, match=f"^{path}: 'extends' must name one config file "
                                             f'\\(a path relative to {tmp_path}\\), got'):
            load_config(path)
    with pytest.raises(ValueError, match="unknown config key 'base' \\(did you mean 'extends'"):
        TrainConfig.from_dict({'base': 'cora_gat.yaml'})
    with pytest.raises(ValueError, match="^'extends' is not a config key: it names the file a "
                                         'config file builds on'):
        TrainConfig.from_dict({'extends': 'cora_gat.yaml'})


def test_an_empty_parent_is_refused_naming_it(tmp_path):
    _write(tmp_path, 'empty.yaml', '# nothing yet\n')
    child = _write(tmp_path, 'child.yaml', 'extends: empty.yaml\nlr: 0.1\n')
    with pytest.raises(ValueError, match=f"^{tmp_path / 'empty.yaml'}: the file holds no "
                                         'settings'):
        load_config(child)


@pytest.mark.slow
def test_an_installed_package_finds_its_configs(tmp_path):
    """Build a wheel of this checkout (pure Python, no native library), unpack it outside the
    checkout, and resolve a pair from there: the configs travel inside the package."""
    source = tmp_path / 'src'
    tracked = subprocess.run(['git', 'ls-files', '-z', '--cached', '--others',
                              '--exclude-standard'], cwd=ROOT, capture_output=True,
                             check=True).stdout.decode().split('\0')
    for name in filter(None, tracked):
        target = source / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if (ROOT / name).is_symlink():
            os.symlink(os.readlink(ROOT / name), target)
        elif (ROOT / name).is_file():
            shutil.copy2(ROOT / name, target)
    env = dict(os.environ, GAT_PYG_NO_EXTENSION='1')
    built = subprocess.run([sys.executable, '-m', 'pip', 'wheel', '--no-deps',
                            '--no-build-isolation', '-q', '-w', str(tmp_path / 'dist'),
                            str(source)], env=env, capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = (tmp_path / 'dist').glob('gat_pyg-*.whl')
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        shipped = sorted(n for n in names if n.startswith('gat_pyg/configs/'))
        assert shipped == sorted(f'gat_pyg/configs/{p.name}' for p in FILES)
        assert archive.read('gat_pyg/configs/citeseer_gat.yaml') == \
            (CONFIG_DIR / 'citeseer_gat.yaml').read_bytes()
        assert any(n.endswith('METADATA') and
                   b'Version: ' + __import__('gat_pyg').__version__.encode()
                   in archive.read(n) for n in names)
        archive.extractall(tmp_path / 'site')
    code = ('import gat_pyg, sys; from gat_pyg.train import TrainConfig; '
            "c = TrainConfig(dataset='citeseer', model='gcn'); "
            'print(gat_pyg.__file__.startswith(sys.argv[1]), c.lr, c.hidden_channels, c.dataset)')
    found = subprocess.run([sys.executable, '-c', code, str(tmp_path / 'site')],
                           cwd=tmp_path, capture_output=True, text=True,
                           env=dict(os.environ, PYTHONPATH=str(tmp_path / 'site')))
    assert found.stdout.split() == ['True', '0.01', '16', 'citeseer'], found.stderr[-2000:]

"""notebook_settings: small / full mode from the environment; a missing mirror fails loudly."""
import os
from pathlib import Path

import pytest

from gat_pyg.analysis import notebook_settings
from gat_pyg.analysis.notebook import repository_root


def test_small_mode_writes_nothing_into_the_checkout(monkeypatch, mirror):
    monkeypatch.setenv('GAT_PYG_NOTEBOOK_SMALL', '1')
    monkeypatch.setenv('GAT_PYG_PLANETOID_MIRROR', str(mirror))
    monkeypatch.delenv('GAT_PYG_DATA', raising=False)
    settings = notebook_settings(['citeseer', 'Cora'])
    assert settings.small and settings.mirror == mirror
    assert settings.pick(full=200, small=5) == 5
    assert settings.docs_figures is None
    assert settings.figure('a.png', readme=True).parent == settings.work / 'figures'
    # graphs are processed into the package's usual data root, not a scratch copy per run
    assert settings.data_root == Path('~/.cache/gat_pyg/planetoid').expanduser()
    assert settings.root == repository_root() and (settings.root / 'gat_pyg').is_dir()


def test_full_mode_puts_the_readme_figure_under_docs(monkeypatch):
    monkeypatch.delenv('GAT_PYG_NOTEBOOK_SMALL', raising=False)
    settings = notebook_settings()                   # no dataset: the mirror is not needed
    assert not settings.small and settings.mirror is None
    assert settings.pick(full=200, small=5) == 200
    assert settings.figure('a.png', readme=True) == repository_root() / 'docs/figures/a.png'
    assert settings.figure('b.png').parent == settings.work / 'figures'
    assert notebook_settings(small=True).small


def test_a_missing_mirror_is_an_error_naming_the_variable(monkeypatch, tmp_path):
    monkeypatch.setenv('GAT_PYG_PLANETOID_MIRROR', str(tmp_path))
    with pytest.raises(FileNotFoundError,
                       match=r'lacks ind\.citeseer\.x.*GAT_PYG_PLANETOID_MIRROR'):
        notebook_settings(['citeseer'])


def test_the_scratch_folder_is_removed_when_the_interpreter_exits(tmp_path):
    """The kernel's work folder goes with it (a notebook run used to leave 55 MB behind)."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    code = ('from gat_pyg.analysis import notebook_settings; '
            's = notebook_settings(small=True); (s.work / "f").write_text("x"); print(s.work)')
    env = dict(os.environ, TMPDIR=str(tmp_path), PYTHONPATH=str(root))
    work = subprocess.run([sys.executable, '-c', code], env=env, capture_output=True,
                          text=True, check=True).stdout.strip()
    assert work.startswith(str(tmp_path)) and not Path(work).exists()

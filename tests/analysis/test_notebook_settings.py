"""notebook_settings: small / full mode from the environment; a missing mirror fails loudly."""
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
    assert settings.data_root == settings.work / 'data'
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

"""Atomic writes: whole files or none, the path first, permissions from the umask."""
import os
import stat

import pytest
import torch

from gat_pyg.train.atomic import (atomic_torch_save, atomic_write, atomic_write_csv,
                                  atomic_write_json, atomic_write_text, current_umask)


@pytest.fixture
def umask():
    """Set the process umask for one test, then restore it."""
    old = os.umask(0o022)
    os.umask(old)
    yield lambda mask: os.umask(mask)
    os.umask(old)


@pytest.mark.parametrize('mask,mode', [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_files_get_the_mode_the_umask_gives_new_files(tmp_path, umask, mask, mode):
    umask(mask)
    assert current_umask() == mask
    atomic_write_text(tmp_path / 'a.txt', 'x')
    atomic_write_json(tmp_path / 'b.json', {'a': 1})
    atomic_write_csv(tmp_path / 'c.csv', ['a'], [{'a': 1}])
    atomic_torch_save(tmp_path / 'd.pt', {'w': torch.ones(2)})
    for name in ('a.txt', 'b.json', 'c.csv', 'd.pt'):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == mode, name
    assert not list(tmp_path.glob('.*.tmp'))


def test_every_writer_takes_the_path_first(tmp_path):
    atomic_torch_save(tmp_path / 'm.pt', {'step': 3})
    assert torch.load(tmp_path / 'm.pt', weights_only=True) == {'step': 3}


def test_a_failed_check_leaves_the_target_as_it_was(tmp_path):
    target = tmp_path / 'f'
    target.write_text('old')

    def refuse(tmp):
        assert tmp.read_bytes() == b'new' and tmp != target
        raise ValueError('refused')

    with pytest.raises(ValueError, match='refused'):
        atomic_write(target, lambda f: f.write(b'new'), check=refuse)
    assert target.read_text() == 'old' and os.listdir(tmp_path) == ['f']

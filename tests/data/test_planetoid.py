"""load_planetoid on the real mirror: statistics, splits, features, and the checksum gate."""
import os
import shutil
from pathlib import Path

import pytest
import torch

from gat_pyg.data import MIRROR_ENV, PLANETOID_SHA256, ROOT_ENV, load_planetoid
from gat_pyg.data.planetoid import resolve_root, sha256_file


def _copy_mirror(mirror: Path, dest: Path, prefix: str = 'ind.cora.') -> Path:
    dest.mkdir()
    for path in mirror.glob(f'{prefix}*'):
        shutil.copyfile(path, dest / path.name)
    return dest


def test_cora_statistics(cora):
    assert cora.num_nodes == 2708
    assert cora.edge_index.size(1) == 10556
    assert cora.num_features == 1433
    assert int(cora.y.max()) + 1 == 7
    assert [int(m.sum()) for m in (cora.train_mask, cora.val_mask, cora.test_mask)] == \
        [140, 500, 1000]
    assert not (cora.train_mask & cora.val_mask).any()
    assert not ((cora.train_mask | cora.val_mask) & cora.test_mask).any()
    # 20 labelled nodes per class
    assert torch.bincount(cora.y[cora.train_mask]).tolist() == [20] * 7


def test_citeseer_statistics_and_case_insensitive_name(data_root, mirror):
    data = load_planetoid('CiteSEER', root=data_root, mirror=str(mirror))
    assert data.num_nodes == 3327
    assert data.num_features == 3703
    assert int(data.y.max()) + 1 == 6
    assert [int(m.sum()) for m in (data.train_mask, data.val_mask, data.test_mask)] == \
        [120, 500, 1000]
    # CiteSeer has feature-less isolated test nodes: their rows stay all zero.
    row_sums = data.x.sum(dim=1)
    assert bool(((row_sums - 1).abs() < 1e-5).logical_or(row_sums == 0).all())
    assert int((row_sums == 0).sum()) > 0


def test_features_are_row_normalised(cora):
    row_sums = torch.sparse.sum(cora.x, dim=1).to_dense()
    assert bool(((row_sums - 1).abs() < 1e-5).logical_or(row_sums == 0).all())


def test_sparse_features_equal_dense(cora, data_root, mirror):
    dense = load_planetoid('cora', root=data_root, mirror=str(mirror), sparse=False)
    assert dense.x.layout == torch.strided
    assert cora.x.layout == torch.sparse_coo and cora.x.is_coalesced()
    assert torch.equal(cora.x.to_dense(), dense.x)
    assert cora.x._nnz() == int((dense.x != 0).sum())


def test_full_split_trains_on_everything_else(data_root, mirror):
    data = load_planetoid('cora', root=data_root, mirror=str(mirror), split='full')
    assert int(data.train_mask.sum()) == 2708 - 500 - 1000
    assert not (data.train_mask & (data.val_mask | data.test_mask)).any()


def test_random_split_is_seeded_and_leaves_global_rng_alone(data_root, mirror):
    state = torch.get_rng_state()
    kwargs = dict(root=data_root, mirror=str(mirror), split='random', num_train_per_class=5,
                  num_val=100, num_test=200)
    a = load_planetoid('cora', seed=1, **kwargs)
    b = load_planetoid('cora', seed=1, **kwargs)
    c = load_planetoid('cora', seed=2, **kwargs)
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(a.train_mask, b.train_mask) and torch.equal(a.test_mask, b.test_mask)
    assert not torch.equal(a.train_mask, c.train_mask)
    assert torch.bincount(a.y[a.train_mask]).tolist() == [5] * 7
    assert (int(a.val_mask.sum()), int(a.test_mask.sum())) == (100, 200)


def test_corrupted_raw_file_is_refused_before_processing(tmp_path, mirror):
    bad_mirror = _copy_mirror(mirror, tmp_path / 'mirror')
    raw = bytearray((bad_mirror / 'ind.cora.x').read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    (bad_mirror / 'ind.cora.x').write_bytes(bytes(raw))
    root = tmp_path / 'root'
    with pytest.raises(ValueError) as info:
        load_planetoid('cora', root=root, mirror=str(bad_mirror))
    message = str(info.value)
    assert 'ind.cora.x' in message
    assert PLANETOID_SHA256['ind.cora.x'] in message
    assert sha256_file(bad_mirror / 'ind.cora.x') in message
    assert not (root / 'Cora' / 'processed').exists()
    # Neither the refused file nor a half-written temporary copy is left; the folders that the
    # failed fetch created are gone too (ind.cora.x is the first file fetched).
    assert not list(root.rglob('*'))
    assert not root.exists()


def test_tampered_cached_raw_file_is_refused(tmp_path, mirror):
    root = tmp_path / 'root'
    load_planetoid('cora', root=root, mirror=str(mirror))
    with open(root / 'Cora' / 'raw' / 'ind.cora.graph', 'ab') as f:
        f.write(b'\0')
    with pytest.raises(ValueError, match=r'ind\.cora\.graph.*delete it'):
        load_planetoid('cora', root=root, mirror=str(mirror))


def test_verify_false_skips_the_digest_check(tmp_path, mirror, monkeypatch):
    monkeypatch.setitem(PLANETOID_SHA256, 'ind.cora.y', '0' * 64)
    with pytest.raises(ValueError, match='ind.cora.y'):
        load_planetoid('cora', root=tmp_path / 'a', mirror=str(mirror))
    data = load_planetoid('cora', root=tmp_path / 'b', mirror=str(mirror), verify=False)
    assert data.num_nodes == 2708


def test_file_without_known_digest_is_refused(tmp_path, mirror, monkeypatch):
    monkeypatch.delitem(PLANETOID_SHA256, 'ind.cora.tx')
    with pytest.raises(ValueError, match=r'no known SHA-256 for ind\.cora\.tx.*verify=False'):
        load_planetoid('cora', root=tmp_path, mirror=str(mirror))


def test_unknown_dataset_name():
    with pytest.raises(ValueError, match=r"unknown Planetoid dataset 'reddit'.*cora, citeseer"):
        load_planetoid('reddit')


def test_unknown_split(data_root, mirror):
    with pytest.raises(ValueError, match='split must be one of public, full, random'):
        load_planetoid('cora', root=data_root, mirror=str(mirror), split='geom-gcn')


def test_mirror_from_environment_and_file_url(tmp_path, mirror, monkeypatch):
    monkeypatch.setenv(MIRROR_ENV, str(mirror))
    assert load_planetoid('cora', root=tmp_path / 'env').num_nodes == 2708
    monkeypatch.delenv(MIRROR_ENV)
    url = mirror.resolve().as_uri()
    assert load_planetoid('cora', root=tmp_path / 'url', mirror=url).num_nodes == 2708


def test_mirror_folder_without_the_files(tmp_path, mirror):
    cora_only = _copy_mirror(mirror, tmp_path / 'mirror')
    with pytest.raises(FileNotFoundError, match=r'ind\.citeseer\.x is not in the Planetoid'):
        load_planetoid('citeseer', root=tmp_path / 'root', mirror=str(cora_only))
    with pytest.raises(FileNotFoundError, match=MIRROR_ENV):
        load_planetoid('cora', root=tmp_path / 'root', mirror=str(tmp_path / 'nowhere'))


def test_unreachable_download_says_to_set_the_mirror_and_leaves_no_folders(tmp_path):
    # Port 9 (discard) on localhost refuses at once: the same failure as having no network.
    with pytest.raises(ConnectionError, match=MIRROR_ENV):
        load_planetoid('cora', root=tmp_path / 'root', mirror='http://127.0.0.1:9/planetoid')
    assert not (tmp_path / 'root').exists()               # no empty root/Cora/raw behind


def test_a_failed_fetch_keeps_folders_that_existed_and_files_that_were_fetched(tmp_path,
                                                                              mirror):
    partial = _copy_mirror(mirror, tmp_path / 'mirror')
    (partial / 'ind.cora.graph').unlink()                  # the 7th of 8 files
    (tmp_path / 'root').mkdir()
    with pytest.raises(FileNotFoundError, match=r'ind\.cora\.graph is not in'):
        load_planetoid('cora', root=tmp_path / 'root', mirror=str(partial))
    raw = sorted(p.name for p in (tmp_path / 'root' / 'Cora' / 'raw').iterdir())
    assert raw == sorted(f'ind.cora.{s}' for s in ('x', 'tx', 'allx', 'y', 'ty', 'ally'))


def test_mirror_missing_a_dataset_names_the_absolute_folder_and_what_it_holds(
        tmp_path, mirror, monkeypatch):
    monkeypatch.chdir(tmp_path)
    relative = os.path.relpath(mirror, tmp_path)            # ../../shared/... style
    with pytest.raises(FileNotFoundError) as info:
        load_planetoid('pubmed', root=tmp_path / 'root', mirror=relative)
    message = str(info.value)
    assert f'the Planetoid mirror {os.path.abspath(mirror)} (set by mirror= / --mirror)' \
        in message
    assert 'it holds citeseer, cora' in message and f'unset {MIRROR_ENV}' in message
    assert '..' not in message.split(' (set by')[0]
    assert not (tmp_path / 'root').exists()
    monkeypatch.setenv(MIRROR_ENV, relative)
    with pytest.raises(FileNotFoundError, match=f'set by \\${MIRROR_ENV}'):
        load_planetoid('pubmed', root=tmp_path / 'root')


@pytest.mark.parametrize('sizes,message', [
    (dict(num_val=-5), r'num_val must be an integer >= 1 for the random split, got -5'),
    (dict(num_test=0), r'num_test must be an integer >= 1 for the random split, got 0'),
    (dict(num_train_per_class=True), r'num_train_per_class must be an integer >= 1'),
    (dict(num_val=3000), r'num_val \+ num_test = 3000 \+ 1000 exceeds the 2568 nodes of Cora '
                         r'left after 20 training nodes per class \(2708 nodes, 7 classes\)'),
    (dict(num_train_per_class=2000), r'num_train_per_class=2000 exceeds the 180 nodes of the '
                                     r'smallest class of Cora \(class 6\); it must be at most 180'),
])
def test_random_split_sizes_beyond_the_graph_are_refused(sizes, message, data_root, mirror):
    with pytest.raises(ValueError, match=message):
        load_planetoid('cora', root=data_root, mirror=str(mirror), split='random', **sizes)


def test_random_split_at_the_limits(data_root, mirror):
    data = load_planetoid('cora', root=data_root, mirror=str(mirror), split='random',
                          num_train_per_class=180, num_val=1000, num_test=2708 - 7 * 180 - 1000)
    assert [int(m.sum()) for m in (data.train_mask, data.val_mask, data.test_mask)] == \
        [7 * 180, 1000, 2708 - 7 * 180 - 1000]


def test_default_root_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(ROOT_ENV, str(tmp_path))
    assert resolve_root() == tmp_path
    monkeypatch.delenv(ROOT_ENV)
    assert resolve_root() == Path('~/.cache/gat_pyg/planetoid').expanduser()
    assert resolve_root(tmp_path / 'x') == tmp_path / 'x'

"""Planetoid citation graphs (Cora, CiteSeer, PubMed) from verified raw files.

:class:`torch_geometric.datasets.Planetoid` parses the raw ``ind.<name>.*`` files; this module
only decides where they come from and checks them first. Planetoid would download them itself,
but it unpickles whatever it downloaded, so we fetch each file ourselves (from a mirror folder,
a mirror URL or upstream), check its SHA-256 against :data:`PLANETOID_SHA256`, move it into
Planetoid's raw folder, and only then let Planetoid process the folder.
"""
import hashlib
import logging
import os
import shutil
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import BinaryIO, Optional, Union

import torch
from torch_geometric.data import Data
from torch_geometric.datasets import Planetoid
from torch_geometric.transforms import NormalizeFeatures

from gat_pyg.data.checksums import PLANETOID_SHA256

log = logging.getLogger(__name__)

MIRROR_ENV = 'GAT_PYG_PLANETOID_MIRROR'
"""Environment variable naming the default mirror (a folder or URL with the flat raw files)."""
ROOT_ENV = 'GAT_PYG_DATA'
"""Environment variable naming the default dataset root."""
DEFAULT_ROOT = Path('~/.cache/gat_pyg/planetoid')
UPSTREAM_URL = Planetoid.url
DATASETS = {'cora': 'Cora', 'citeseer': 'CiteSeer', 'pubmed': 'PubMed'}
"""Lower-case name -> the spelling Planetoid (and its folder layout) uses."""
SPLITS = ('public', 'full', 'random')
RAW_SUFFIXES = ('x', 'tx', 'allx', 'y', 'ty', 'ally', 'graph', 'test.index')
_DOWNLOAD_TIMEOUT_S = 60


def load_planetoid(
    name: str,
    root: Optional[Union[str, os.PathLike]] = None,
    split: str = 'public',
    mirror: Optional[str] = None,
    sparse: bool = False,
    seed: int = 0,
    *,
    num_train_per_class: int = 20,
    num_val: int = 500,
    num_test: int = 1000,
    verify: bool = True,
) -> Data:
    r"""Load a Planetoid citation graph with row-normalised features.

    Args:
        name (str): ``'cora'``, ``'citeseer'`` or ``'pubmed'`` (case-insensitive).
        root (str, optional): Dataset root; the graph lives in ``root/<Name>/{raw,processed}``.
            (default: ``$GAT_PYG_DATA``, else ``~/.cache/gat_pyg/planetoid``)
        split (str, optional): ``'public'`` (20 labels per class, 500 validation, 1000 test
            nodes, as in the GAT and GCN papers), ``'full'`` (every node outside validation and
            test trains) or ``'random'`` (``num_train_per_class`` / ``num_val`` / ``num_test``
            drawn with ``seed``). (default: ``'public'``)
        mirror (str, optional): A folder or URL holding the flat ``ind.<name>.*`` files.
            (default: ``$GAT_PYG_PLANETOID_MIRROR``, else the upstream Planetoid repository)
        sparse (bool, optional): Return ``data.x`` as a coalesced ``torch.sparse`` COO tensor
            (same values). (default: ``False``)
        seed (int, optional): Seed of the ``'random'`` split; other splits are fixed and do not
            read it. The global RNG is left as it was. (default: ``0``)
        num_train_per_class (int, optional): Training nodes per class of the ``'random'`` split.
            (default: ``20``)
        num_val (int, optional): Validation nodes of the ``'random'`` split. (default: ``500``)
        num_test (int, optional): Test nodes of the ``'random'`` split. (default: ``1000``)
        verify (bool, optional): Check every raw file's SHA-256 before it is unpickled. Only
            switch it off for files from a source you trust. (default: ``True``)

    Returns:
        :class:`torch_geometric.data.Data` with ``x``, ``edge_index``, ``y`` and
        ``train_mask`` / ``val_mask`` / ``test_mask``.

    Raises:
        ValueError: an unknown name or split, or a raw file whose digest is wrong or unknown.
        FileNotFoundError: a mirror folder without the file.
        ConnectionError: a download that failed (e.g. no network and no mirror).
    """
    canonical = planetoid_name(name)
    split = split.lower()
    if split not in SPLITS:
        raise ValueError(f"load_planetoid: split must be one of {', '.join(SPLITS)}, "
                         f'got {split!r}')
    root_dir = resolve_root(root)
    source = resolve_mirror(mirror)
    fetch_raw_files(canonical, root_dir / canonical / 'raw', source, verify=verify)
    # Planetoid draws the random split from the global RNG; fork it so that seeding here
    # neither depends on nor disturbs the caller's random state.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        dataset = Planetoid(str(root_dir), canonical, split=split,
                            num_train_per_class=num_train_per_class, num_val=num_val,
                            num_test=num_test, transform=NormalizeFeatures())
    data = dataset[0]
    if sparse:
        data.x = data.x.to_sparse().coalesce()
    return data


def planetoid_name(name: str) -> str:
    """The canonical spelling (``'CiteSeer'``) of a case-insensitive Planetoid name."""
    canonical = DATASETS.get(str(name).lower())
    if canonical is None:
        raise ValueError(f"unknown Planetoid dataset {name!r}: expected one of "
                         f"{', '.join(DATASETS)} (case-insensitive)")
    return canonical


def resolve_root(root: Optional[Union[str, os.PathLike]] = None) -> Path:
    """``root``, else ``$GAT_PYG_DATA``, else ``~/.cache/gat_pyg/planetoid`` (user expanded)."""
    chosen = root if root is not None else os.environ.get(ROOT_ENV) or DEFAULT_ROOT
    return Path(chosen).expanduser()


def resolve_mirror(mirror: Optional[str] = None) -> str:
    """``mirror``, else ``$GAT_PYG_PLANETOID_MIRROR``, else the upstream URL."""
    chosen = mirror if mirror is not None else os.environ.get(MIRROR_ENV) or UPSTREAM_URL
    return chosen if _is_url(chosen) else str(Path(chosen).expanduser())


def sha256_file(path: Union[str, os.PathLike]) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            digest.update(chunk)
    return digest.hexdigest()


def fetch_raw_files(name: str, raw_dir: Path, source: str, verify: bool = True) -> None:
    """Make ``raw_dir`` hold all eight verified raw files of ``name`` (canonical spelling).

    Files already in ``raw_dir`` are re-verified (hashing 8 MB is cheap, unpickling a swapped
    file is not). A missing file is fetched from ``source`` into a temporary name in ``raw_dir``,
    verified there, and renamed into place, so an interrupted or refused fetch leaves no file
    under the name Planetoid reads.
    """
    if not verify:
        log.warning('Planetoid %s: SHA-256 verification is off; the raw files are pickles, '
                    'so use this only with files from a source you trust', name)
    for suffix in RAW_SUFFIXES:
        filename = f'ind.{name.lower()}.{suffix}'
        target = raw_dir / filename
        if target.exists():
            if verify:
                _verify(target, filename, origin=f'cached file {target} (delete it to fetch '
                                                 'it again)')
            continue
        raw_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=raw_dir, prefix=f'.{filename}.', suffix='.part')
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, 'wb') as out:
                _copy_from_source(source, filename, out)
            if verify:
                _verify(tmp, filename, origin=_describe(source, filename))
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
        log.debug('fetched %s from %s', filename, source)


def _verify(path: Path, filename: str, origin: str) -> None:
    expected = PLANETOID_SHA256.get(filename)
    if expected is None:
        raise ValueError(f'no known SHA-256 for {filename} ({origin}); it is a pickle, so it is '
                         'not loaded unverified. Pass verify=False (CLI: --no-verify) only if '
                         'you trust its source.')
    actual = sha256_file(path)
    if actual != expected:
        raise ValueError(f'SHA-256 mismatch for {filename} from {origin}: expected {expected}, '
                         f'got {actual}. The file was not used; replace it with an intact copy.')


def _copy_from_source(source: str, filename: str, out: BinaryIO) -> None:
    if _is_url(source):
        url = f"{source.rstrip('/')}/{filename}"
        try:
            with urllib.request.urlopen(url, timeout=_DOWNLOAD_TIMEOUT_S) as response:
                shutil.copyfileobj(response, out)
        except (urllib.error.URLError, OSError) as err:
            raise ConnectionError(
                f'could not download {url}: {err}. Without internet access, point '
                f'{MIRROR_ENV} (or mirror=, CLI --mirror) at a folder holding the flat '
                f'ind.<name>.* Planetoid files.') from err
        return
    folder = Path(source)
    if not folder.is_dir():
        raise FileNotFoundError(f'Planetoid mirror folder {folder} does not exist; set '
                                f'{MIRROR_ENV} (or mirror=, CLI --mirror) to a folder or URL '
                                'holding the flat ind.<name>.* files')
    path = folder / filename
    if not path.is_file():
        raise FileNotFoundError(f'{filename} is not in the Planetoid mirror {folder}')
    with open(path, 'rb') as f:
        shutil.copyfileobj(f, out)


def _describe(source: str, filename: str) -> str:
    return f"{source.rstrip('/')}/{filename}" if _is_url(source) else str(Path(source) / filename)


def _is_url(source: str) -> bool:
    return urllib.parse.urlparse(str(source)).scheme in ('http', 'https', 'ftp', 'file')

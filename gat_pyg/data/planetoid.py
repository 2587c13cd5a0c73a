"""Planetoid citation graphs (Cora, CiteSeer, PubMed) from verified raw files.

:class:`torch_geometric.datasets.Planetoid` parses the raw ``ind.<name>.*`` files; this module
only decides where they come from and checks them first. Planetoid would download them itself,
but it unpickles whatever it downloaded, so we fetch each file ourselves (from a mirror folder,
a mirror URL or upstream), check its SHA-256 against :data:`PLANETOID_SHA256`, move it into
Planetoid's raw folder, and only then let Planetoid process the folder.
"""
import contextlib
import hashlib
import logging
import os
import shutil
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import BinaryIO, Iterator, Optional, Union

import torch
from torch_geometric.data import Data
from torch_geometric.datasets import Planetoid
from torch_geometric.transforms import NormalizeFeatures

from gat_pyg.data.checksums import PLANETOID_SHA256
from gat_pyg.data.names import DATASETS, DEFAULT_ROOT, MIRROR_ENV, ROOT_ENV, SPLITS
from gat_pyg.train.atomic import atomic_write

log = logging.getLogger(__name__)

UPSTREAM_URL = Planetoid.url
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
        ValueError: an unknown name or split, random-split sizes below 1 or beyond the nodes
            available (``num_train_per_class`` above the smallest class, ``num_val +
            num_test`` above the nodes left after training), or a raw file whose digest is
            wrong or unknown.
        FileNotFoundError: a mirror folder without the file (the message names the absolute
            folder, what it holds, and where the mirror setting came from).
        ConnectionError: a download that failed (e.g. no network and no mirror).
    """
    canonical = planetoid_name(name)
    split = split.lower()
    if split not in SPLITS:
        raise ValueError(f"load_planetoid: split must be one of {', '.join(SPLITS)}, "
                         f'got {split!r}')
    if split == 'random':
        for argument, value in (('num_train_per_class', num_train_per_class),
                                ('num_val', num_val), ('num_test', num_test)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f'load_planetoid: {argument} must be an integer >= 1 for the '
                                 f'random split, got {value!r}')
    root_dir = resolve_root(root)
    source = resolve_mirror(mirror)
    origin = ('set by mirror= / --mirror' if mirror is not None
              else f'set by ${MIRROR_ENV}' if os.environ.get(MIRROR_ENV)
              else f'the default: neither mirror= / --mirror nor ${MIRROR_ENV} is set')
    fetch_raw_files(canonical, root_dir / canonical / 'raw', source, verify=verify,
                    origin=origin)
    if not (root_dir / canonical / 'processed').is_dir():
        log.info('%s: processing the raw files into %s (once)', canonical,
                 root_dir / canonical / 'processed')
    # Planetoid draws the random split from the global RNG; fork it so that seeding here
    # neither depends on nor disturbs the caller's random state.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        dataset = _Planetoid(str(root_dir), canonical, split=split,
                             num_train_per_class=num_train_per_class, num_val=num_val,
                             num_test=num_test, transform=NormalizeFeatures())
    data = dataset[0]
    if split == 'random':
        _check_random_split(canonical, data.y, num_train_per_class, num_val, num_test)
    if sparse:
        data.x = data.x.to_sparse().coalesce()
    return data


class Quiet:
    """Mixin for a PyG dataset class that must not print: PyG's datasets print
    ``Processing... Done!`` (and ``Downloading URL``) to stderr, which lands in the middle of a
    progress bar; the loaders here log instead. PyG's switch is the ``log`` attribute that its
    ``Dataset.__init__`` sets, which ``Planetoid`` and ``PPI`` do not let a caller pass on; this
    pins it to ``False``."""

    @property
    def log(self) -> bool:
        return False

    @log.setter
    def log(self, value: bool) -> None:
        pass


class _Planetoid(Quiet, Planetoid):
    """PyG's Planetoid, silent (see :class:`Quiet`)."""


def _check_random_split(name: str, y: torch.Tensor, num_train_per_class: int, num_val: int,
                        num_test: int) -> None:
    """Refuse a random split that cannot have the sizes asked for: PyG would silently take a
    whole class for training, or give validation or test fewer nodes than asked (none)."""
    counts = torch.bincount(y)
    smallest = int(counts.min())
    if num_train_per_class > smallest:
        raise ValueError(f'load_planetoid: num_train_per_class={num_train_per_class} exceeds the '
                         f'{smallest} nodes of the smallest class of {name} (class '
                         f'{int(counts.argmin())}); it must be at most {smallest}')
    left = y.numel() - num_train_per_class * counts.numel()
    if num_val + num_test > left:
        raise ValueError(f'load_planetoid: num_val + num_test = {num_val} + {num_test} exceeds '
                         f'the {left} nodes of {name} left after {num_train_per_class} training '
                         f'nodes per class ({y.numel()} nodes, {counts.numel()} classes); lower '
                         'num_val, num_test or num_train_per_class')


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
    """``mirror``, else ``$GAT_PYG_PLANETOID_MIRROR``, else the upstream URL; a folder as an
    absolute path (a relative one is read from the current directory), so that messages show
    where the files were looked for."""
    chosen = mirror if mirror is not None else os.environ.get(MIRROR_ENV) or UPSTREAM_URL
    return chosen if _is_url(chosen) else os.path.abspath(os.path.expanduser(chosen))


def sha256_file(path: Union[str, os.PathLike]) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            digest.update(chunk)
    return digest.hexdigest()


def fetch_raw_files(name: str, raw_dir: Path, source: str, verify: bool = True,
                    origin: str = '') -> None:
    """Make ``raw_dir`` hold all eight verified raw files of ``name`` (canonical spelling).

    Files already in ``raw_dir`` are re-verified (hashing 8 MB is cheap, unpickling a swapped
    file is not). A missing file is fetched from ``source`` into a temporary name in ``raw_dir``,
    verified there, and renamed into place, so an interrupted or refused fetch leaves no file
    under the name Planetoid reads; folders this call created are removed again if the fetch
    fails and leaves them empty. ``origin`` says in messages where ``source`` came from.
    """
    if not verify:
        log.warning('Planetoid %s: SHA-256 verification is off; the raw files are pickles, '
                    'so use this only with files from a source you trust', name)
    with removed_if_left_empty(raw_dir):
        for suffix in RAW_SUFFIXES:
            filename = f'ind.{name.lower()}.{suffix}'
            target = raw_dir / filename
            if target.exists():
                if verify:
                    _verify(target, filename, origin=f'cached file {target} (delete it to '
                                                     'fetch it again)')
                continue
            atomic_write(target, lambda out: _copy_from_source(source, filename, out, origin),
                         check=(lambda tmp: _verify(tmp, filename, _describe(source, filename)))
                         if verify else None)
            log.debug('fetched %s from %s', filename, source)


@contextlib.contextmanager
def removed_if_left_empty(folder: Path) -> Iterator[None]:
    """On an exception in the block, remove ``folder`` and those of its parents that did not
    exist before the block, if they are (then) empty: a failed download leaves no empty
    ``<root>/<Name>/raw`` behind. Folders that existed, or hold anything, are kept."""
    folder = Path(folder)
    created = []
    missing = folder
    while not missing.exists() and missing != missing.parent:
        created.append(missing)
        missing = missing.parent
    try:
        yield
    except BaseException:
        for path in created:                                # the deepest first
            for inner, _, _ in os.walk(path, topdown=False):   # children first
                with contextlib.suppress(OSError):          # not empty: kept
                    os.rmdir(inner)
        raise


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


def _copy_from_source(source: str, filename: str, out: BinaryIO, origin: str = '') -> None:
    came_from = f' ({origin})' if origin else ''
    if _is_url(source):
        url = f"{source.rstrip('/')}/{filename}"
        try:
            with urllib.request.urlopen(url, timeout=_DOWNLOAD_TIMEOUT_S) as response:
                shutil.copyfileobj(response, out)
        except (urllib.error.URLError, OSError) as err:
            raise ConnectionError(
                f'could not download {url}{came_from}: {err}. Without internet access, point '
                f'{MIRROR_ENV} (or mirror=, CLI --mirror) at a folder holding the flat '
                f'ind.<name>.* Planetoid files.') from err
        return
    folder = Path(source)
    if not folder.is_dir():
        raise FileNotFoundError(f'Planetoid mirror folder {folder}{came_from} does not exist; '
                                f'set {MIRROR_ENV} (or mirror=, CLI --mirror) to a folder or '
                                'URL holding the flat ind.<name>.* files')
    path = folder / filename
    if not path.is_file():
        held = sorted({p.name.split('.')[1] for p in folder.glob('ind.*.x')})
        holds = f"it holds {', '.join(held)}" if held else 'it holds no ind.<name>.x file'
        raise FileNotFoundError(
            f'{filename} is not in the Planetoid mirror {folder}{came_from}; {holds}. Copy '
            f'the ind.{filename.split(".")[1]}.* files there, or use another mirror (--mirror, '
            f'${MIRROR_ENV}), or unset {MIRROR_ENV} to download them from upstream (needs '
            'internet)')
    with open(path, 'rb') as f:
        shutil.copyfileobj(f, out)


def _describe(source: str, filename: str) -> str:
    return f"{source.rstrip('/')}/{filename}" if _is_url(source) else str(Path(source) / filename)


def _is_url(source: str) -> bool:
    return urllib.parse.urlparse(str(source)).scheme in ('http', 'https', 'ftp', 'file')

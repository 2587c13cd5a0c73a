"""The inductive protein-protein interaction benchmark (PPI), parsed by PyG's dataset class.

:class:`torch_geometric.datasets.PPI` downloads ``ppi.zip`` (from DGL's data server) and parses
its raw files: per split (``train``, ``valid``, ``test``) a networkx node-link graph
(``{split}_graph.json``), node features (``{split}_feats.npy``, 50 per node), the graph each
node belongs to (``{split}_graph_id.npy``) and the 121 binary labels (``{split}_labels.npy``):
20 training, 2 validation and 2 test graphs. Unlike Planetoid's pickles these files are JSON and
``.npy`` arrays that numpy loads without unpickling, so reading them runs no code; no published
SHA-256 of ``ppi.zip`` is known to us, so, unlike the Planetoid files, they are not checked.
"""
import os
from typing import Optional, Tuple, Union

from torch_geometric.datasets import PPI

from gat_pyg.data.planetoid import ROOT_ENV, Quiet, removed_if_left_empty, resolve_root

PPI_FOLDER = 'PPI'
PPI_SPLITS = ('train', 'val', 'test')
NUM_FEATURES = 50
NUM_LABELS = 121
RAW_FILES = tuple(f'{split}_{name}' for split in ('train', 'valid', 'test')
                  for name in ('graph.json', 'feats.npy', 'graph_id.npy', 'labels.npy'))
"""The raw files :class:`~torch_geometric.datasets.PPI` reads from ``root/PPI/raw``."""


def load_ppi(root: Optional[Union[str, os.PathLike]] = None) -> Tuple[PPI, PPI, PPI]:
    """The PPI training, validation and test graphs.

    Args:
        root (str, optional): Dataset root; PPI lives in ``root/PPI/{raw,processed}``. Raw files
            already in ``root/PPI/raw`` are used as they are, otherwise ``ppi.zip`` is
            downloaded. (default: ``$GAT_PYG_DATA``, else ``~/.cache/gat_pyg/planetoid``, the
            root :func:`gat_pyg.data.load_planetoid` uses)

    Returns:
        Three :class:`torch_geometric.datasets.PPI` datasets (train, val, test), each a list of
        graphs with ``x`` (``[num_nodes, 50]``), ``edge_index`` and multi-hot ``y``
        (``[num_nodes, 121]``, float).

    Raises:
        OSError: the raw files are missing and cannot be downloaded (the empty folders the
            attempt created are removed again).
    """
    folder = resolve_root(root) / PPI_FOLDER
    try:
        with removed_if_left_empty(folder):
            return tuple(_PPI(str(folder), split=split)  # type: ignore
                         for split in PPI_SPLITS)
    except OSError as err:  # urllib's URLError is an OSError
        raise OSError(f'PPI: the raw files are not in {folder / "raw"} and downloading '
                      f'{PPI.url} failed ({err}); copy the unzipped ppi.zip files '
                      f'({", ".join(RAW_FILES)}) there, or pass another root '
                      f'(--data-root, ${ROOT_ENV})') from err


class _PPI(Quiet, PPI):
    """PyG's PPI, silent (see :class:`gat_pyg.data.planetoid.Quiet`)."""

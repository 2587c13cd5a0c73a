"""Planetoid loading (offline mirror or upstream download, SHA-256 checks, splits) and PPI.

The loaders (and torch / PyG with them) are imported on first use; the names in
:mod:`gat_pyg.data.names` need neither.
"""
from gat_pyg._lazy import lazy_exports
from gat_pyg.data.names import DATASETS, MIRROR_ENV, ROOT_ENV, SPLITS

_exports, __getattr__, __dir__ = lazy_exports(__name__, {
    'gat_pyg.data.checksums': ['PLANETOID_SHA256'],
    'gat_pyg.data.planetoid': ['load_planetoid', 'planetoid_name'],
    'gat_pyg.data.ppi': ['load_ppi'],
})

__all__ = sorted(_exports + ['DATASETS', 'MIRROR_ENV', 'ROOT_ENV', 'SPLITS'])

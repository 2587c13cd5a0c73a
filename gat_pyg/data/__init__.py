"""Planetoid loading: offline mirror or upstream download, SHA-256 checks, splits."""
from gat_pyg.data.checksums import PLANETOID_SHA256
from gat_pyg.data.planetoid import (DATASETS, MIRROR_ENV, ROOT_ENV, SPLITS, load_planetoid,
                                    planetoid_name)

__all__ = ['DATASETS', 'MIRROR_ENV', 'PLANETOID_SHA256', 'ROOT_ENV', 'SPLITS', 'load_planetoid',
           'planetoid_name']

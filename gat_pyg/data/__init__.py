"""Planetoid loading (offline mirror or upstream download, SHA-256 checks, splits) and PPI."""
from gat_pyg.data.checksums import PLANETOID_SHA256
from gat_pyg.data.planetoid import (DATASETS, MIRROR_ENV, ROOT_ENV, SPLITS, load_planetoid,
                                    planetoid_name)
from gat_pyg.data.ppi import load_ppi

__all__ = ['DATASETS', 'MIRROR_ENV', 'PLANETOID_SHA256', 'ROOT_ENV', 'SPLITS', 'load_planetoid',
           'load_ppi', 'planetoid_name']

"""Names the data loaders accept, and the environment variables they read.

Kept apart from the loaders (and free of torch and PyG imports) so that the command line can
build its options and validate names without importing them.
"""
DATASETS = {'cora': 'Cora', 'citeseer': 'CiteSeer', 'pubmed': 'PubMed'}
"""Lower-case Planetoid name -> the spelling Planetoid (and its folder layout) uses."""
SPLITS = ('public', 'full', 'random')
"""Planetoid node splits."""
MIRROR_ENV = 'GAT_PYG_PLANETOID_MIRROR'
"""Environment variable naming the default mirror (a folder or URL with the flat raw files)."""
ROOT_ENV = 'GAT_PYG_DATA'
"""Environment variable naming the default dataset root."""
DEFAULT_ROOT = '~/.cache/gat_pyg/planetoid'
"""The dataset root when neither an argument nor ``$GAT_PYG_DATA`` names one."""

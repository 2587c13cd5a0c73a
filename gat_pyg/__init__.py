"""gat_pyg: graph attention layers for PyTorch Geometric, on fused attention kernels.

The layers are imported on first use (see :mod:`gat_pyg._lazy`): ``from gat_pyg import
GATConv`` works as usual, while ``gat-pyg --help`` does not wait for torch.
"""
from gat_pyg._lazy import lazy_exports

__version__ = '0.1.0'

_exports, __getattr__, __dir__ = lazy_exports(__name__, {
    'gat_pyg.nn': ['AttentionConv', 'GATConv', 'GATv2Conv', 'MaskedGATConv', 'MaskedGATv2Conv',
                   'DenseMaskedGATConv', 'DenseMaskedGATv2Conv', 'masked_softmax',
                   'mask_from_scores', 'mask_to_edge_index', 'edge_index_to_mask'],
}, submodules=['nn', 'models', 'data', 'train', 'analysis', 'bench'])

__all__ = _exports + ['__version__']

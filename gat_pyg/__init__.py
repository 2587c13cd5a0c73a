"""gat_pyg: graph attention layers for PyTorch Geometric, with a fused CSR fast path."""
from gat_pyg.nn import (AttentionConv, DenseMaskedGATConv, GATConv, GATv2Conv, MaskedGATConv,
                        edge_index_to_mask, mask_from_scores, mask_to_edge_index,
                        masked_softmax)

__version__ = '0.1.0'

__all__ = [
    'AttentionConv',
    'GATConv',
    'GATv2Conv',
    'MaskedGATConv',
    'DenseMaskedGATConv',
    'masked_softmax',
    'mask_from_scores',
    'mask_to_edge_index',
    'edge_index_to_mask',
    '__version__',
]

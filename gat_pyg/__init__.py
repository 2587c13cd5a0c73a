"""gat_pyg: graph attention layers for PyTorch Geometric, with a fused CSR fast path."""
from gat_pyg.nn import (AttentionConv, GATConv, GATv2Conv, edge_index_to_mask,
                        mask_from_scores, mask_to_edge_index)

__version__ = '0.1.0'

__all__ = [
    'AttentionConv',
    'GATConv',
    'GATv2Conv',
    'mask_from_scores',
    'mask_to_edge_index',
    'edge_index_to_mask',
    '__version__',
]

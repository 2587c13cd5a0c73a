"""Graph-attention layers: one shared core (:class:`AttentionConv`) and a file per variant."""
from gat_pyg.nn.attention_conv import AttentionConv
from gat_pyg.nn.gat_conv import GATConv
from gat_pyg.nn.gatv2_conv import GATv2Conv
from gat_pyg.nn.mask import edge_index_to_mask, mask_from_scores, mask_to_edge_index
from gat_pyg.nn.masked_gat_conv import (DenseMaskedGATConv, DenseMaskedGATv2Conv, MaskedGATConv,
                                        MaskedGATv2Conv, masked_softmax)
from gat_pyg.nn import models  # gat_pyg.nn.models.GAT: PyG's BasicGNN GAT on these layers

__all__ = [
    'AttentionConv',
    'GATConv',
    'GATv2Conv',
    'MaskedGATConv',
    'MaskedGATv2Conv',
    'DenseMaskedGATConv',
    'DenseMaskedGATv2Conv',
    'masked_softmax',
    'mask_from_scores',
    'mask_to_edge_index',
    'edge_index_to_mask',
    'models',
]

"""gat_pyg: graph attention layers for PyTorch Geometric, with a fused CSR fast path."""
from gat_pyg.nn import AttentionConv, GATConv, GATv2Conv

__version__ = '0.1.0'

__all__ = ['AttentionConv', 'GATConv', 'GATv2Conv', '__version__']

"""The prepared graph (:class:`PreparedGraph`), how it is built (:func:`prepare_graph`) and
reused across calls with the same tensor (:class:`GraphCache`)."""
from gat_pyg.nn.graph.build import prepare_graph
from gat_pyg.nn.graph.cache import GraphCache
from gat_pyg.nn.graph.prepared import (EDGE_INDEX, EDGE_INDEX_CLASS, SPARSE_TENSOR,
                                       TORCH_SPARSE, PreparedGraph, pointers)

__all__ = ['PreparedGraph', 'prepare_graph', 'GraphCache', 'pointers', 'EDGE_INDEX',
           'EDGE_INDEX_CLASS', 'SPARSE_TENSOR', 'TORCH_SPARSE']

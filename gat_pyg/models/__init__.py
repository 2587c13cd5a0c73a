"""Node classifiers on one base model: GAT, GATv2, GCN and an MLP baseline.

These are the papers' models (the GAT paper's ``hidden_channels`` per head, ``out_heads``
averaged, message dropout, the GCN's first-layer-only L2 through :meth:`BaseModel.
parameter_groups`), built from ``configs/`` by :func:`gat_pyg.train.build_model`; their
constructors take PyG's neutral defaults. For PyG's own model interface, ``BasicGNN``
(``hidden_channels`` as the total width, ``jk``, ``norm``, ``trim_to_layer``, ``inference``
over a ``NeighborLoader``), use :class:`gat_pyg.nn.models.GAT`: PyG's
:class:`torch_geometric.nn.models.GAT` with ``gat_pyg.GATConv`` / ``GATv2Conv`` as its layers.
"""
from typing import Dict, Type

from gat_pyg.models.base import BaseModel
from gat_pyg.models.gat import GAT, GATv2
from gat_pyg.models.gcn import GCN
from gat_pyg.models.mlp import MLP, NodeLinear

MODELS: Dict[str, Type[BaseModel]] = {'gat': GAT, 'gatv2': GATv2, 'gcn': GCN, 'mlp': MLP}
"""Model name (as in configs) -> class."""

__all__ = ['BaseModel', 'GAT', 'GATv2', 'GCN', 'MLP', 'MODELS', 'NodeLinear']

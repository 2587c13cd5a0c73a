"""Node classifiers on one base model: GAT, GATv2, GCN and an MLP baseline."""
from typing import Dict, Type

from gat_pyg.models.base import BaseModel
from gat_pyg.models.gat import GAT, GATv2
from gat_pyg.models.gcn import GCN
from gat_pyg.models.mlp import MLP, NodeLinear

MODELS: Dict[str, Type[BaseModel]] = {'gat': GAT, 'gatv2': GATv2, 'gcn': GCN, 'mlp': MLP}
"""Model name (as in configs) -> class."""

__all__ = ['BaseModel', 'GAT', 'GATv2', 'GCN', 'MLP', 'MODELS', 'NodeLinear']

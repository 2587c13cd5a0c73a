"""A tiny stand-in for PPI in its on-disk raw format (the real files cannot be downloaded here).

:func:`write_ppi_raw` writes what ``ppi.zip`` unpacks to (``{split}_graph.json`` as networkx
node-link JSON, ``{split}_feats.npy``, ``{split}_graph_id.npy``, ``{split}_labels.npy`` for
``train`` / ``valid`` / ``test``) into ``root/PPI/raw``, so that
:class:`torch_geometric.datasets.PPI` processes it without downloading.
"""
import json
from pathlib import Path
from typing import Dict, Tuple

import networkx as nx
import numpy as np
from networkx.readwrite import json_graph

from gat_pyg.data.ppi import NUM_FEATURES, NUM_LABELS

GRAPHS = {'train': 3, 'valid': 2, 'test': 2}
NODES_PER_GRAPH = 20
FEATURES = NUM_FEATURES    # 50, as the real PPI
LABELS = NUM_LABELS        # 121


def write_ppi_raw(root: Path, seed: int = 0) -> Dict[str, Tuple[np.ndarray, np.ndarray]]:
    """Write the raw files; returns each split's (features, labels) as written.

    Every graph is a ring over its 20 nodes (so each node has edges, which PyG's processing
    needs to find the graph's node offset) plus 10 random chords. Labels depend on the features
    through a fixed random linear map, so a model can learn something in a few epochs.
    """
    rng = np.random.default_rng(seed)
    raw = Path(root) / 'PPI' / 'raw'
    raw.mkdir(parents=True, exist_ok=True)
    mix = rng.standard_normal((FEATURES, LABELS))
    written = {}
    for split, num_graphs in GRAPHS.items():
        n = num_graphs * NODES_PER_GRAPH
        graph = nx.Graph()
        graph.add_nodes_from(range(n))
        for g in range(num_graphs):
            nodes = np.arange(g * NODES_PER_GRAPH, (g + 1) * NODES_PER_GRAPH)
            graph.add_edges_from(zip(nodes.tolist(), np.roll(nodes, -1).tolist()))
            chords = rng.choice(nodes, size=(10, 2))
            graph.add_edges_from((int(a), int(b)) for a, b in chords if a != b)
        feats = rng.random((n, FEATURES)).astype(np.float32)
        labels = (feats @ mix > 0.5 * np.sqrt(FEATURES) * mix.mean(0)).astype(np.float32)
        graph_id = np.repeat(np.arange(1, num_graphs + 1), NODES_PER_GRAPH)  # 1-based, as PPI
        (raw / f'{split}_graph.json').write_text(
            json.dumps(json_graph.node_link_data(graph, edges='links')))
        np.save(raw / f'{split}_feats.npy', feats)
        np.save(raw / f'{split}_graph_id.npy', graph_id)
        np.save(raw / f'{split}_labels.npy', labels)
        written[split] = (feats, labels)
    return written

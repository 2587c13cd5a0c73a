"""Speed and memory benchmarks against PyG's own layers (``benchmarks/*.py``, ``gat-pyg bench``)."""

"""Paper-GAT training epochs on Cora and CiteSeer: ours vs PyG. See gat_pyg/bench/epoch.py."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from gat_pyg.bench.epoch import main  # noqa: E402

if __name__ == '__main__':
    main()

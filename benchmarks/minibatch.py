"""Mini-batch GAT epochs on a 1M-node random graph: ours vs PyG. See gat_pyg/bench/minibatch.py."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from gat_pyg.bench.minibatch import main  # noqa: E402

if __name__ == '__main__':
    main()

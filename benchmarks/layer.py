"""Layer forward + backward at E = 1M, 4M, 20M: ours vs PyG. See gat_pyg/bench/layer.py."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from gat_pyg.bench.layer import main  # noqa: E402

if __name__ == '__main__':
    main()

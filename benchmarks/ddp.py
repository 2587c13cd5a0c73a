"""Data-parallel mini-batch scaling at 1 and 2 processes. See gat_pyg/bench/ddp.py."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from gat_pyg.bench.ddp import main  # noqa: E402

if __name__ == '__main__':
    main()

"""``python -m gat_pyg.train [--config FILE] [--key value ...]``: the ``gat-pyg train`` command.

The module form is what ``torchrun`` launches (``torchrun --nproc-per-node 2 -m gat_pyg.train
--config configs/cora_gat.yaml``); run alone it trains in one process.
"""
import sys

from gat_pyg.cli import main

if __name__ == '__main__':
    sys.exit(main(['train', *sys.argv[1:]]))

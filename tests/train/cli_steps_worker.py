"""Run by ``torchrun`` from ``test_distributed.py`` (not a test module itself):
``cli_steps_worker.py OUT -- TRAIN ARGS``.

Runs ``gat-pyg train TRAIN ARGS`` (what ``python -m gat_pyg.train`` runs) in every rank, counting
the optimizer steps of each mini-batch epoch, and writes each rank's counts to
``OUT/steps_rank<r>.json`` (an empty list if no mini-batch epoch ran).
"""
import json
import os
import sys
from pathlib import Path

import torch

from gat_pyg.cli import main
from gat_pyg.train.minibatch import MiniBatchTask


def run(out: Path, argv) -> int:
    per_epoch = []
    adam_step, train_epoch = torch.optim.Adam.step, MiniBatchTask.train_epoch

    def counting_step(self, *args, **kwargs):
        if per_epoch:
            per_epoch[-1] += 1
        return adam_step(self, *args, **kwargs)

    def counting_epoch(task, *args, **kwargs):
        per_epoch.append(0)
        return train_epoch(task, *args, **kwargs)

    torch.optim.Adam.step = counting_step
    MiniBatchTask.train_epoch = counting_epoch
    status = main(['train', *argv])
    (out / f"steps_rank{os.environ['RANK']}.json").write_text(json.dumps(per_epoch))
    return status


if __name__ == '__main__':
    separator = sys.argv.index('--')
    sys.exit(run(Path(sys.argv[1]), sys.argv[separator + 1:]))

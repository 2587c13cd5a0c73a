"""Progress bars of training runs, honest about what they count and shown only on a terminal.

A run under the GAT stopping rule has ``epochs: 100000`` as a mere ceiling: it ends when the
validation metrics stop improving for ``patience`` epochs, so a bar counting to 100,000 would
promise hours for a 15-second run. Such a bar counts epochs without a total and shows, instead,
how many epochs have passed without improvement out of ``patience`` — the distance to the stop.
Rules with a fixed length (``none``) or a true ceiling (``gcn``, at most ``epochs``) count to
``epochs``.

A bar redrawn into a file (stderr redirected) becomes one line per redraw, thousands per run, so
bars are drawn only when their stream is a terminal (tqdm's ``disable=None``).
"""
from typing import Any, Dict, Optional

from tqdm.auto import tqdm

from gat_pyg.train.schema import TrainConfig
from gat_pyg.train.early_stopping import EarlyStopping


def bar_disabled(enabled: bool) -> Optional[bool]:
    """tqdm's ``disable`` for a bar the caller wants (``enabled``): ``None`` lets tqdm draw it
    only on a terminal."""
    return None if enabled else True


class EpochBar(tqdm):
    """The epoch bar of one run: ``update()`` once per epoch, ``set_postfix`` as tqdm's.

    Args:
        config (TrainConfig): The run (its ``epochs``, and the bar's label).
        stopping (EarlyStopping): The run's stopping rule; a patience rule (one with
            ``bad_epochs`` and ``patience``) gets a bar without a total that shows
            ``no improvement k/patience``.
        enabled (bool): Draw the bar (on a terminal only, see :func:`bar_disabled`).
        file (optional): The stream to draw on. (default: ``sys.stderr``)
    """

    def __init__(self, config: TrainConfig, stopping: EarlyStopping, enabled: bool,
                 file: Any = None):
        self.stopping = stopping
        patient = hasattr(stopping, 'bad_epochs') and hasattr(stopping, 'patience')
        super().__init__(total=None if patient else config.epochs,
                         disable=bar_disabled(enabled), leave=False, unit=' epochs',
                         desc=f'{config.dataset}/{config.model} seed {config.seed}', file=file)

    @property
    def format_dict(self) -> Dict[str, Any]:
        values = super().format_dict
        if hasattr(self.stopping, 'bad_epochs'):
            patience = (f'no improvement {self.stopping.bad_epochs}/'
                        f'{self.stopping.patience}')
            values['postfix'] = ', '.join(filter(None, [values.get('postfix'), patience]))
        return values

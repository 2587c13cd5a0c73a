"""The epoch bar: patience instead of a 100,000-epoch total, drawn only on a terminal."""
import io

from tqdm.auto import tqdm

from gat_pyg.train.config import TrainConfig
from gat_pyg.train.early_stopping import make_stopping
from gat_pyg.train.progress import EpochBar, bar_disabled

class _Terminal(io.StringIO):
    def isatty(self):
        return True

def test_gat_rule_counts_epochs_without_a_total_and_shows_patience():
    config = TrainConfig()                                  # epochs 100000, patience 100
    stopping = make_stopping('gat', 100)
    terminal = _Terminal()
    bar = EpochBar(config, stopping, enabled=True, file=terminal)
    assert bar.total is None                               # no 42-minute estimate
    for loss in (1.0, 2.0, 3.0):                           # one improvement, then two epochs
        stopping.step(loss, 0.5 if loss == 1.0 else 0.1)   # without
        bar.update()
    assert bar.format_dict['postfix'] == 'no improvement 2/100'
    bar.set_postfix({'val_acc': '0.500'}, refresh=False)
    assert bar.format_dict['postfix'] == 'val_acc=0.500, no improvement 2/100'
    bar.refresh()
    assert 'no improvement 2/100' in terminal.getvalue() and '100000' not in terminal.getvalue()
    bar.close()

def test_fixed_length_rules_count_to_epochs():
    for rule in ('gcn', 'none'):
        config = TrainConfig.from_dict({'model': 'gcn', 'early_stopping': rule, 'epochs': 200,
                                        'patience': 10})
        bar = EpochBar(config, make_stopping(rule, 10), enabled=False)
        assert bar.total == 200 and 'no improvement' not in (bar.format_dict['postfix'] or '')
        bar.close()

def test_bars_are_drawn_on_a_terminal_only():
    assert bar_disabled(False) is True and bar_disabled(True) is None
    for file, drawn in ((io.StringIO(), False), (_Terminal(), True)):
        bar = tqdm(total=3, disable=bar_disabled(True), file=file)
        bar.update()
        bar.close()
        assert bool(file.getvalue()) is drawn

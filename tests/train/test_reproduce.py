"""reproduce: the table, atomic files, and resuming an interrupted reproduction."""
import json
import logging

import pytest

import gat_pyg.train.loop as loop
from gat_pyg.train import reproduce
from gat_pyg.train.reproduce import RESULT_FILES, ReproduceInterrupted, format_table

TINY = {'epochs': 3}


def _reproduce(out, data_root, mirror, **kwargs):
    kwargs.setdefault('overrides', TINY)
    return reproduce(['cora'], ['gcn', 'mlp'], 2, out, root=data_root, mirror=str(mirror),
                     progress=False, **kwargs)


def _table(out):
    rows = json.loads((out / 'results.json').read_text())['rows']
    return [{k: v for k, v in row.items() if k != 'seconds'} for row in rows]


def test_resume_retrains_only_the_missing_run(tmp_path, data_root, mirror, caplog):
    out = tmp_path / 'out'
    rows = _reproduce(out, data_root, mirror)
    assert [(r.dataset, r.model, r.runs) for r in rows] == [('cora', 'gcn', 2), ('cora', 'mlp', 2)]
    assert rows[0].paper == 0.815 and len(rows[0].test_acc) == 2
    assert all((out / name).is_file() for name in RESULT_FILES)
    before = _table(out)
    kept = out / 'runs' / 'cora_gcn' / 'seed_0' / 'result.json'
    kept_mtime = kept.stat().st_mtime_ns
    for path in (out / 'runs' / 'cora_mlp' / 'seed_1').iterdir():
        path.unlink()
    (out / 'runs' / 'cora_mlp' / 'seed_1').rmdir()

    with caplog.at_level(logging.INFO, logger='gat_pyg'):
        _reproduce(out, data_root, mirror)
    trained = [r.getMessage() for r in caplog.records if r.getMessage().startswith('training')]
    skipped = [r.getMessage() for r in caplog.records if r.getMessage().startswith('skipping')]
    assert len(trained) == 1 and trained[0].endswith('cora_mlp/seed_1')
    assert len(skipped) == 3
    assert kept.stat().st_mtime_ns == kept_mtime
    assert _table(out) == before                          # seeded: the same numbers again


def test_a_finished_run_with_other_settings_is_replaced_only_with_overwrite(
        tmp_path, data_root, mirror, caplog):
    out = tmp_path / 'out'
    reproduce(['cora'], ['mlp'], 1, out, overrides=TINY, root=data_root, mirror=str(mirror),
              progress=False)
    result = out / 'runs' / 'cora_mlp' / 'seed_0' / 'result.json'
    before = result.read_text()
    with pytest.raises(ValueError, match=r"cora_mlp/seed_0 holds a finished run trained with "
                                         r"other settings \(epochs: 3 there, 4 now\); pass "
                                         r"--overwrite"):
        reproduce(['cora'], ['mlp'], 1, out, overrides={'epochs': 4}, root=data_root,
                  mirror=str(mirror), progress=False)
    assert result.read_text() == before                   # nothing was replaced
    with caplog.at_level(logging.INFO, logger='gat_pyg'):
        reproduce(['cora'], ['mlp'], 1, out, overrides={'epochs': 4}, root=data_root,
                  mirror=str(mirror), progress=False, overwrite=True)
    assert any('trained with other settings' in r.getMessage() for r in caplog.records)
    assert json.loads(result.read_text())['result']['epochs'] == 4


def test_interrupted_run_leaves_no_results_and_resumes(tmp_path, data_root, mirror,
                                                      monkeypatch):
    out = tmp_path / 'out'
    real_step = loop.NodeTask.train_epoch
    calls = {'n': 0}

    def interrupted_step(*args):
        calls['n'] += 1
        if calls['n'] == 5:                       # during the second run (3 epochs each)
            raise KeyboardInterrupt
        return real_step(*args)

    monkeypatch.setattr(loop.NodeTask, 'train_epoch', interrupted_step)
    with pytest.raises(ReproduceInterrupted) as interrupted:
        reproduce(['cora'], ['mlp'], 2, out, overrides=TINY, root=data_root,
                  mirror=str(mirror), progress=False)
    assert (interrupted.value.finished, interrupted.value.total) == (1, 2)
    assert isinstance(interrupted.value, KeyboardInterrupt)
    assert not any((out / name).exists() for name in RESULT_FILES)
    assert (out / 'runs' / 'cora_mlp' / 'seed_0' / 'result.json').is_file()
    unfinished = out / 'runs' / 'cora_mlp' / 'seed_1'
    assert (unfinished / 'config.yaml').is_file()
    assert not (unfinished / 'result.json').exists()
    assert not list(out.rglob('*.tmp'))
    monkeypatch.setattr(loop.NodeTask, 'train_epoch', real_step)
    rows = reproduce(['cora'], ['mlp'], 2, out, overrides=TINY, root=data_root,
                     mirror=str(mirror), progress=False)
    assert rows[0].runs == 2 and (unfinished / 'result.json').is_file()


def test_arguments_are_checked_before_training(tmp_path, data_root, mirror):
    with pytest.raises(ValueError, match='may not set seed'):
        _reproduce(tmp_path, data_root, mirror, overrides={'seed': 3})
    with pytest.raises(ValueError, match="unknown model 'gin'"):
        reproduce(['cora'], ['gin'], 1, tmp_path, progress=False)
    with pytest.raises(ValueError, match='unknown Planetoid dataset'):
        reproduce(['ppi'], ['gat'], 1, tmp_path, progress=False)
    with pytest.raises(ValueError, match='runs must be >= 1'):
        reproduce(['cora'], ['gat'], 0, tmp_path, progress=False)
    with pytest.raises(FileNotFoundError):
        reproduce(['cora'], ['gat'], 1, tmp_path, config_dir=tmp_path, progress=False)
    assert not (tmp_path / 'runs').exists()


def test_format_table():
    from gat_pyg.train.reproduce import ResultRow
    table = format_table([ResultRow('cora', 'gat', 10, 0.8312, 0.0071, 0.83, 41.2, []),
                          ResultRow('cora', 'gatv2', 10, 0.82, 0.0, None, 1.0, [])])
    assert '| cora | gat | 10 | 83.1 ± 0.7 | 83.0 | 41.2 |' in table
    assert '| cora | gatv2 | 10 | 82.0 ± 0.0 | — | 1.0 |' in table

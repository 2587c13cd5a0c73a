"""reproduce: the table, atomic files, and resuming an interrupted reproduction."""
import json
import logging

import pytest

import gat_pyg.train.fullbatch as fullbatch
from gat_pyg.train import reproduce
from gat_pyg.train import TrainConfig
from gat_pyg.train.reproduce import (RESULT_FILES, ReproduceInterrupted, format_table,
                                      stopped_early, summarise, write_results)
from gat_pyg.train.results import RunResult

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
    real_step = fullbatch.NodeTask.train_epoch
    calls = {'n': 0}

    def interrupted_step(*args):
        calls['n'] += 1
        if calls['n'] == 5:                       # during the second run (3 epochs each)
            raise KeyboardInterrupt
        return real_step(*args)

    monkeypatch.setattr(fullbatch.NodeTask, 'train_epoch', interrupted_step)
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
    monkeypatch.setattr(fullbatch.NodeTask, 'train_epoch', real_step)
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
    table = format_table([ResultRow('cora', 'gat', 10, 0.8312, 0.0071, 0.83, 41.2, [],
                                    sem=0.00237, early=[1, 4]),
                          ResultRow('cora', 'gatv2', 10, 0.82, 0.0, None, 1.0, []),
                          ResultRow('cora', 'mlp', 7, 0.5, 0.1, 0.551, 2.0, [], sem=0.04,
                                    early=[0, 1, 2, 3, 5, 6]),
                          ResultRow('cora', 'gcn', 2, 0.81, 0.0, 0.815, 1.0, [], sem=0.0,
                                    early=[3])])
    lines = table.splitlines()
    assert lines[0] == ('| Dataset | Model | Runs | Test accuracy (%) | Std. error | Stopped early '
                        '| Paper (%) | Time (s) |')
    assert lines[2] == '| cora | gat | 10 | 83.1 ± 0.7 | 0.24 | 2 (seeds 1, 4) | 83.0 | 41.2 |'
    assert lines[3] == '| cora | gatv2 | 10 | 82.0 ± 0.0 | — | 0 | — | 1.0 |'
    assert lines[4] == ('| cora | mlp | 7 | 50.0 ± 10.0 | 4.00 | 6 (seeds 0, 1, 2, 3, 5, ...) '
                        '| 55.1 | 2.0 |')
    assert lines[5] == '| cora | gcn | 2 | 81.0 ± 0.0 | 0.00 | 1 (seed 3) | 81.5 | 1.0 |'


def _result(seed, test_acc, best_epoch, epochs):
    return RunResult(dataset='cora', model='gat', seed=seed, test_acc=test_acc, val_acc=0.8,
                     val_loss=1.0, best_epoch=best_epoch, epochs=epochs, seconds=1.0)


def test_stopped_early_is_each_stopping_rules_own_notion():
    gat, gcn = TrainConfig(), TrainConfig(model='gcn')
    assert gat.patience == 100 and gcn.epochs == 200
    # the GAT rule: the tested checkpoint is from the first `patience` epochs
    assert stopped_early(_result(1, 0.794, best_epoch=58, epochs=994), gat)
    assert not stopped_early(_result(0, 0.843, best_epoch=100, epochs=926), gat)
    # Kipf's rule tests the last model: early is before the epoch ceiling
    assert stopped_early(_result(0, 0.811, best_epoch=185, epochs=186), gcn)
    assert not stopped_early(_result(1, 0.811, best_epoch=199, epochs=200), gcn)
    none = TrainConfig(model='gcn', early_stopping='none', epochs=5)
    assert not stopped_early(_result(0, 0.5, best_epoch=4, epochs=5), none)


def test_summarise_gives_the_standard_error_and_the_early_seeds():
    import math
    import statistics

    accs = [0.843, 0.794, 0.833, 0.837]
    results = [_result(seed, acc, best, 900) for seed, acc, best in
               zip((3, 1, 0, 2), [accs[3], accs[1], accs[0], accs[2]], (400, 58, 300, 99))]
    row = summarise('cora', 'gat', results, TrainConfig())
    assert row.test_acc == accs                               # seed order
    assert row.mean == pytest.approx(sum(accs) / 4)
    assert row.std == pytest.approx(statistics.pstdev(accs))
    assert row.sem == pytest.approx(statistics.stdev(accs) / math.sqrt(4))
    assert row.early == [1, 2] and row.paper == 0.83
    assert summarise('cora', 'gat', results[:1], TrainConfig()).sem is None


def test_results_files_carry_the_standard_error_and_early_runs(tmp_path):
    row = summarise('cora', 'gat', [_result(0, 0.8, 50, 900), _result(1, 0.84, 300, 900)],
                    TrainConfig())
    write_results(tmp_path, [row])
    stored = json.loads((tmp_path / 'results.json').read_text())['rows'][0]
    assert stored['sem'] == pytest.approx(0.02) and stored['early'] == [0]
    csv_lines = (tmp_path / 'results.csv').read_text().splitlines()
    assert csv_lines[0] == 'dataset,model,runs,mean,std,sem,early_runs,paper,seconds'
    assert csv_lines[1].split(',')[6] == '1'


def test_a_run_finished_before_a_key_existed_is_still_finished(tmp_path, data_root, mirror,
                                                               caplog):
    """A run folder written before the schema had `act` holds a config without it: resolved
    from the pair's file it is the same run, so rerunning skips it instead of refusing."""
    out = tmp_path / 'out'
    reproduce(['cora'], ['mlp'], 1, out, overrides=TINY, root=data_root, mirror=str(mirror),
              progress=False)
    result = out / 'runs' / 'cora_mlp' / 'seed_0' / 'result.json'
    stored = json.loads(result.read_text())
    del stored['config']['act']
    result.write_text(json.dumps(stored))
    with caplog.at_level(logging.INFO, logger='gat_pyg'):
        reproduce(['cora'], ['mlp'], 1, out, overrides=TINY, root=data_root, mirror=str(mirror),
                  progress=False)
    assert any(m.getMessage().startswith('skipping') for m in caplog.records)
    assert not any(m.getMessage().startswith('training') for m in caplog.records)
    # another value is still another run
    stored['config']['act'] = 'elu'
    result.write_text(json.dumps(stored))
    with pytest.raises(ValueError, match="act: 'elu' there, 'relu' now"):
        reproduce(['cora'], ['mlp'], 1, out, overrides=TINY, root=data_root, mirror=str(mirror),
                  progress=False)

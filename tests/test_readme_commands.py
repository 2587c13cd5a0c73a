"""Every shell command in the README runs: here, or in CI (.ci/run: the set-up of scripts/test.sh,
then the README's test command).

Commands that train for minutes run with their arguments as written plus ``--epochs 1`` (and at
most one seed: ``--runs 1``), in a scratch folder laid out like a clone with ``../shared`` beside
it, so that parsing, config resolution, data loading and the run folders are the real ones.
Commands that need machines or hours (two-machine torchrun, benchmarks at full size, by script
or by ``gat-pyg bench``) are parsed by the very parser that would run them; the benchmarks also
run at toy size in tests/bench. A README command that none of the rules below covers fails
:func:`test_every_command_is_covered`.
"""
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / 'README.md'


def readme_commands():
    """``(section, command)`` for each command line of each ```bash block (continuations joined,
    comments dropped), and each inline `gat-pyg ...` / `python benchmarks/...` code span; the
    section is the nearest ``##`` or ``###`` heading above it."""
    commands, section = [], None
    for part in re.split(r'^(#{2,3} .*)$', README.read_text(), flags=re.M):
        if re.match(r'#{2,3} ', part):
            section = part.lstrip('#').strip()
            continue
        for block in re.findall(r'```bash\n(.*?)```', part, re.S):
            for line in re.sub(r'\\\n\s*', ' ', block).splitlines():
                line = ' '.join(re.split(r'\s#\s', line)[0].split())
                if line and not line.startswith('#'):
                    commands.append((section, line))
        prose = re.sub(r'```.*?```', '', part, flags=re.S)
        for span in re.findall(r'`((?:gat-pyg|python benchmarks/)[^`]*)`', prose):
            # a command, not the bare program name nor a template (gat-pyg COMMAND --help)
            if len(span.split()) > 1 and not re.search(r'\b[A-Z]{3,}\b', span):
                commands.append((section, span))
    return commands


COMMANDS = readme_commands()
TEST_COMMAND = 'GAT_PYG_EXPECT_NATIVE=1 GAT_PYG_EXPECT_TRITON=1 python -m pytest -q'
"""The README's test command (section "Tests"), which CI runs."""


def _split(command):
    """``(environment, argv)`` of a command line ``A=1 B=2 program args``."""
    words = shlex.split(command)
    env = {}
    while words and re.match(r'^[A-Z_]+=', words[0]):
        key, value = words.pop(0).split('=', 1)
        env[key] = value
    return env, words


def kind(command):
    """How the command is run (see the module docstring)."""
    env, words = _split(command)
    program = ' '.join(words[:2])
    if command in ('scripts/test.sh', TEST_COMMAND, 'bash .ci/run'):
        return 'ci'
    if command == 'scripts/reproduce.sh':
        return 'reproduce script'
    if words[:1] in (['pip'], ['python3']) or command.startswith('MAX_JOBS='):
        return 'install'
    if words[:2] == ['gat-pyg', 'bench']:
        return 'benchmark'
    if words[:1] == ['gat-pyg'] or program in ('python -m', ):
        return 'cli'
    if words[:1] == ['torchrun']:
        return 'torchrun standalone' if '--standalone' in words else 'torchrun machines'
    if words[:1] == ['python'] and words[1].startswith('benchmarks/'):
        return 'benchmark'
    if words[:2] == ['jupyter', 'execute']:
        return 'notebook'
    return None


def test_every_command_is_covered():
    assert len(COMMANDS) > 10
    unknown = [(section, c) for section, c in COMMANDS if kind(c) is None]
    assert not unknown, f'README commands no test runs (add a rule to kind()): {unknown}'


def test_the_quick_start_is_two_commands():
    text = README.read_text().split('## Quick start')[1].split('\n## ')[0]
    (block, ) = re.findall(r'```bash\n(.*?)```', text, re.S)
    assert [line.split('#')[0].strip() for line in block.splitlines()] == \
        ['scripts/reproduce.sh', 'scripts/test.sh']


def test_ci_runs_the_readme_test_command_after_the_scripts_set_up():
    assert ('Tests', TEST_COMMAND) in COMMANDS
    ci = (ROOT / '.ci' / 'run').read_text()
    lines = [line.strip() for line in ci.splitlines()]
    assert lines.index('scripts/test.sh --setup-only') < \
        next(i for i, line in enumerate(lines) if line.startswith(TEST_COMMAND))
    test_script = (ROOT / 'scripts' / 'test.sh').read_text()
    assert 'export GAT_PYG_EXPECT_NATIVE="${GAT_PYG_EXPECT_NATIVE:-1}"' in test_script
    assert 'export GAT_PYG_EXPECT_TRITON="${GAT_PYG_EXPECT_TRITON:-1}"' in test_script
    assert 'python -m pytest -q "$@"' in test_script
    for name in ('reproduce.sh', 'test.sh'):
        assert os.access(ROOT / 'scripts' / name, os.X_OK), name


def test_the_reproduce_script_runs_the_readme_command():
    script = (ROOT / 'scripts' / 'reproduce.sh').read_text()
    readme = next(c for _, c in COMMANDS if kind(c) == 'cli'
                  and re.search(r'--models gat gcn --runs 10\b', c))
    _, words = _split(readme)
    assert ' '.join(words) + ' "$@"' in ' '.join(script.replace('\\\n', ' ').split())


INSTALL_STEPS = {
    'python3 -m venv .venv && source .venv/bin/activate':
        ['python3 -m venv "$VENV"', 'source "$VENV/bin/activate"',
         'VENV="${GAT_PYG_VENV:-$ROOT/.venv}"'],
    'pip install torch==2.13.0 --extra-index-url https://download.pytorch.org/whl/cpu':
        ['TORCH_SPEC="${GAT_PYG_TORCH:-torch==2.13.0}"',
         'TORCH_INDEX="${GAT_PYG_TORCH_INDEX-https://download.pytorch.org/whl/cpu}"',
         'python -m pip install --quiet $TORCH_SPEC '
         '${TORCH_INDEX:+--extra-index-url "$TORCH_INDEX"}'],
    "pip install 'setuptools>=77' wheel": ["python -m pip install --quiet 'setuptools>=77' wheel"],
    'MAX_JOBS=2 pip install --no-build-isolation torch-scatter torch-sparse':
        ['MAX_JOBS="${MAX_JOBS:-2}" python -m pip install --quiet --no-build-isolation '
         'torch-scatter torch-sparse'],
    'pip install triton==3.6.0':
        ['local spec="${GAT_PYG_TRITON_SPEC:-triton==3.6.0}"',
         'python -m pip install --quiet "$spec"'],
    "pip install --no-build-isolation -e '.[scatter,sparse,notebooks,test,gpu]'":
        ['python -m pip install --quiet --no-build-isolation -e "$ROOT${all:+[$all]}"',
         "ensure_package 'scatter,sparse,notebooks,test,gpu'"],
}
"""README Install command -> the lines of scripts/ that run it (CI runs scripts/test.sh)."""


@pytest.mark.parametrize('command', [c for _, c in COMMANDS if kind(c) == 'install'])
def test_install_commands_are_what_the_scripts_run(command):
    scripts = ' '.join(' '.join(p.read_text().split()) for p in (ROOT / 'scripts').glob('*.sh'))
    assert command in INSTALL_STEPS, 'a new Install command: say which script line runs it'
    for line in INSTALL_STEPS[command]:
        assert ' '.join(line.split()) in scripts, line


@pytest.fixture(scope='session')
def planetoid_cached(data_root, mirror):
    """Cora and CiteSeer already fetched into the data root, as on a machine that ran any
    command before: a README command without the mirror variable would download them, which a
    machine without internet cannot (and the order of the tests must not decide)."""
    from gat_pyg.data import load_planetoid

    for name in ('cora', 'citeseer'):
        load_planetoid(name, root=data_root, mirror=str(mirror))
    return data_root


@pytest.fixture
def clone(tmp_path, monkeypatch, mirror, planetoid_cached):
    """A scratch folder laid out as a clone: configs/ inside, ../shared/data/planetoid beside."""
    work = tmp_path / 'clone'
    work.mkdir()
    (work / 'configs').symlink_to(ROOT / 'configs')
    (tmp_path / 'shared' / 'data').mkdir(parents=True)
    (tmp_path / 'shared' / 'data' / 'planetoid').symlink_to(mirror)
    monkeypatch.chdir(work)
    monkeypatch.setenv('GAT_PYG_DATA', str(planetoid_cached))
    monkeypatch.delenv('GAT_PYG_PLANETOID_MIRROR', raising=False)
    return work


def _shortened(words):
    """A training command's words with ``--epochs 1`` and at most one seed."""
    words = list(words)
    if '--runs' in words:
        at = words.index('--runs') + 1
        words[at] = str(min(int(words[at]), 1))
    return words + ['--epochs', '1', '--no-progress']


CLI = [c for _, c in COMMANDS if kind(c) == 'cli']


@pytest.mark.slow
@pytest.mark.parametrize('command', CLI)
def test_cli_commands_run(command, clone, monkeypatch, tmp_path):
    from gat_pyg.cli import main

    env, words = _split(command)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    if words[:3] == ['python', '-m', 'gat_pyg.train']:
        words = ['gat-pyg', 'train', *words[3:]]
    elif words[:3] == ['python', '-m', 'gat_pyg.cli']:
        words = ['gat-pyg', *words[3:]]
    assert words[0] == 'gat-pyg', command
    argv = words[1:]
    if argv[0] in ('train', 'reproduce') and '--help' not in argv:
        if 'configs/ppi_gat.yaml' in argv:
            # No PPI files can be downloaded here: the synthetic dataset in PPI's raw format.
            sys.path.insert(0, str(ROOT / 'tests'))
            from ppi_synthetic import write_ppi_raw
            write_ppi_raw(tmp_path / 'ppi')
            argv += ['--data-root', str(tmp_path / 'ppi')]
        if argv[0] == 'train':
            needs = 'torch_sparse' if '--batch-size' in argv else None
            if needs:
                pytest.importorskip(needs)
        assert main(_shortened(argv)) == 0, command
    else:
        with pytest.raises(SystemExit) as info:
            main(argv)
        assert info.value.code == 0


@pytest.mark.slow
@pytest.mark.parametrize('command', [c for _, c in COMMANDS if kind(c) == 'torchrun standalone'])
def test_single_machine_torchrun_runs(command, clone):
    torchrun = shutil.which('torchrun')
    assert torchrun, 'torchrun is installed with torch'
    env, words = _split(command)
    env = dict(os.environ, **env, OMP_NUM_THREADS='1',
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT),
                                                         os.environ.get('PYTHONPATH')])))
    finished = subprocess.run([torchrun, *words[1:], '--epochs', '1', '--no-progress'],
                              cwd=clone, env=env, capture_output=True, text=True, timeout=600)
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert (clone / 'results' / 'runs' / 'cora_gat' / 'seed_0' / 'result.json').is_file()


@pytest.mark.parametrize('command', [c for _, c in COMMANDS if kind(c) == 'torchrun machines'])
def test_multi_machine_torchrun_commands_parse(command):
    from gat_pyg.cli import build_parser

    _, words = _split(command)
    module = words.index('-m')
    assert words[module + 1] == 'gat_pyg.train'
    build_parser().parse_args(['train', *words[module + 2:]])


@pytest.mark.parametrize('command', [c for _, c in COMMANDS if kind(c) == 'benchmark'])
def test_benchmark_commands_parse(command):
    import importlib

    _, words = _split(command)
    if words[:2] == ['gat-pyg', 'bench']:             # gat-pyg bench NAME options
        prog, name, options = ' '.join(words[:3]), words[2], words[3:]
    else:                                             # python benchmarks/NAME.py options
        prog, name, options = words[1], Path(words[1]).stem, words[2:]
    bench = importlib.import_module(f'gat_pyg.bench.{name}')
    bench.build_parser(prog).parse_args(options)


def test_the_notebook_commands_are_the_ones_test_cli_runs():
    from test_cli import _readme_notebook_command

    notebooks = [c for _, c in COMMANDS if kind(c) == 'notebook']
    assert notebooks == _readme_notebook_command()

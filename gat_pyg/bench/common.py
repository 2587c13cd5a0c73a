"""Benchmarks of our layers against PyG's, timed in the same run on the same inputs.

Each case runs in its own child process so that its peak memory is its own: the child resets
the kernel's peak-RSS counter (``/proc/self/clear_refs``) once its inputs exist, and reports
``VmHWM`` minus the resident size at that moment, i.e. what forward + backward needed on top of
the inputs. Children of the two implementations alternate and the median time is reported.
A case that does not fit under the memory cap is reported as "out of memory".

Timings are only worth reading on an idle machine: torch runs one thread per core by default,
and threads that wait for a core another process holds spin, so a loaded machine can make a
case several times slower, and the ratios with it.
:func:`run_alternating` therefore warns, before its first child, when the load average exceeds
the cores (:func:`machine_load`); ``--threads 1`` (or ``OMP_NUM_THREADS=1``) keeps the damage
small where the machine is shared.
"""
import argparse
import json
import logging
import os
import re
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Dict, List, Optional, Tuple

import torch

from gat_pyg.train.atomic import atomic_write_json

log = logging.getLogger(__name__)

GIB = 1 << 30


@dataclass
class CaseResult:
    name: str
    impl: str
    times_ms: List[float] = field(default_factory=list)
    peak_mib: Optional[float] = None
    error: Optional[str] = None
    extra: Dict[str, float] = field(default_factory=dict)
    """Other numbers a child reported (the first child's), e.g. a sampling time."""

    @property
    def median_ms(self) -> Optional[float]:
        return statistics.median(self.times_ms) if self.times_ms else None


def _rss_kib(field_name: str) -> int:
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(field_name + ':'):
                return int(line.split()[1])
    raise RuntimeError(f'{field_name} not found in /proc/self/status')


def measure(step: Callable[[], None], repeats: int, warmup: int = 1,
            forget: Optional[Callable[[], None]] = None) -> Dict:
    """Times ``step`` and measures the peak memory it needs above the current resident size.

    ``forget`` runs after the warm-up, before the memory baseline: it drops what the warm-up
    left cached (a layer's prepared graph), so that the peak counts it; the first timed step
    then rebuilds it (the median of several repeats is the steady state)."""
    for _ in range(warmup):
        step()
    if forget is not None:
        forget()
    with open('/proc/self/clear_refs', 'w') as f:   # resets VmHWM to the current RSS
        f.write('5')
    base = _rss_kib('VmRSS')
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append((time.perf_counter() - start) * 1000)
    return {'times_ms': times, 'peak_mib': (_rss_kib('VmHWM') - base) / 1024}


def run_child(module: str, args: List[str], memory_cap_gib: float) -> Dict:
    """Runs ``python -m module args`` with an address-space cap; returns its JSON report."""
    def cap():
        limit = int(memory_cap_gib * GIB)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    # The child imports gat_pyg from wherever this process did (installed or a checkout).
    package_parent = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join(filter(None, [package_parent, env.get('PYTHONPATH')]))
    proc = subprocess.run([sys.executable, '-m', module, '--child', *args], capture_output=True,
                          text=True, preexec_fn=cap, env=env)
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith('{'):
            return json.loads(line)
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ['no output']
    oom = proc.returncode in (-9, 137) or 'memory' in tail[0].lower()
    return {'error': 'out of memory' if oom else f'failed: {tail[0]}'}


def machine_load() -> Tuple[float, int]:
    """``(load, cores)``: the 1-minute load average (runnable processes, ``os.getloadavg``) and
    the cores this process may run on; the load is ``0.0`` where the system has no load
    average."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else \
        (os.cpu_count() or 1)
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):
        load = 0.0
    return load, cores


def warn_if_loaded(threads: Optional[int] = None) -> bool:
    """Warn (and return ``True``) when the 1-minute load average exceeds the cores: other work
    is competing for them, so the timings that follow will be slow and noisy."""
    load, cores = machine_load()
    if load <= cores:
        return False
    advice = ('rerun on an idle machine' if threads == 1 else
              'rerun on an idle machine, or with --threads 1 (OMP_NUM_THREADS=1), which keeps '
              "torch's threads from spinning on cores other work holds")
    log.warning('the machine is loaded: load average %.1f over the last minute on %d cores, so '
                'other work competes for the cores and the times below will be slow and noisy, '
                'their ratios too; %s', load, cores, advice)
    return True


def run_alternating(module: str, name: str, variants: Dict[str, List[str]], args) -> Dict[
        str, CaseResult]:
    """Runs every variant's child ``args.rounds`` times, alternating between the variants, and
    collects their times (all repeats) and peak memory (the largest seen). A variant that fails
    (e.g. out of memory) is not run again. Before the first child of a run (once per ``args``),
    warns if the machine is loaded (:func:`warn_if_loaded`): measured then, the load is other
    processes', not the benchmark's own children."""
    if not getattr(args, 'load_checked', False):
        args.load_checked = True
        warn_if_loaded(args.threads)
    threads = ['--threads', str(args.threads)] if args.threads else []
    results = {key: CaseResult(name, key) for key in variants}
    for _ in range(args.rounds):
        for key, child_args in variants.items():
            result = results[key]
            if result.error:
                continue
            report = run_child(module, child_args + threads, args.memory_cap_gib)
            if 'error' in report:
                result.error = report['error']
                log.info('%s, %s: %s', name, key, result.error)
                continue
            log.info('%s, %s: %s, peak +%s', name, key,
                     ', '.join(fmt_ms(t) for t in report['times_ms']),
                     fmt_mib(report['peak_mib']))
            result.times_ms += report['times_ms']
            result.peak_mib = max(result.peak_mib or 0.0, report['peak_mib'])
            for key, value in report.items():
                if key not in ('times_ms', 'peak_mib'):
                    result.extra.setdefault(key, value)
    return results


def format_table(headers: List[str], rows: List[List[str]]) -> str:
    widths = [max(len(str(r[i])) for r in [headers] + rows) for i in range(len(headers))]
    line = lambda r: '| ' + ' | '.join(str(c).ljust(w) for c, w in zip(r, widths)) + ' |'
    return '\n'.join([line(headers), '|' + '|'.join('-' * (w + 2) for w in widths) + '|']
                     + [line(r) for r in rows])


def fmt_ms(value: Optional[float]) -> str:
    return '-' if value is None else f'{value:.1f} ms' if value < 1000 else f'{value / 1000:.2f} s'


def fmt_mib(value: Optional[float]) -> str:
    return '-' if value is None else f'{value:.0f} MiB' if value < 1024 else f'{value / 1024:.2f} GiB'


def ratio(ours: Optional[float], theirs: Optional[float]) -> str:
    if ours is None or theirs is None or ours == 0:
        return '-'
    return f'{theirs / ours:.2f}x'


def make_parser(doc: str, prog: Optional[str]) -> argparse.ArgumentParser:
    """A benchmark's parser: ``prog`` as the user called it (``benchmarks/epoch.py`` or ``gat-pyg
    bench epoch``), the module docstring as plain text (no reST markup) for its description."""
    return argparse.ArgumentParser(prog=prog, description=plain_text(doc),
                                   formatter_class=argparse.RawDescriptionHelpFormatter)


def plain_text(doc: str) -> str:
    """A docstring without reST markup: ``x`` and :role:`~a.b` become x and a.b."""
    doc = re.sub(r':\w+:`~?([^`]+)`', r'\1', doc)
    return re.sub(r'``([^`]+)``', r'\1', doc)


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1 (a count of edges, epochs, rounds, ...)."""
    return _number(text, int, 1, 'an integer >= 1')


def non_negative_int(text: str) -> int:
    """argparse type: an integer >= 0 (a seed)."""
    return _number(text, int, 0, 'an integer >= 0')


def positive_float(text: str) -> float:
    """argparse type: a number > 0 (a memory cap in GiB)."""
    value = _number(text, float, 0.0, 'a number > 0')
    if value == 0.0:
        raise argparse.ArgumentTypeError(f'expected a number > 0, got {text!r}')
    return value


def _number(text: str, kind: type, low, expected: str):
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected {expected}, got {text!r}') from None
    if value < low or value != value:    # value != value: NaN
        raise argparse.ArgumentTypeError(f'expected {expected}, got {text!r}')
    return value


def add_common_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--threads', type=positive_int, default=None,
                        help='torch threads in each child; 1 on a machine other work shares '
                             '(default: torch default, one per core)')
    parser.add_argument('--memory-cap-gib', type=positive_float, default=20.0,
                        help='address-space cap of each child; above it a case reports "out '
                             'of memory" (default: 20)')
    parser.add_argument('--json', default=None, help='also write the results to this file')
    parser.add_argument('--child', action='store_true', help=argparse.SUPPRESS)


def write_json(path: Optional[str], results: List[CaseResult]) -> None:
    if path is None:
        return
    atomic_write_json(path, [dict(asdict(r), median_ms=r.median_ms) for r in results])


def set_threads(threads: Optional[int]) -> None:
    if threads:
        torch.set_num_threads(threads)

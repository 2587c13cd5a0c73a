"""Data-parallel scaling of mini-batch training: seed nodes per second at 1 and 2 processes.

    python benchmarks/ddp.py                                    # 200k nodes / 4M edges
    python benchmarks/ddp.py --nodes 20000 --edges 200000 --steps 5    # a quick check

Each process count runs as one ``torchrun --standalone`` job on this machine (gloo on the CPU,
``--threads`` torch threads per process, 1 by default, so that 2 processes use 2 cores and 1
process uses 1). Every rank builds the same seeded random graph (:mod:`gat_pyg.bench.minibatch`:
Gaussian features, random labels, every node a training node), the 2-layer GAT of that benchmark
(ours), wrapped in ``DistributedDataParallel``, and trains with exactly what
``gat-pyg train --batch-size`` runs under torchrun: :func:`gat_pyg.train.minibatch.make_loader`
(each rank its share of the seeds, ``NeighborLoader`` with ``--num-neighbors``) and
:func:`gat_pyg.train.minibatch.train_batch` (forward, loss, backward with DDP's all-reduce,
Adam step).

**The same workload at every process count**: a step processes ``--batch-size`` seed nodes in
all, ``--batch-size / P`` on each of the ``P`` ranks. The seeds are one permutation dealt out to
the ranks (``DistributedSampler``, ``seed``), so after ``k`` steps the union of the ranks' seeds
is the same set of ``k * batch-size`` nodes whatever ``P`` (the sampled neighbourhoods are
random draws of the same distribution). Throughput is seeds per second over ``--steps`` timed
steps after ``--warmup`` untimed ones, sampling included, between two barriers; speed-up and
efficiency (speed-up / P) are against 1 process. Memory per rank: the resident size once the
graph and the sampler's index are built (what every rank holds), and the peak above it while
training.
"""
import argparse
import json
import logging
import os
import statistics
import subprocess
import sys
from typing import Dict, List, Optional

import torch

from gat_pyg.bench.common import (_rss_kib, fmt_mib, format_table, make_parser,
                                  non_negative_int, positive_float, positive_int, set_threads)
from gat_pyg.train.atomic import atomic_write_json

log = logging.getLogger(__name__)


def child(args) -> None:
    """One rank of a torchrun job: train, time, and (rank 0) print one JSON line."""
    import time

    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    from gat_pyg.bench.minibatch import build_model, random_graph
    from gat_pyg.train.config import TrainConfig
    from gat_pyg.train.loop import make_optimizer
    from gat_pyg.train.minibatch import make_loader, train_batch

    set_threads(args.threads)
    dist.init_process_group('gloo')
    rank, world = dist.get_rank(), dist.get_world_size()
    data = random_graph(args.nodes, args.edges, args.features, args.classes, args.seed)
    config = TrainConfig(batch_size=args.batch_size // world,
                         num_neighbors=list(args.num_neighbors), seed=args.seed, device='cpu')
    loader = make_loader(config, data, rank, world)
    torch.manual_seed(args.seed)
    model = build_model('ours', args.features, args.classes).train()
    trained = DistributedDataParallel(model) if world > 1 else model
    optimizer = make_optimizer(model.parameters(), lr=0.005, weight_decay=5e-4)
    torch.manual_seed(args.seed + rank * 2 ** 32)      # each rank samples on its own stream

    def batches():
        epoch = 0
        while True:
            loader.sampler.set_epoch(epoch)
            yield from loader
            epoch += 1

    stream = batches()
    held_mib = _rss_kib('VmRSS') / 1024
    for _ in range(args.warmup):
        train_batch(trained, optimizer, next(stream))
    with open('/proc/self/clear_refs', 'w') as f:       # resets VmHWM to the current RSS
        f.write('5')
    base = _rss_kib('VmRSS')
    seeds = 0
    dist.barrier()
    start = time.perf_counter()
    for _ in range(args.steps):
        batch = next(stream)
        train_batch(trained, optimizer, batch)
        seeds += batch.batch_size
    dist.barrier()
    seconds = time.perf_counter() - start
    mine = dict(seconds=seconds, seeds=seeds, held_mib=held_mib,
                peak_mib=(_rss_kib('VmHWM') - base) / 1024)
    everyone: List[Optional[Dict]] = [None] * world
    dist.all_gather_object(everyone, mine)
    if rank == 0:
        print(json.dumps(dict(processes=world,
                              seconds=max(r['seconds'] for r in everyone),
                              seeds=sum(r['seeds'] for r in everyone),
                              held_mib=[r['held_mib'] for r in everyone],
                              peak_mib=[r['peak_mib'] for r in everyone])), flush=True)
    # DDP's reducer must go before its process group: left for the interpreter's exit, its
    # destructor was seen to hang one rank in 1 run of 3 (gloo, torch 2.13).
    del trained, stream
    dist.destroy_process_group()


def run_job(processes: int, child_args: List[str], threads: int, timeout: float) -> Dict:
    """One ``torchrun --standalone`` job of ``processes`` ranks; returns rank 0's report."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    env.setdefault('GLOO_SOCKET_IFNAME', 'lo')     # one machine: the loopback interface
    package_parent = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env['PYTHONPATH'] = os.pathsep.join(filter(None, [package_parent, env.get('PYTHONPATH')]))
    try:
        proc = subprocess.run([sys.executable, '-m', 'torch.distributed.run', '--standalone',
                               '--nproc-per-node', str(processes), '-m', 'gat_pyg.bench.ddp',
                               '--child', *child_args], capture_output=True, text=True,
                              env=env, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {'error': f'timed out after {timeout:.0f} s'}
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith('{'):
            return json.loads(line)
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ['no output']
    return {'error': f'failed: {tail[0]}'}


def build_parser(prog: str = 'benchmarks/ddp.py') -> argparse.ArgumentParser:
    """The benchmark's options (every count range-checked by its type); ``prog`` is how
    ``--help`` and usage errors name the command."""
    parser = make_parser(__doc__, prog)
    parser.add_argument('--nodes', type=positive_int, default=200_000,
                        help='nodes of the random graph (default: %(default)s)')
    parser.add_argument('--edges', type=positive_int, default=4_000_000,
                        help='directed edges of the random graph (default: %(default)s)')
    parser.add_argument('--features', type=positive_int, default=64,
                        help='node features (default: %(default)s)')
    parser.add_argument('--classes', type=positive_int, default=16,
                        help='label classes, the output width (default: %(default)s)')
    parser.add_argument('--batch-size', type=positive_int, default=1024,
                        help='seed nodes per step over all processes, split evenly between '
                             'them (default: %(default)s)')
    parser.add_argument('--num-neighbors', type=positive_int, nargs='+', default=[10, 10],
                        help='neighbours sampled per hop, one per layer (default: 10 10)')
    parser.add_argument('--steps', type=positive_int, default=20,
                        help='timed steps (default: %(default)s)')
    parser.add_argument('--warmup', type=non_negative_int, default=3,
                        help='untimed steps first (default: %(default)s)')
    parser.add_argument('--processes', type=positive_int, nargs='+', default=[1, 2],
                        help='process counts to run; the first is the baseline '
                             '(default: 1 2)')
    parser.add_argument('--threads', type=positive_int, default=1,
                        help='torch threads per process (default: %(default)s)')
    parser.add_argument('--rounds', type=positive_int, default=1,
                        help='jobs per process count, alternating; the median time is '
                             'reported (default: %(default)s)')
    parser.add_argument('--seed', type=non_negative_int, default=0,
                        help='seed of the graph, the model and the sampler (default: 0)')
    parser.add_argument('--timeout', type=positive_float, default=3600,
                        help='seconds one job may take before it counts as failed '
                             '(default: %(default)s)')
    parser.add_argument('--json', default=None, help='also write the results to this file')
    parser.add_argument('--child', action='store_true', help=argparse.SUPPRESS)
    return parser


def main(argv: Optional[List[str]] = None, prog: str = 'benchmarks/ddp.py'
         ) -> Optional[List[Dict]]:
    """Run the benchmark with the options in ``argv`` (default: ``sys.argv[1:]``); ``prog`` is how
    ``--help`` and usage errors name the command. Returns the results (``None`` in a child)."""
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    if len(args.num_neighbors) != 2:
        parser.error(f'--num-neighbors: the benchmark model has 2 layers, so give 2 counts, '
                     f'got {len(args.num_neighbors)}')
    for processes in args.processes:
        if processes < 1 or args.batch_size % processes:
            parser.error(f'--processes: each count must be >= 1 and divide --batch-size '
                         f'{args.batch_size} (the same seeds per step at every count), '
                         f'got {processes}')
    if args.child:
        return child(args)
    logging.basicConfig(level=logging.INFO, format='%(message)s')

    forwarded = ('nodes', 'edges', 'features', 'classes', 'batch-size', 'steps', 'warmup',
                 'threads', 'seed')
    child_args = [a for k in forwarded for a in (f'--{k}', str(getattr(args, k.replace('-', '_'))))]
    child_args += ['--num-neighbors', *map(str, args.num_neighbors)]
    reports: Dict[int, List[Dict]] = {p: [] for p in args.processes}
    for _ in range(args.rounds):
        for processes in args.processes:
            report = run_job(processes, child_args, args.threads, args.timeout)
            log.info('%d process(es): %s', processes, report)
            reports[processes].append(report)

    rows, results = [], []
    base_rate = None
    for processes in args.processes:
        good = [r for r in reports[processes] if 'error' not in r]
        if not good:
            rows.append([str(processes), reports[processes][-1]['error'], '-', '-', '-', '-'])
            continue
        seconds = statistics.median(r['seconds'] for r in good)
        rate = good[0]['seeds'] / seconds
        base_rate = rate if base_rate is None else base_rate
        speedup = rate / base_rate
        held = max(max(r['held_mib']) for r in good)
        peak = max(max(r['peak_mib']) for r in good)
        results.append(dict(processes=processes, seeds_per_s=rate, speedup=speedup,
                            efficiency=speedup * args.processes[0] / processes,
                            held_mib=held, peak_mib=peak, reports=good))
        rows.append([str(processes), f'{rate:,.0f}', f'{speedup:.2f}x',
                     f'{100 * speedup * args.processes[0] / processes:.0f} %', fmt_mib(held),
                     fmt_mib(peak)])
    print(format_table(['processes', 'seed nodes / s', 'speed-up', 'efficiency',
                        'held per rank', 'training peak per rank'], rows))
    if args.json is not None:
        atomic_write_json(args.json, results)
    return results


if __name__ == '__main__':
    main()

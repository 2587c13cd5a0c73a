"""The native fused attention ops against PyG's message passing, one layer forward + backward.

    python benchmarks/kernels.py                          # all cases, 1 and 2 threads
    python benchmarks/kernels.py --cases cora --threads 1 --repeats 20

Each case is a random graph and a 64 -> 8 heads x 8 channels layer whose input requires grad.
"pyg" is ``torch_geometric.nn.GATConv`` / ``GATv2Conv`` (``add_self_loops=False``) called on
the edge_index. "native" computes the same formula with the same parameters: the projection(s)
in torch, then ``gat_pyg.kernels.gat_attention`` / ``gatv2_attention`` on the graph sorted once
beforehand; "prep" is that sorting (destination order, transpose), paid once per graph, timed
separately. Each (case, implementation, threads) runs in its own child process, which reports
its median time and its peak memory above the inputs (see :mod:`gat_pyg.bench.common`).
"""
import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402

from gat_pyg.bench.common import fmt_mib, fmt_ms, format_table, measure, run_child  # noqa: E402

# name -> (nodes, edges, repeats)
CASES = {'cora': (2708, 13_264, 20), 'sampled': (85_000, 110_000, 5),
         'large': (200_000, 4_000_000, 2)}
HEADS, CHANNELS, IN_CHANNELS = 8, 8, 64


def prepare(edge_index, num_nodes):
    """Destination-sorted CSR and its transpose, as the kernels take them."""
    src, dst = edge_index
    dst, perm = torch.sort(dst, stable=True)
    src = src[perm]
    src_sorted, t_perm = torch.sort(src, stable=True)
    ptr = torch.zeros(num_nodes + 1, dtype=torch.long)
    ptr[1:] = torch.bincount(dst, minlength=num_nodes).cumsum(0)
    t_ptr = torch.zeros(num_nodes + 1, dtype=torch.long)
    t_ptr[1:] = torch.bincount(src_sorted, minlength=num_nodes).cumsum(0)
    return ptr, src, t_ptr, dst[t_perm], t_perm


def child(args) -> None:
    import torch_geometric.nn as pyg_nn

    from gat_pyg.kernels import gat_attention, gatv2_attention
    torch.set_num_threads(args.threads)
    num_nodes, num_edges, repeats = CASES[args.case]
    gen = torch.Generator().manual_seed(0)
    edge_index = torch.randint(0, num_nodes, (2, num_edges), generator=gen)
    x = torch.randn(num_nodes, IN_CHANNELS, generator=gen).requires_grad_()
    torch.manual_seed(0)
    cls = pyg_nn.GATConv if args.layer == 'gat' else pyg_nn.GATv2Conv
    conv = cls(IN_CHANNELS, CHANNELS, heads=HEADS, add_self_loops=False)
    report = {}
    if args.impl == 'pyg':
        def step():
            conv(x, edge_index).sum().backward()
    else:
        prep_times = []
        for _ in range(3):
            start = time.perf_counter()
            graph = prepare(edge_index, num_nodes)
            prep_times.append((time.perf_counter() - start) * 1000)
        report['prep_ms'] = statistics.median(prep_times)

        def attention():
            if args.layer == 'gat':
                h = conv.lin(x).view(-1, HEADS, CHANNELS)
                s_src, s_dst = (h * conv.att_src).sum(-1), (h * conv.att_dst).sum(-1)
                return gat_attention(*graph, s_src, s_dst, None, h, conv.negative_slope)[0]
            x_l = conv.lin_l(x).view(-1, HEADS, CHANNELS)
            x_r = conv.lin_r(x).view(-1, HEADS, CHANNELS)
            return gatv2_attention(*graph, x_l, x_r, conv.att.view(HEADS, CHANNELS), None,
                                   None, x_l, conv.negative_slope)[0]

        def step():
            (attention().view(num_nodes, -1) + conv.bias).sum().backward()

    def timed_step():
        conv.zero_grad(set_to_none=True)
        x.grad = None
        step()

    report.update(measure(timed_step, args.repeats or repeats))
    print(json.dumps(report))


def median(report):
    return statistics.median(report['times_ms']) if 'times_ms' in report else None


def main() -> None:
    parser = argparse.ArgumentParser(prog='benchmarks/kernels.py', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--cases', nargs='+', choices=list(CASES), default=list(CASES))
    parser.add_argument('--layers', nargs='+', choices=['gat', 'gatv2'], default=['gat', 'gatv2'])
    parser.add_argument('--threads', type=int, nargs='+', default=[1, 2])
    parser.add_argument('--repeats', type=int, default=None,
                        help='timed repeats per child (default: per case)')
    parser.add_argument('--memory-cap-gib', type=float, default=16.0)
    parser.add_argument('--child', action='store_true', help=argparse.SUPPRESS)
    parser.add_argument('--case', help=argparse.SUPPRESS)
    parser.add_argument('--layer', help=argparse.SUPPRESS)
    parser.add_argument('--impl', help=argparse.SUPPRESS)
    parser.add_argument('--threads-child', dest='threads_child', type=int,
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        args.threads = args.threads_child
        child(args)
        return
    rows = []
    for case in args.cases:
        for layer in args.layers:
            for threads in args.threads:
                results = {}
                for impl in ('pyg', 'native'):
                    child_args = ['--case', case, '--layer', layer, '--impl', impl,
                                  '--threads-child', str(threads)]
                    if args.repeats:
                        child_args += ['--repeats', str(args.repeats)]
                    results[impl] = run_child('benchmarks.kernels', child_args,
                                              args.memory_cap_gib)
                pyg, native = results['pyg'], results['native']
                speedup = (f'{median(pyg) / median(native):.2f}x'
                           if median(pyg) and median(native) else '-')
                rows.append([case, layer, threads, fmt_ms(median(pyg)), fmt_ms(median(native)),
                             speedup, fmt_ms(native.get('prep_ms')),
                             pyg.get('error') or fmt_mib(pyg.get('peak_mib')),
                             native.get('error') or fmt_mib(native.get('peak_mib'))])
                print(format_table(['case', 'layer', 'threads', 'pyg', 'native', 'speed-up',
                                    'prep (once)', 'pyg peak', 'native peak'], rows[-1:]),
                      flush=True)
    print(format_table(['case', 'layer', 'threads', 'pyg', 'native', 'speed-up', 'prep (once)',
                        'pyg peak', 'native peak'], rows))


if __name__ == '__main__':
    main()

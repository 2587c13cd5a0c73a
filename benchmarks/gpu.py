"""The GPU check of the Triton kernels: correctness on CUDA, then one layer timed against PyG.

    scripts/gpu_check.sh                 # everything, results under $OUT (default ./gpu-results)
    python benchmarks/gpu.py all --out DIR
    python benchmarks/gpu.py check       # correctness only; exit status 1 on a failure
    python benchmarks/gpu.py time --conv gat --impl triton --edges 4000000 --dtype float32

``all`` writes ``DIR/gpu_check.log`` (everything printed) and ``DIR/gpu_check.json`` (the
environment, every check, every timing, and the ratios). Without a CUDA device it prints one
line saying so, writes the JSON with ``"skipped"`` and exits 0. ``--smoke`` runs the same code
on the CPU through Triton's interpreter at toy sizes (``TRITON_INTERPRET=1``; to test this
script without a GPU; its numbers mean nothing).

1. Correctness (``check``, one child process), on CUDA tensors:
   * every case of ``tests/kernels/triton_cases.py`` (the cases the interpreter tests run against
     the C++ kernels) through the Triton kernels against the plain-torch reference
     (``gat_pyg.kernels.reference``): float32 to 2e-5, float64 to 1e-10, dropout masks
     and dropped values bit for bit; the float32 cases again in bfloat16 and float16 against the
     reference in float32 on the same (rounded) inputs (dropout: bit for bit in those dtypes
     too; Triton's interpreter cannot check that, it converts to bfloat16 by truncation);
   * determinism: forward and backward twice on a 1M-edge graph, with and without dropout,
     bitwise equal (PyG's scatter-based backward is run twice too, for information);
   * one layer against PyG's ``GATConv`` (self-loops added as PyG adds them) and ``GATv2Conv``
     (edge features) with the same weights: output, attention weights, gradients of ``x`` and
     of every parameter (relative error 1e-5); bfloat16 against float32 (relative 5e-2).
2. Timings (``time``, one child process per case): one layer 64 -> 8 heads x 8 channels
   forward + backward (``x`` requires grad; PyG's default self-loops; no dropout) on a random
   graph with E / 20 nodes, E = 1M, 4M, 20M, 62M (ogbn-products' edge count): the median step
   time, the forward alone, and the peak of ``torch.cuda.max_memory_allocated`` above the
   inputs (x, edge index, parameters; our prepared graph counts). Implementations: ``triton``
   (the kernels called through :class:`TritonGATConv` / :class:`TritonGATv2Conv`, a thin
   layer: projection, head scores, attention; the graph prepared once, as the package's layers
   cache it), ``pyg`` (``torch_geometric.nn.GATConv`` / ``GATv2Conv``) and ``gat_pyg`` (the
   package's own layer as it dispatches today, e.g. its pure-torch CSR path on CUDA, or the
   Triton kernels once they are registered and ``GAT_PYG_TRITON=1``); bfloat16 for ``triton``
   at E >= 4M; at E = 4M also int32 indices and other launch shapes (``GAT_PYG_TRITON_TILE``,
   ``GAT_PYG_TRITON_WARPS``: the defaults were chosen without a GPU, from ptxas' register
   counts). A case that runs out of memory says so. Cases run in priority order until the time
   budget (``--budget``, seconds) is spent; the rest are listed as skipped. The ratios: PyG's
   step time over ours (speed-up), our peak memory over PyG's, our float32 step over our
   bfloat16 one, and each variant against the default.

Nothing here needs more than the copied working tree, torch, PyG and Triton (no torch_scatter,
no torch_sparse, no native library).
"""
import argparse
import copy
import json
import os
import platform
import subprocess
import sys
import time
import traceback
from typing import Dict, List, Optional

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
TESTS = os.path.join(ROOT, 'tests', 'kernels')

SIZES = (1_000_000, 4_000_000, 20_000_000, 62_000_000)
SMOKE_SIZES = (400, 1_000)
IN_CHANNELS, HEADS, CHANNELS = 64, 8, 8


# --- the thin layers over the kernels ------------------------------------------------------------

def _kernels():
    from gat_pyg.kernels import triton as kernels
    return kernels


class Prepared:
    """A destination-sorted graph with its transpose (what the kernels take), built once.

    ``perm[k]``: the position in the input edge order of sorted edge ``k``."""

    def __init__(self, edge_index, num_src: int, num_dst: int, index_dtype=None):
        import torch
        src, dst = edge_index[0], edge_index[1]
        dst_sorted, perm = torch.sort(dst, stable=True)
        src_sorted = src[perm]
        t_perm = torch.sort(src_sorted, stable=True)[1]
        dtype = index_dtype or torch.int64

        def pointers(index, rows):
            ptr = torch.zeros(rows + 1, dtype=torch.int64, device=index.device)
            ptr[1:] = torch.bincount(index, minlength=rows).cumsum(0)
            return ptr.to(dtype)

        self.ptr = pointers(dst_sorted, num_dst)
        self.src = src_sorted.to(dtype).contiguous()
        self.t_ptr = pointers(src_sorted, num_src)
        self.t_col = dst_sorted[t_perm].to(dtype).contiguous()
        self.t_perm = t_perm.to(dtype).contiguous()
        self.perm = perm
        self.num_src, self.num_dst = num_src, num_dst

    def args(self):
        return self.ptr, self.src, self.t_ptr, self.t_col, self.t_perm


def _seed(p: float):
    import torch
    return torch.randint(0, 2**62, (), dtype=torch.int64) if p > 0 else None


def _autograd_classes():
    """The autograd functions over the kernels (built lazily: torch is imported late)."""
    import torch
    K = _kernels()

    class HeadScores(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, att):
            ctx.save_for_backward(x, att)
            return K.head_scores(x, att)

        @staticmethod
        def backward(ctx, grad):
            x, att = ctx.saved_tensors
            gx, ga = K.head_scores_backward(grad.contiguous(), x, att, list(ctx.needs_input_grad))
            return (gx if ctx.needs_input_grad[0] else None,
                    ga if ctx.needs_input_grad[1] else None)

    class GATAttend(torch.autograd.Function):
        @staticmethod
        def forward(ctx, s_src, s_dst, h, graph, slope, p, seed):
            out, alpha = K.gat_forward(*graph.args(), s_src, s_dst, None, h, slope, p, seed)
            ctx.save_for_backward(s_src, s_dst, h, alpha)
            ctx.graph, ctx.slope, ctx.p, ctx.seed = graph, slope, p, seed
            ctx.set_materialize_grads(False)
            return out, alpha

        @staticmethod
        def backward(ctx, grad_out, grad_alpha):
            s_src, s_dst, h, alpha = ctx.saved_tensors
            need = ctx.needs_input_grad
            if grad_out is None:
                grad_out = torch.zeros(ctx.graph.num_dst, *h.shape[1:], dtype=h.dtype,
                                       device=h.device)
            gs, gd, _, gh = K.gat_backward(
                grad_out.contiguous(), None if grad_alpha is None else grad_alpha.contiguous(),
                *ctx.graph.args(), s_src, s_dst, None, h, alpha, ctx.slope, ctx.p, ctx.seed,
                [need[0], need[1], False, need[2]])
            return (gs if need[0] else None, gd if need[1] else None, gh if need[2] else None,
                    None, None, None, None)

    class GATv2Attend(torch.autograd.Function):
        """GATv2 attention aggregating x_l itself (GATv2Conv), so backward merges the two
        gradients of x_l (merge_h_src)."""

        @staticmethod
        def forward(ctx, x_l, x_r, att, edge_attr, w_edge, graph, slope, p, seed):
            out, alpha = K.gatv2_forward(*graph.args(), x_l, x_r, att, edge_attr, w_edge, x_l,
                                         slope, p, seed)
            ctx.save_for_backward(x_l, x_r, att, edge_attr, w_edge, alpha)
            ctx.graph, ctx.slope, ctx.p, ctx.seed = graph, slope, p, seed
            ctx.set_materialize_grads(False)
            return out, alpha

        @staticmethod
        def backward(ctx, grad_out, grad_alpha):
            x_l, x_r, att, edge_attr, w_edge, alpha = ctx.saved_tensors
            need = ctx.needs_input_grad
            if grad_out is None:
                grad_out = torch.zeros(ctx.graph.num_dst, *x_l.shape[1:], dtype=x_l.dtype,
                                       device=x_l.device)
            mask = [need[0], need[1], need[2], need[3], need[4], need[0]]
            g = K.gatv2_backward(
                grad_out.contiguous(), None if grad_alpha is None else grad_alpha.contiguous(),
                *ctx.graph.args(), x_l, x_r, att, edge_attr, w_edge, x_l, alpha, ctx.slope,
                ctx.p, ctx.seed, mask, 0.0, None, True)
            grad_x_l = g[0] if g[5].numel() == 0 else g[0] + g[5]
            return (grad_x_l if need[0] else None, g[1] if need[1] else None,
                    g[2] if need[2] else None, g[3] if need[3] else None,
                    g[4] if need[4] else None, None, None, None, None)

    return HeadScores, GATAttend, GATv2Attend


class _Layers:
    """TritonGATConv / TritonGATv2Conv: a PyG layer's parameters, the Triton kernels' math.

    Forward: ``h = W x`` (torch), GAT's per-node scores (``head_scores``), the attention
    (``gat_forward``; GATv2: ``gatv2_forward`` over ``x_l = W_l x``, ``x_r = W_r x`` and the
    edge term ``W_e``), heads concatenated, plus the bias. The graph is a :class:`Prepared`
    one, with self-loops already in it if the layer adds them (PyG adds them per call). Once the
    kernels are registered with the package's layers, ``gat_pyg.GATConv`` with
    ``GAT_PYG_TRITON=1`` replaces these (the ``gat_pyg`` implementation of the timings)."""

    @staticmethod
    def build():
        import torch
        HeadScores, GATAttend, GATv2Attend = _autograd_classes()

        class TritonGATConv(torch.nn.Module):
            def __init__(self, conv):
                super().__init__()
                self.conv = conv      # the parameters (shared, not copied)

            def forward(self, x, graph, return_alpha=False):
                c = self.conv
                H, C = c.heads, c.out_channels
                h = c.lin(x).view(-1, H, C)
                s_src = HeadScores.apply(h, c.att_src.view(H, C))
                s_dst = HeadScores.apply(h, c.att_dst.view(H, C))
                p = c.dropout if self.training else 0.0
                out, alpha = GATAttend.apply(s_src, s_dst, h, graph, c.negative_slope, p,
                                             _seed(p))
                out = out.reshape(-1, H * C) + c.bias
                return (out, alpha) if return_alpha else out

        class TritonGATv2Conv(torch.nn.Module):
            def __init__(self, conv):
                super().__init__()
                self.conv = conv

            def forward(self, x, graph, edge_attr=None, return_alpha=False):
                c = self.conv
                H, C = c.heads, c.out_channels
                x_l = c.lin_l(x).view(-1, H, C)
                x_r = c.lin_r(x).view(-1, H, C)
                w_edge = c.lin_edge.weight if edge_attr is not None else None
                if edge_attr is not None:
                    edge_attr = edge_attr[graph.perm]          # the sorted order
                p = c.dropout if self.training else 0.0
                out, alpha = GATv2Attend.apply(x_l, x_r, c.att.view(H, C), edge_attr, w_edge,
                                               graph, c.negative_slope, p, _seed(p))
                out = out.reshape(-1, H * C) + c.bias
                return (out, alpha) if return_alpha else out

        return TritonGATConv, TritonGATv2Conv


# --- small helpers -------------------------------------------------------------------------------

def _device(smoke: bool):
    import torch
    return torch.device('cpu' if smoke else 'cuda')


def _sync(device):
    import torch
    if device.type == 'cuda':
        torch.cuda.synchronize()


def _rel_err(a, b) -> float:
    a, b = a.detach().double(), b.detach().double()
    if a.numel() == 0 and b.numel() == 0:
        return 0.0
    scale = max(b.abs().max().item(), 1e-30)
    return (a - b).abs().max().item() / scale


class _Report:
    def __init__(self):
        self.checks: List[dict] = []

    def add(self, name: str, ok: bool, **info):
        entry = dict(name=name, ok=bool(ok), **info)
        self.checks.append(entry)
        detail = ' '.join(f'{k}={v:.3g}' if isinstance(v, float) else f'{k}={v}'
                          for k, v in info.items())
        print(f"  {'ok  ' if ok else 'FAIL'} {name} {detail}", flush=True)

    @property
    def failed(self) -> int:
        return sum(not c['ok'] for c in self.checks)


# --- 1. correctness ------------------------------------------------------------------------------

def check_cases(report: _Report, device) -> None:
    """The interpreter tests' cases, on the device, against the reference."""
    import torch
    sys.path.insert(0, TESTS)
    import triton_cases
    from gat_pyg.kernels import reference
    K = _kernels()
    exact = ('mask_gat', 'mask_gatv2', 'dropout')
    print('cases of tests/kernels/triton_cases.py against the reference:', flush=True)
    for case in triton_cases.CASES:
        variants = [(case['dtype'], None)]
        if case['dtype'] == torch.float32 and device.type == 'cuda':
            variants += [(torch.bfloat16, 5e-2), (torch.float16, 1e-2)]
        for dtype, tol in variants:
            name = f"{case['name']}[{str(dtype).replace('torch.', '')}]"
            try:
                c = dict(case, dtype=dtype)
                got = triton_cases.run(c, K, device)
                if case['kind'] == 'dropout':
                    tol = None      # x * scale * keep rounds once: the same in every dtype
                want = triton_cases.run(c, reference, device,
                                        cast=torch.float32 if tol else None)
                if len(got) != len(want):
                    report.add(name, False, error='result count')
                    continue
                shapes = all(a.shape == b.shape for a, b in zip(got, want))
                if case['kind'] in exact and tol is None:
                    ok = shapes and all(torch.equal(a, b) for a, b in zip(got, want))
                    report.add(name, ok, exact=True)
                else:
                    limit = tol or (1e-10 if dtype == torch.float64 else 2e-5)
                    err = max([_rel_err(a, b) for a, b in zip(got, want)] or [0.0])
                    report.add(name, shapes and err <= limit, rel_err=err, limit=limit)
            except Exception as error:   # noqa: BLE001
                report.add(name, False, error=f'{type(error).__name__}: {error}')
                traceback.print_exc()


def check_determinism(report: _Report, device, smoke: bool) -> None:
    import torch
    K = _kernels()
    print('determinism (each computation twice, bitwise):', flush=True)
    gen = torch.Generator().manual_seed(0)
    n, e, H, C, D = (40, 400, 8, 8, 4) if smoke else (50_000, 1_000_000, 8, 8, 4)
    edge_index = torch.randint(0, n, (2, e), generator=gen).to(device)
    g = Prepared(edge_index, n, n)
    r = lambda *s: torch.randn(*s, generator=gen).to(device)   # noqa: E731
    s_src, s_dst, h = r(n, H), r(n, H), r(n, H, C)
    x_r, att, ea, we = r(n, H, C), r(H, C), r(e, D), r(H * C, D)
    grad_out = r(n, H, C)
    for p in (0.0, 0.5):
        seed = torch.tensor(7) if p else None

        def gat():
            out, alpha = K.gat_forward(*g.args(), s_src, s_dst, None, h, 0.2, p, seed)
            return [out, alpha, *K.gat_backward(grad_out, None, *g.args(), s_src, s_dst, None, h,
                                                alpha, 0.2, p, seed, [True] * 4)]

        def gatv2():
            out, alpha = K.gatv2_forward(*g.args(), h, x_r, att, ea, we, h, 0.2, p, seed)
            return [out, alpha, *K.gatv2_backward(grad_out, alpha, *g.args(), h, x_r, att, ea,
                                                  we, h, alpha, 0.2, p, seed, [True] * 6,
                                                  0.0, None, True)]

        for name, fn in (('gat', gat), ('gatv2', gatv2)):
            first, second = fn(), fn()
            _sync(device)
            report.add(f'deterministic_{name}_p{p}',
                       all(torch.equal(a, b) for a, b in zip(first, second)))
    if device.type == 'cuda' and not smoke:
        import torch_geometric.nn as pyg_nn
        torch.manual_seed(0)
        conv = pyg_nn.GATConv(IN_CHANNELS, CHANNELS, heads=HEADS).to(device)
        x = torch.randn(n, IN_CHANNELS, device=device, requires_grad=True)
        grads = []
        for _ in range(2):
            x.grad = None
            conv(x, edge_index).square().sum().backward()
            grads.append(x.grad.clone())
        print(f'  info PyG GATConv x.grad bitwise equal run to run: '
              f'{torch.equal(grads[0], grads[1])} (pyg-team/pytorch_geometric#8866)', flush=True)


def check_layers(report: _Report, device, smoke: bool) -> None:
    """Our thin layers against PyG's, same weights."""
    import torch
    import torch_geometric.nn as pyg_nn
    from torch_geometric.utils import add_self_loops, remove_self_loops
    TritonGATConv, TritonGATv2Conv = _Layers.build()
    print("one layer against PyG's, same weights:", flush=True)
    n, e = (60, 600) if smoke else (3000, 60_000)
    gen = torch.Generator().manual_seed(1)
    edge_index = torch.randint(0, n, (2, e), generator=gen).to(device)
    x0 = torch.randn(n, IN_CHANNELS, generator=gen).to(device)
    for kind in ('gat', 'gatv2'):
        torch.manual_seed(2)
        if kind == 'gat':
            pyg = pyg_nn.GATConv(IN_CHANNELS, CHANNELS, heads=HEADS).to(device)
            ei, _ = remove_self_loops(edge_index)
            ei, _ = add_self_loops(ei, num_nodes=n)      # what PyG does per call
            ours, graph, extra, pyg_extra = TritonGATConv(pyg), Prepared(ei, n, n), {}, {}
        else:
            pyg = pyg_nn.GATv2Conv(IN_CHANNELS, CHANNELS, heads=HEADS, edge_dim=4,
                                   add_self_loops=False).to(device)
            torch.nn.init.normal_(pyg.bias)
            edge_attr = torch.randn(e, 4, generator=gen).to(device)
            ours, graph = TritonGATv2Conv(pyg), Prepared(edge_index, n, n)
            extra, pyg_extra = {'edge_attr': edge_attr}, {'edge_attr': edge_attr}
        results = {}
        for impl in ('ours', 'pyg'):
            x = x0.clone().requires_grad_()
            pyg.zero_grad()
            if impl == 'ours':
                out, alpha = ours(x, graph, return_alpha=True, **extra)
            else:
                out, (_, alpha) = pyg(x, edge_index, return_attention_weights=True, **pyg_extra)
                alpha = alpha[graph.perm]        # PyG's edge order -> the sorted order
            weight = torch.randn(out.shape, generator=torch.Generator().manual_seed(3)).to(device)
            (out * weight).sum().backward()
            results[impl] = dict(out=out.detach(), alpha=alpha.detach(), x_grad=x.grad.clone(),
                                 **{f'grad_{k}': p.grad.clone()
                                    for k, p in pyg.named_parameters() if p.grad is not None})
        for key in results['pyg']:
            err = _rel_err(results['ours'][key], results['pyg'][key])
            report.add(f'layer_{kind}_vs_pyg_{key}', err <= 1e-5, rel_err=err)
        if device.type == 'cuda':     # bfloat16: the same layer, its weights rounded
            pyg16 = copy.deepcopy(pyg).to(torch.bfloat16)
            ours16 = (TritonGATConv if kind == 'gat' else TritonGATv2Conv)(pyg16)
            extra16 = {k: v.to(torch.bfloat16) for k, v in extra.items()}
            with torch.no_grad():
                out16 = ours16(x0.to(torch.bfloat16), graph, **extra16)
            err = _rel_err(out16, results['ours']['out'])
            report.add(f'layer_{kind}_bfloat16_vs_float32_out', err <= 5e-2, rel_err=err)


def check(args) -> int:
    import torch
    device = _device(args.smoke)
    report = _Report()
    start = time.time()
    for part in (check_cases, check_determinism, check_layers):
        try:
            if part is check_cases:
                part(report, device)
            else:
                part(report, device, args.smoke)
        except Exception as error:   # noqa: BLE001
            report.add(part.__name__, False, error=f'{type(error).__name__}: {error}')
            traceback.print_exc()
    print(f'checks: {len(report.checks) - report.failed} passed, {report.failed} failed, '
          f'{time.time() - start:.0f} s', flush=True)
    if args.json:
        with open(args.json, 'w') as f:
            json.dump({'checks': report.checks, 'seconds': time.time() - start,
                       'torch': torch.__version__}, f, indent=1)
    return 1 if report.failed else 0


# --- 2. timings ----------------------------------------------------------------------------------

def time_case(args) -> Dict[str, object]:
    """One timing case in this process; returns its result (printed as one JSON line)."""
    import torch
    import torch_geometric.nn as pyg_nn
    from torch_geometric.utils import add_self_loops, remove_self_loops
    device = _device(args.smoke)
    dtype = getattr(torch, args.dtype)
    cuda = device.type == 'cuda'
    result: Dict[str, object] = dict(conv=args.conv, impl=args.impl, edges=args.edges,
                                     dtype=args.dtype, index=args.index,
                                     tile=os.environ.get('GAT_PYG_TRITON_TILE'),
                                     warps=os.environ.get('GAT_PYG_TRITON_WARPS'))
    torch.manual_seed(0)
    n = max(1, args.edges // 20)
    result['nodes'] = n
    edge_index = torch.randint(0, n, (2, args.edges), device=device)
    x = torch.randn(n, IN_CHANNELS, device=device, dtype=dtype, requires_grad=True)
    conv_cls = pyg_nn.GATConv if args.conv == 'gat' else pyg_nn.GATv2Conv
    pyg = conv_cls(IN_CHANNELS, CHANNELS, heads=HEADS).to(device=device, dtype=dtype)
    params = list(pyg.parameters())
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        baseline = torch.cuda.memory_allocated()
    if args.impl == 'triton':
        TritonGATConv, TritonGATv2Conv = _Layers.build()
        t0 = time.perf_counter()
        ei, _ = remove_self_loops(edge_index)          # as PyG's layers do, once here
        ei, _ = add_self_loops(ei, num_nodes=n)
        graph = Prepared(ei, n, n, getattr(torch, args.index))
        del ei
        _sync(device)
        result['prepare_ms'] = (time.perf_counter() - t0) * 1e3
        layer = (TritonGATConv if args.conv == 'gat' else TritonGATv2Conv)(pyg)
        step = lambda: layer(x, graph)      # noqa: E731
    elif args.impl == 'pyg':
        step = lambda: pyg(x, edge_index)   # noqa: E731
    else:   # the package's layer, as it dispatches now
        import gat_pyg
        layer = getattr(gat_pyg, 'GATConv' if args.conv == 'gat' else 'GATv2Conv')(
            IN_CHANNELS, CHANNELS, heads=HEADS).to(device=device, dtype=dtype)
        layer.load_state_dict(pyg.state_dict())
        params = list(layer.parameters())
        step = lambda: layer(x, edge_index)   # noqa: E731

    grad = None

    def train_step():
        nonlocal grad
        x.grad = None
        for p in params:
            p.grad = None
        out = step()
        if grad is None:
            grad = torch.randn_like(out)
        out.backward(grad)

    def timed(fn, repeats: int, min_seconds: float) -> List[float]:
        times = []
        begin = time.perf_counter()
        while len(times) < repeats or (time.perf_counter() - begin < min_seconds
                                       and len(times) < 50):
            if cuda:
                a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                a.record()
                fn()
                b.record()
                torch.cuda.synchronize()
                times.append(a.elapsed_time(b))
            else:
                t = time.perf_counter()
                fn()
                times.append((time.perf_counter() - t) * 1e3)
        return sorted(times)

    try:
        t0 = time.perf_counter()
        train_step()             # compiles the kernels (or finds them in Triton's cache)
        _sync(device)
        result['first_step_ms'] = (time.perf_counter() - t0) * 1e3
        train_step()
        if cuda:
            torch.cuda.synchronize()
            peak = torch.cuda.max_memory_allocated()
            result['peak_mib'] = (peak - baseline) / 2**20
            result['peak_total_mib'] = peak / 2**20
        steps = timed(train_step, repeats=1 if args.smoke else 5, min_seconds=0 if args.smoke
                      else 1.0)
        result['step_ms'] = steps[len(steps) // 2]
        result['step_ms_min'] = steps[0]
        result['steps'] = len(steps)
        with torch.no_grad():
            fwd = timed(step, repeats=1 if args.smoke else 5, min_seconds=0 if args.smoke
                        else 0.5)
        result['forward_ms'] = fwd[len(fwd) // 2]
        result['status'] = 'ok'
    except torch.cuda.OutOfMemoryError as error:
        result['status'] = 'out of memory'
        result['error'] = str(error).splitlines()[0]
    return result


def _case(conv, impl, edges, dtype='float32', index='int64', tile=None, warps=None) -> dict:
    return dict(conv=conv, impl=impl, edges=edges, dtype=dtype, index=index, tile=tile,
                warps=warps)


def _time_cases(smoke: bool) -> List[dict]:
    """Timing cases in priority order (the budget may cut the tail): the Triton / PyG pairs
    (GAT first, 4M and 20M first), bfloat16, launch-shape and index variants (the kernels'
    defaults are a guess made without a GPU: tile 2048 elements, 4 warps, int64 indices), then
    the package's layer as it dispatches today."""
    sizes = SMOKE_SIZES if smoke else SIZES
    order = {e: k for k, e in enumerate((sizes[1], sizes[2], sizes[0], sizes[3])
                                        if len(sizes) == 4 else sizes)}
    cases = []
    for edges in sorted(sizes, key=order.get):
        for conv in ('gat', 'gatv2'):
            cases += [_case(conv, 'triton', edges), _case(conv, 'pyg', edges)]
    for edges in sizes[1:]:
        for conv in ('gat', 'gatv2'):
            cases.append(_case(conv, 'triton', edges, 'bfloat16'))
    mid = sizes[1]
    for conv in ('gat', 'gatv2'):
        cases += [_case(conv, 'triton', mid, index='int32'),
                  _case(conv, 'triton', mid, tile='1024', warps='2'),
                  _case(conv, 'triton', mid, tile='4096', warps='8'),
                  _case(conv, 'triton', mid, warps='8')]
    for conv in ('gat', 'gatv2'):
        cases.append(_case(conv, 'gat_pyg', mid))
    return cases


def _key(t: dict) -> tuple:
    return (t['conv'], t['impl'], t['edges'], t['dtype'], t.get('index', 'int64'),
            t.get('tile'), t.get('warps'))


def _ratios(timings: List[dict]) -> List[dict]:
    """Per (conv, E): our float32 step against PyG's (time, peak memory), bfloat16 against our
    float32, and each launch variant against the default."""
    ok = {_key(t): t for t in timings if t.get('status') == 'ok'}
    status = {_key(t): t.get('status') for t in timings}
    rows = []
    for key, t in sorted(ok.items(), key=lambda kv: str(kv[0])):
        conv, impl, edges, dtype, index, tile, warps = key
        if impl != 'triton' or dtype != 'float32' or index != 'int64' or tile or warps:
            continue
        row = dict(conv=conv, edges=edges)
        pyg = ok.get((conv, 'pyg', edges, 'float32', 'int64', None, None))
        if pyg:
            row['speedup_vs_pyg'] = pyg['step_ms'] / t['step_ms']
            if 'peak_mib' in t and 'peak_mib' in pyg:
                row['memory_vs_pyg'] = t['peak_mib'] / pyg['peak_mib']
        else:
            row['pyg'] = status.get((conv, 'pyg', edges, 'float32', 'int64', None, None),
                                    'not run')
        bf16 = ok.get((conv, 'triton', edges, 'bfloat16', 'int64', None, None))
        if bf16:
            row['bf16_speedup_vs_fp32'] = t['step_ms'] / bf16['step_ms']
        for other, v in ok.items():
            if other[:4] == key[:4] and other != key:
                label = '_'.join(f'{n}{x}' for n, x in zip(('', 'tile', 'warps'), other[4:])
                                 if x and x != 'int64')
                row[f'speedup_{label}'] = t['step_ms'] / v['step_ms']
        gat_pyg = ok.get((conv, 'gat_pyg', edges, 'float32', 'int64', None, None))
        if gat_pyg:
            row['speedup_vs_gat_pyg_layer'] = gat_pyg['step_ms'] / t['step_ms']
        rows.append(row)
    return rows


def _environment(smoke: bool) -> dict:
    import torch
    env = dict(python=platform.python_version(), torch=torch.__version__,
               cuda=torch.version.cuda, smoke=smoke)
    for name in ('triton', 'torch_geometric'):
        try:
            env[name] = __import__(name).__version__
        except Exception as error:   # noqa: BLE001
            env[name] = f'unavailable: {error}'
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        env.update(gpu=props.name, gpu_memory_gib=props.total_memory / 2**30,
                   capability='.'.join(map(str, torch.cuda.get_device_capability(0))))
    return env


def _child(argv: List[str], timeout: float, smoke: bool,
           extra_env: Optional[Dict[str, str]] = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, **(extra_env or {}))
    env['PYTHONPATH'] = os.pathsep.join([ROOT] + [p for p in [env.get('PYTHONPATH')] if p])
    if smoke:
        env['TRITON_INTERPRET'] = '1'
    return subprocess.run([sys.executable, os.path.abspath(__file__), *argv], env=env,
                          capture_output=True, text=True, timeout=timeout)


def run_all(args) -> int:
    import torch
    out_dir = os.path.abspath(args.out)
    os.makedirs(out_dir, exist_ok=True)
    log_path, json_path = (os.path.join(out_dir, 'gpu_check.log'),
                           os.path.join(out_dir, 'gpu_check.json'))
    log = open(log_path, 'w')

    def say(text: str = '') -> None:
        print(text, flush=True)
        log.write(text + '\n')
        log.flush()

    results: dict = {'environment': _environment(args.smoke)}
    if not args.smoke and not torch.cuda.is_available():
        reason = 'no CUDA device (torch.cuda.is_available() is False)'
        say(f'gpu_check: {reason}: skipping the GPU checks and timings')
        results['skipped'] = reason
        with open(json_path, 'w') as f:
            json.dump(results, f, indent=1)
        log.close()
        return 0
    start = time.time()
    say(f"gpu_check: {json.dumps(results['environment'])}")

    # 1. correctness
    check_json = os.path.join(out_dir, 'check.json')
    say('== correctness ==')
    try:
        proc = _child(['check', '--json', check_json] + (['--smoke'] if args.smoke else []),
                      timeout=args.check_timeout, smoke=args.smoke)
        say(proc.stdout.rstrip())
        if proc.returncode and proc.stderr:
            say(proc.stderr.rstrip()[-4000:])
        results['check'] = (json.load(open(check_json)) if os.path.exists(check_json)
                            else {'error': proc.stderr[-4000:]})
        results['check']['exit_status'] = proc.returncode
    except subprocess.TimeoutExpired:
        say(f'correctness: timed out after {args.check_timeout} s')
        results['check'] = {'error': 'timeout', 'exit_status': None}

    # 2. timings
    say('== timings: one layer 64 -> 8 x 8, forward + backward ==')
    timings = []
    for case in _time_cases(args.smoke):
        variant = ' '.join(f'{k}={case[k]}' for k in ('index', 'tile', 'warps')
                           if case[k] and case[k] != 'int64')
        label = (f"{case['conv']:6s} {case['impl']:8s} {case['dtype']:9s} "
                 f"E={case['edges']:>11,} {variant:18s}")
        left = args.budget - (time.time() - start)
        if left < 20:
            say(f'{label}  skipped: time budget ({args.budget} s) spent')
            timings.append(dict(case, status='skipped: time budget'))
            continue
        argv = ['time', '--conv', case['conv'], '--impl', case['impl'], '--edges',
                str(case['edges']), '--dtype', case['dtype'], '--index', case['index']]
        argv += ['--smoke'] if args.smoke else []
        extra = {name: case[k] for k, name in (('tile', 'GAT_PYG_TRITON_TILE'),
                                                ('warps', 'GAT_PYG_TRITON_WARPS')) if case[k]}
        try:
            proc = _child(argv, timeout=min(args.case_timeout, left), smoke=args.smoke,
                          extra_env=extra)
            lines = [ln for ln in proc.stdout.splitlines() if ln.startswith('{')]
            if proc.returncode or not lines:
                res = dict(case, status='failed', error=(proc.stderr or proc.stdout)[-2000:])
            else:
                res = json.loads(lines[-1])
        except subprocess.TimeoutExpired:
            res = dict(case, status='timeout')
        timings.append(res)
        if res.get('status') == 'ok':
            mem = f"peak {res['peak_mib']:9.1f} MiB" if 'peak_mib' in res else ''
            say(f"{label}  step {res['step_ms']:9.2f} ms  forward {res['forward_ms']:8.2f} ms"
                f"  {mem}")
        else:
            say(f"{label}  {res.get('status')}: {str(res.get('error', ''))[-300:]}")
    results['timings'] = timings
    results['ratios'] = _ratios(timings)
    say('== ratios (triton float32 against PyG float32; bfloat16 against our float32) ==')
    for row in results['ratios']:
        say('  ' + '  '.join(f'{k}={v:.3g}' if isinstance(v, float) else f'{k}={v}'
                             for k, v in row.items()))
    results['seconds'] = time.time() - start
    failed = results['check'].get('exit_status') != 0
    say(f"gpu_check: done in {results['seconds']:.0f} s; correctness "
        f"{'FAILED' if failed else 'passed'}; {log_path}, {json_path}")
    with open(json_path, 'w') as f:
        json.dump(results, f, indent=1)
    log.close()
    return 1 if failed else 0


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    sub = parser.add_subparsers(dest='command', required=True)
    p_all = sub.add_parser('all', help='correctness, then timings; results under --out')
    p_all.add_argument('--out', default=os.environ.get('OUT', 'gpu-results'))
    p_all.add_argument('--budget', type=float, default=420.0,
                       help='seconds for everything; timing cases left when it is spent are '
                            'skipped (default 420)')
    p_all.add_argument('--check-timeout', type=float, default=240.0)
    p_all.add_argument('--case-timeout', type=float, default=120.0)
    p_check = sub.add_parser('check', help='the correctness checks')
    p_check.add_argument('--json')
    p_time = sub.add_parser('time', help='one timing case')
    p_time.add_argument('--conv', choices=('gat', 'gatv2'), required=True)
    p_time.add_argument('--impl', choices=('triton', 'pyg', 'gat_pyg'), required=True)
    p_time.add_argument('--edges', type=int, required=True)
    p_time.add_argument('--dtype', choices=('float32', 'bfloat16', 'float16'), default='float32')
    p_time.add_argument('--index', choices=('int64', 'int32'), default='int64',
                        help='index dtype of our prepared graph')
    for p in (p_all, p_check, p_time):
        p.add_argument('--smoke', action='store_true',
                       help='on the CPU through Triton\'s interpreter, toy sizes (tests this '
                            'script; the numbers mean nothing)')
    args = parser.parse_args(argv)
    if args.smoke and args.command != 'all' and os.environ.get('TRITON_INTERPRET') != '1':
        parser.error('--smoke needs TRITON_INTERPRET=1 (set by `all --smoke`)')
    if args.command == 'all':
        return run_all(args)
    if args.command == 'check':
        return check(args)
    print(json.dumps(time_case(args)), flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())

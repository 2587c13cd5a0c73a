"""The GPU check (issue 21): the package's public layers on the Triton kernels, checked on CUDA
and timed against PyG's layers and against the package's pure-torch CSR kernels.

    scripts/gpu_check.sh                 # everything, results under $OUT (default ./gpu-results)
    python benchmarks/gpu.py all --out DIR [--budget SECONDS]
    GAT_PYG_TRITON=1 python benchmarks/gpu.py check          # correctness only; exit 1 on a failure
    GAT_PYG_TRITON=1 python benchmarks/gpu.py layer --conv gat --impl triton --edges 4000000
    python benchmarks/gpu.py epoch --dataset cora --model gat --impl pyg --features dense
    GAT_PYG_TRITON=1 python benchmarks/gpu.py model --impl triton

What runs is what users run: :class:`gat_pyg.GATConv` / :class:`gat_pyg.GATv2Conv` and the
paper's model :class:`gat_pyg.models.GAT` / ``GATv2`` (built by :func:`gat_pyg.bench.epoch.build`,
the model of the CPU epoch benchmark, trained by :class:`gat_pyg.train.loop.NodeTask`). The
implementations, each case in a process of its own:

* ``triton``: the package in a process started with ``GAT_PYG_TRITON=1`` (the Triton kernels
  serve CUDA); the child asserts that ``gat_pyg.kernels.kernel_for`` names ``'triton'`` for the
  attention operator and dtype it runs;
* ``csr``: the package without it: its pure-torch ``torch.sparse`` CSR kernels, today's CUDA
  default (asserted ``'csr'`` the same way);
* ``pyg``: ``torch_geometric.nn.GATConv`` / ``GATv2Conv`` (in the models: the same model with
  PyG's layer, as the epoch benchmark builds it; its input dropout is the package's, so these
  processes register the Triton kernels too and only the attention layers differ).

``all`` writes ``DIR/gpu_check.log`` (everything printed) and ``DIR/gpu_check.json`` (the
environment, every check, every case, the ratios and the summary against the targets of issue
21). Without a CUDA device it prints one line saying so, writes the JSON with ``"skipped"`` and
exits 0. ``--smoke`` runs the same code on the CPU at toy sizes through Triton's interpreter
(``TRITON_INTERPRET=1``, ``GAT_PYG_NATIVE=0``, torch_scatter and torch_sparse hidden, as on the
GPU machine, which has neither): it tests this script without a GPU; its numbers mean nothing.

1. Correctness (``check``, one child process with ``GAT_PYG_TRITON=1``), on CUDA tensors:
   * the Triton kernels are what ``kernel_for`` reports for every operator they implement
     (float32, and bfloat16 on CUDA);
   * every case of ``tests/kernels/triton_cases.py`` (the cases the interpreter tests run
     against the C++ kernels) through ``gat_pyg.kernels.triton`` against the plain-torch
     reference (``gat_pyg.kernels.reference``): float32 to 2e-5, float64 to 1e-10, dropout
     masks and dropped values bit for bit; on CUDA the float32 cases again in bfloat16 and
     float16 against the reference in float32 on the same (rounded) inputs;
   * determinism: the public layers (GATConv with attention and message dropout, GATv2Conv with
     edge features and attention dropout, and both without dropout), forward and backward twice
     on a 1M-edge graph with the same seed: output and every gradient bitwise equal (PyG's
     GATConv is run twice too, for information: pyg-team/pytorch_geometric#8866);
   * the public layers on the Triton kernels against PyG's layers with the same weights
     (GATConv plain and with edge features and averaged heads, GATv2Conv plain and with edge
     features; PyG's default self-loops): output, returned edges and attention weights, the
     gradients of ``x`` and of every parameter, to 1e-5 relative (to the largest value), the
     loss reading the attention weights too; the same layers on the csr kernels
     (``gat_pyg.kernels.use_backend('csr', ...)``: the attention operators; the head scores
     stay Triton's, csr has none) against the Triton ones, 1e-5; on CUDA bfloat16 loosely
     against float32: under autocast (``bf16-mixed``) and with the layer and inputs in
     bfloat16, 5e-2 for outputs and attention, 1e-1 for gradients.
2. One layer (``layer``): 64 -> 8 heads x 8 channels, forward + backward (``x`` requires grad,
   no dropout, PyG's default self-loops) on a random graph with E / 20 nodes, E = 1M, 4M, 20M,
   62M (ogbn-products' edge count). The edge list is passed on every call, as users pass it:
   the first step prepares the graph (sorting, self-loops, transposed order), later steps
   reuse the layer's cache (one O(E) comparison per call). Reported: the median step (CUDA
   events), the forward alone under ``torch.no_grad``, the first step (preparation and Triton's
   compilation or cache load included), and the peak of ``torch.cuda.max_memory_allocated``
   above the inputs (x, edge list, parameters, output gradient; our prepared graph and cache
   count) in the steady state and in the first step. bfloat16, ``triton`` only: ``bf16-mixed``
   (the package's training precision: ``torch.autocast`` with float32 parameters, what
   ``precision: bf16-mixed`` runs) at E >= 4M, the target's measure; the layer and ``x`` in
   ``bfloat16`` at 4M, for information. Launch shapes of the Triton kernels at 4M
   (``GAT_PYG_TRITON_TILE`` / ``GAT_PYG_TRITON_WARPS``, read at import; the defaults were
   chosen without a GPU). No int32-index variant: the public layers prepare int64 indices.
3. The paper's training epoch (``epoch``): GAT and GATv2 (8 heads x 8, 1 output head, dropout
   0.6, Adam), forward + loss + backward + step, full batch, on Cora- and CiteSeer-shaped
   inputs: **synthetic** (the GPU machine gets only the working tree and cannot download; the
   Planetoid files are not in it), with the real node, edge, feature, non-zero, class and split
   counts, random edges (symmetric, no self-loops), random row-normalised bag-of-words features
   (sparse COO or dense), random labels. ``triton`` on sparse x (the package's default input)
   and dense x, ``csr`` on sparse x, PyG's on both: the first epoch, the median of 50 after 5
   more, the peak memory above the inputs.
4. A products-sized model (``model``): the same two-layer GAT, full batch, 2.4M nodes, 62M
   random edges (OGB's edge count of ogbn-products; PyG's edge list of it holds both
   directions, 124M), 100 dense features, 47 classes: the first training step and two more.
   Does it fit in the GPU's memory, and PyG's? A case that runs out of memory says so.

Each case's process is started while the one before it runs: it imports torch, PyG and the
package, then waits for its turn before it touches the GPU (the imports take seconds of CPU,
one core of the machine's; a waiting process holds no GPU memory). Cases run in priority order
(the targets' cases first) until the time budget (``--budget``, seconds from the start) is
spent; each case's timeout is cut to what is left, so the run ends within the budget; the rest
are listed as skipped. A configuration that ran out of memory or
time at one size is not tried at the larger ones. The summary compares with the targets of
issue 21: one layer at E >= 4M at least 2x faster than PyG at most 1/6 of its peak memory; the
products-sized model fits where PyG's does not; the Cora epoch at least as fast as PyG's (best
of its dense and sparse x); bf16-mixed at least 1.4x our float32 at E >= 4M. Each is met,
missed or not run.

Nothing here needs more than the copied working tree, torch, PyG and Triton (no torch_scatter,
no torch_sparse, no native library, no data files, no network).
"""
import argparse
import contextlib
import copy
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import traceback
from typing import Callable, Dict, List, Optional

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
TESTS = os.path.join(ROOT, 'tests', 'kernels')

IN_CHANNELS, HEADS, CHANNELS = 64, 8, 8
SIZES = (1_000_000, 4_000_000, 20_000_000, 62_000_000)
# Interpreted Triton runs one program at a time: toy graphs (E / 20 nodes, as on the GPU).
SMOKE_SIZES = (200, 400, 600, 800)
TARGET_MIN_EDGES = 4_000_000        # "E >= 4M" in the targets (the second size)

# Node / edge / feature / stored-feature / class / training-node counts of the real graphs
# (torch_geometric's Planetoid with the public split: 500 validation and 1000 test nodes), and
# ogbn-products' for the full-batch model.
PLANETOID = {
    'cora': dict(nodes=2708, edges=10556, features=1433, nnz=49216, classes=7, train=140),
    'citeseer': dict(nodes=3327, edges=9104, features=3703, nnz=105165, classes=6, train=120),
}
PRODUCTS = dict(nodes=2_449_029, edges=61_859_140, features=100, classes=47, train=196_615)
SMOKE_SCALE = 100   # the smoke run divides node, edge, stored-feature and split counts by this


# --- small helpers -------------------------------------------------------------------------------

def _device(smoke: bool):
    import torch
    return torch.device('cpu' if smoke else 'cuda')


def _sync(device) -> None:
    import torch
    if device.type == 'cuda':
        torch.cuda.synchronize()


def _rel_err(a, b) -> float:
    """max |a - b| relative to max |b| (the largest value sets the scale)."""
    a, b = a.detach().double(), b.detach().double()
    if a.numel() == 0 and b.numel() == 0:
        return 0.0
    scale = max(b.abs().max().item(), 1e-30)
    return (a - b).abs().max().item() / scale


def _is_oom(error: BaseException) -> bool:
    import torch
    # The caching allocator raises OutOfMemoryError; an allocation inside cuBLAS / cuSPARSE
    # surfaces as a RuntimeError naming its status instead.
    text = str(error).lower()
    return isinstance(error, torch.cuda.OutOfMemoryError) or 'out of memory' in text or \
        'status_alloc_failed' in text


def _hide_missing_dependencies() -> None:
    """The smoke children run without torch_scatter and torch_sparse, as the GPU machine does
    (PyG picks its scatter backend at import, so this must precede importing it)."""
    class Hide:
        def find_spec(self, name, path=None, target=None):
            if name.split('.')[0] in ('torch_scatter', 'torch_sparse'):
                raise ImportError(f'{name} hidden by benchmarks/gpu.py --smoke (the GPU machine '
                                  f'has neither torch_scatter nor torch_sparse)')
            return None
    sys.meta_path.insert(0, Hide())


def _kernel(impl: str, op: str, device, dtype) -> Optional[str]:
    """The backend that runs operator ``op`` here; for ``triton`` / ``csr`` it must be that one
    (a run of the wrong kernels would time the wrong thing)."""
    if impl == 'pyg':
        return None
    from gat_pyg.kernels import kernel_for
    got = kernel_for(op, device.type, dtype)
    if got != impl:
        raise RuntimeError(f'{impl}: kernel_for({op!r}, {device.type!r}, {dtype}) is {got!r}, '
                           f'not {impl!r} (GAT_PYG_TRITON={os.environ.get("GAT_PYG_TRITON")!r})')
    return got


def _memory(device) -> Dict[str, Callable[[], float]]:
    """``reset()`` and ``peak()`` (MiB allocated at the peak since the reset) on CUDA; nothing
    on the CPU (the smoke run's numbers are not measurements)."""
    import torch
    if device.type != 'cuda':
        return {}
    return {'reset': torch.cuda.reset_peak_memory_stats,
            'peak': lambda: torch.cuda.max_memory_allocated() / 2**20,
            'now': lambda: torch.cuda.memory_allocated() / 2**20}


def _timed(fn: Callable[[], None], device, repeats: int, min_seconds: float,
           max_repeats: int = 50) -> List[float]:
    """Milliseconds of each call of ``fn`` (CUDA events on the GPU), sorted: at least
    ``repeats`` calls, more until ``min_seconds`` have passed (at most ``max_repeats``)."""
    import torch
    times: List[float] = []
    begin = time.perf_counter()
    while len(times) < repeats or (time.perf_counter() - begin < min_seconds
                                   and len(times) < max_repeats):
        if device.type == 'cuda':
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


class _Report:
    def __init__(self):
        self.checks: List[dict] = []

    def add(self, name: str, ok: bool, **info):
        entry = dict(name=name, ok=bool(ok), **info)
        self.checks.append(entry)
        detail = ' '.join(f'{k}={v:.3g}' if isinstance(v, float) else f'{k}={v}'
                          for k, v in info.items())
        print(f"  {'ok  ' if ok else 'FAIL'} {name} {detail}", flush=True)

    def info(self, text: str) -> None:
        print(f'  info {text}', flush=True)

    @property
    def failed(self) -> int:
        return sum(not c['ok'] for c in self.checks)


# --- synthetic inputs ----------------------------------------------------------------------------

def planetoid_like(name: str, sparse: bool, device, scale: int = 1):
    """A random graph with ``name``'s counts (:data:`PLANETOID`, divided by ``scale``): edges in
    both directions without self-loops, row-normalised binary features (``sparse``: a coalesced
    COO tensor, as ``gat_pyg.data.load_planetoid(sparse=True)`` gives), random labels, and
    disjoint training / validation / test masks. Deterministic in ``name``."""
    import torch
    from torch_geometric.data import Data
    spec = PLANETOID[name]
    gen = torch.Generator().manual_seed(sum(map(ord, name)))
    n, pairs = spec['nodes'] // scale, spec['edges'] // scale // 2
    src = torch.randint(0, n, (pairs, ), generator=gen)
    dst = (src + torch.randint(1, n, (pairs, ), generator=gen)) % n     # never src itself
    edge_index = torch.stack([torch.cat([src, dst]), torch.cat([dst, src])])
    rows = torch.randint(0, n, (spec['nnz'] // scale, ), generator=gen)
    cols = torch.randint(0, spec['features'], (rows.numel(), ), generator=gen)
    x = torch.sparse_coo_tensor(torch.stack([rows, cols]), torch.ones(rows.numel()),
                                (n, spec['features']), check_invariants=True).coalesce()
    degree = torch.bincount(x.indices()[0], minlength=n).clamp(min=1).float()
    x = torch.sparse_coo_tensor(x.indices(), 1.0 / degree[x.indices()[0]], x.shape,
                                is_coalesced=True, check_invariants=False)
    order = torch.randperm(n, generator=gen)
    masks = []
    start = 0
    for count in (spec['train'] // scale, 500 // scale, 1000 // scale):
        mask = torch.zeros(n, dtype=torch.bool)
        mask[order[start:start + count]] = True
        masks.append(mask)
        start += count
    data = Data(x=x if sparse else x.to_dense(), edge_index=edge_index,
                y=torch.randint(0, spec['classes'], (n, ), generator=gen),
                train_mask=masks[0], val_mask=masks[1], test_mask=masks[2])
    return data.to(device)


def products_like(device, smoke: bool):
    """ogbn-products' sizes (:data:`PRODUCTS`), random: dense features, labels, training mask
    (smoke: divided by 50,000)."""
    import torch
    from torch_geometric.data import Data
    scale = 50_000 if smoke else 1
    n, e = PRODUCTS['nodes'] // scale, PRODUCTS['edges'] // scale
    torch.manual_seed(0)
    train = torch.zeros(n, dtype=torch.bool, device=device)
    train[torch.randperm(n, device=device)[:max(1, PRODUCTS['train'] // scale)]] = True
    return Data(x=torch.randn(n, PRODUCTS['features'], device=device),
                edge_index=torch.randint(0, n, (2, e), device=device),
                y=torch.randint(0, PRODUCTS['classes'], (n, ), device=device),
                train_mask=train, val_mask=~train, test_mask=~train)


def build_model(model: str, impl: str, data):
    """The paper's model for ``data`` exactly as the CPU epoch benchmark builds it
    (:func:`gat_pyg.bench.epoch.build`: the package's GAT / GATv2, or the same model with PyG's
    layer; message dropout off since PyG's layer has none), with ``data`` in place of the
    Planetoid files that ``build`` loads (the GPU machine has none)."""
    from unittest import mock

    import gat_pyg.data
    from gat_pyg.bench import epoch
    with mock.patch.object(gat_pyg.data, 'load_planetoid', lambda *_, **__: data):
        net, built_on = epoch.build('cora', model, 'pyg' if impl == 'pyg' else 'ours', 'dense')
    if built_on is not data:    # build() no longer reads gat_pyg.data.load_planetoid
        raise RuntimeError('gat_pyg.bench.epoch.build did not use the synthetic data')
    return net.to(data.x.device)


# --- 1. correctness ------------------------------------------------------------------------------

def check_dispatch(report: _Report, device, smoke: bool) -> None:
    """``GAT_PYG_TRITON=1`` registered the Triton kernels for this device."""
    import torch
    from gat_pyg.kernels import kernel_for, kernel_table
    from gat_pyg.kernels import triton as triton_backend
    print('dispatch (GAT_PYG_TRITON=1):', flush=True)
    # bfloat16: the dtype GPU users train in; the interpreter cannot compute in it.
    dtypes = [torch.float32] + ([] if smoke else [torch.bfloat16])
    for dtype in dtypes:
        got = {op: kernel_for(op, device.type, dtype) for op in triton_backend.NAMES}
        wrong = {op: k for op, k in got.items() if k != 'triton'}
        report.add(f'kernel_for_triton[{str(dtype)[6:]}]', not wrong, **(
            {'not_triton': json.dumps(wrong)} if wrong else {}))
    report.info(f'kernel table: {json.dumps(kernel_table())}')


def check_cases(report: _Report, device, smoke: bool) -> None:
    """The interpreter tests' cases, on the device, against the reference."""
    import torch
    sys.path.insert(0, TESTS)
    import triton_cases
    from gat_pyg.kernels import reference
    from gat_pyg.kernels import triton as K
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


def _graph(n: int, e: int, device, seed: int, edge_dim: Optional[int] = None):
    import torch
    gen = torch.Generator().manual_seed(seed)
    edge_index = torch.randint(0, n, (2, e), generator=gen).to(device)
    x = torch.randn(n, IN_CHANNELS, generator=gen).to(device)
    edge_attr = torch.randn(e, edge_dim, generator=gen).to(device) if edge_dim else None
    return x, edge_index, edge_attr


def _call(layer, x, edge_index, edge_attr, **kwargs):
    # PyG's GATConv takes edge_attr only when built with edge_dim; pass it only when given.
    extra = {} if edge_attr is None else {'edge_attr': edge_attr}
    return layer(x, edge_index, **extra, **kwargs)


def check_determinism(report: _Report, device, smoke: bool) -> None:
    """The public layers twice with the same seed: bitwise the same output and gradients."""
    import torch
    import torch_geometric.nn as pyg_nn

    import gat_pyg
    print('determinism (forward + backward twice, same seed, bitwise):', flush=True)
    n, e = (40, 400) if smoke else (50_000, 1_000_000)
    layers = [
        ('gat', gat_pyg.GATConv, dict()),
        ('gat_dropouts', gat_pyg.GATConv, dict(dropout=0.5, message_dropout=0.5)),
        ('gatv2_edges', gat_pyg.GATv2Conv, dict(edge_dim=4)),
        ('gatv2_edges_dropout', gat_pyg.GATv2Conv, dict(edge_dim=4, dropout=0.5)),
    ]
    for name, cls, kwargs in layers:
        x0, edge_index, edge_attr = _graph(n, e, device, 0, kwargs.get('edge_dim'))
        torch.manual_seed(1)
        layer = cls(IN_CHANNELS, CHANNELS, heads=HEADS, fast_path=True, **kwargs).to(device)
        layer.train()
        grad = torch.randn(n, HEADS * CHANNELS, generator=torch.Generator().manual_seed(2))
        grad = grad.to(device)

        def run():
            x = x0.clone().requires_grad_()
            layer.zero_grad(set_to_none=True)
            torch.manual_seed(3)        # the dropout seeds come from torch's generator
            out = _call(layer, x, edge_index, edge_attr)
            out.backward(grad)
            return [out.detach(), x.grad] + [p.grad for _, p in sorted(layer.named_parameters())
                                             if p.grad is not None]

        first, second = run(), run()
        _sync(device)
        report.add(f'deterministic_{name}', len(first) == len(second) and all(
            torch.equal(a, b) for a, b in zip(first, second)), tensors=len(first))
    if device.type == 'cuda':
        torch.manual_seed(0)
        x0, edge_index, _ = _graph(n, e, device, 0)
        conv = pyg_nn.GATConv(IN_CHANNELS, CHANNELS, heads=HEADS).to(device)
        grads = []
        for _ in range(2):
            x = x0.clone().requires_grad_()
            conv(x, edge_index).square().sum().backward()
            grads.append(x.grad)
        report.info(f'PyG GATConv x.grad bitwise equal run to run: '
                    f'{torch.equal(grads[0], grads[1])} (pyg-team/pytorch_geometric#8866)')


def _layer_results(layer, x0, edge_index, edge_attr, *, autocast=None, dtype=None):
    """Output, returned edges, attention weights and every gradient of one call of ``layer``
    (the loss reads the output and the attention weights, with fixed random weights)."""
    import torch
    x = x0.to(dtype or x0.dtype).clone().requires_grad_()
    if edge_attr is not None and dtype is not None:
        edge_attr = edge_attr.to(dtype)
    layer.zero_grad(set_to_none=True)
    context = (torch.autocast(x.device.type, dtype=autocast) if autocast
               else contextlib.nullcontext())
    with context:
        out, (edges, alpha) = _call(layer, x, edge_index, edge_attr,
                                    return_attention_weights=True)

    def weights(t, seed):
        return torch.randn(t.shape, generator=torch.Generator().manual_seed(seed)).to(t.device)

    ((out.float() * weights(out, 4)).sum() + (alpha.float() * weights(alpha, 5)).sum()).backward()
    results = {'out': out, 'alpha': alpha, 'x_grad': x.grad}
    results.update({f'grad_{k}': p.grad for k, p in sorted(layer.named_parameters())
                    if p.grad is not None})
    return edges, {k: v.detach().float() for k, v in results.items()}


def check_layers(report: _Report, device, smoke: bool) -> None:
    """gat_pyg's layers on the Triton kernels against PyG's and against the csr kernels."""
    import torch
    import torch_geometric.nn as pyg_nn

    import gat_pyg
    from gat_pyg.kernels import kernel_for, use_backend
    print("public layers on the Triton kernels against PyG's (same weights) and the csr "
          "kernels:", flush=True)
    n, e = (60, 600) if smoke else (3000, 60_000)
    cases = [
        ('gat', 'GATConv', dict()),
        ('gat_edges_mean', 'GATConv', dict(edge_dim=4, concat=False)),
        ('gatv2', 'GATv2Conv', dict()),
        ('gatv2_edges', 'GATv2Conv', dict(edge_dim=4)),
    ]
    for name, cls_name, kwargs in cases:
        x0, edge_index, edge_attr = _graph(n, e, device, 1, kwargs.get('edge_dim'))
        torch.manual_seed(2)
        pyg = getattr(pyg_nn, cls_name)(IN_CHANNELS, CHANNELS, heads=HEADS, **kwargs).to(device)
        torch.nn.init.normal_(pyg.bias)         # zero at init: its gradient would test little
        ours = getattr(gat_pyg, cls_name)(IN_CHANNELS, CHANNELS, heads=HEADS, fast_path=True,
                                          **kwargs).to(device)
        ours.load_state_dict(pyg.state_dict())
        edges, triton = _layer_results(ours, x0, edge_index, edge_attr)
        pyg_edges, theirs = _layer_results(pyg, x0, edge_index, edge_attr)
        report.add(f'layer_{name}_vs_pyg_edges', torch.equal(edges, pyg_edges))
        for key in theirs:
            err = _rel_err(triton[key], theirs[key]) if key in triton else float('inf')
            report.add(f'layer_{name}_vs_pyg_{key}', err <= 1e-5, rel_err=err)
        op = 'gat_forward' if cls_name == 'GATConv' else 'gatv2_forward'
        with use_backend('csr', device.type):
            switched = kernel_for(op, device.type, torch.float32)
            _, csr = _layer_results(ours, x0, edge_index, edge_attr)
        err = max(_rel_err(triton[k], csr[k]) for k in triton)
        report.add(f'layer_{name}_triton_vs_csr', switched == 'csr' and set(csr) == set(triton)
                   and err <= 1e-5, rel_err=err, kernel=switched)
        if smoke:       # the interpreter truncates to bfloat16 instead of rounding
            continue
        for label, kw, layer in (
                ('bf16-mixed', dict(autocast=torch.bfloat16), ours),
                ('bfloat16', dict(dtype=torch.bfloat16), copy.deepcopy(ours).to(torch.bfloat16))):
            _, low = _layer_results(layer, x0, edge_index, edge_attr, **kw)
            errors = {k: _rel_err(low[k], triton[k]) for k in triton}
            worst_value = max(errors['out'], errors['alpha'])
            worst_grad = max(v for k, v in errors.items() if k not in ('out', 'alpha'))
            report.add(f'layer_{name}_{label}_vs_float32', worst_value <= 5e-2
                       and worst_grad <= 1e-1, rel_err_values=worst_value,
                       rel_err_grads=worst_grad)


def _device_info(device) -> dict:
    import torch
    info = {}
    if device.type == 'cuda':
        props = torch.cuda.get_device_properties(0)
        info.update(gpu=props.name, gpu_memory_gib=props.total_memory / 2**30,
                    capability='.'.join(map(str, torch.cuda.get_device_capability(0))))
    import torch_geometric.typing as pyg_typing

    import gat_pyg.kernels
    info.update(torch_scatter=pyg_typing.WITH_TORCH_SCATTER,
                torch_sparse=pyg_typing.WITH_TORCH_SPARSE,
                native=gat_pyg.kernels.load_error() or 'loaded')
    return info


def check(args) -> int:
    import torch
    device = _device(args.smoke)
    report = _Report()
    start = time.time()
    info = _device_info(device)
    print(f'device: {json.dumps(info)}', flush=True)
    for part in (check_dispatch, check_cases, check_determinism, check_layers):
        try:
            part(report, device, args.smoke)
        except Exception as error:   # noqa: BLE001
            report.add(part.__name__, False, error=f'{type(error).__name__}: {error}')
            traceback.print_exc()
    print(f'checks: {len(report.checks) - report.failed} passed, {report.failed} failed, '
          f'{time.time() - start:.0f} s', flush=True)
    if args.json:
        with open(args.json, 'w') as f:
            json.dump({'checks': report.checks, 'seconds': time.time() - start,
                       'torch': torch.__version__, 'device': info}, f, indent=1)
    return 1 if report.failed else 0


# --- 2-4. the timed cases (one child process each) ------------------------------------------------

def _run_case(result: dict, body: Callable[[dict], None]) -> dict:
    """``body(result)`` fills ``result``; running out of GPU memory is a result, not a
    failure."""
    try:
        body(result)
        result['status'] = 'ok'
    except Exception as error:   # noqa: BLE001
        if not _is_oom(error):
            raise
        result['status'] = 'out of memory'
        result['error'] = str(error).splitlines()[0][:300]
    return result


def layer_case(args) -> dict:
    """One layer, forward + backward, timed (see the module docstring, 2.)."""
    import torch
    import torch_geometric.nn as pyg_nn

    import gat_pyg
    device = _device(args.smoke)
    mem = _memory(device)
    autocast = args.precision == 'bf16-mixed'
    dtype = torch.bfloat16 if args.precision == 'bfloat16' else torch.float32
    compute = torch.bfloat16 if args.precision != 'float32' else torch.float32
    result = dict(kind='layer', conv=args.conv, impl=args.impl, edges=args.edges,
                  precision=args.precision, tile=os.environ.get('GAT_PYG_TRITON_TILE'),
                  warps=os.environ.get('GAT_PYG_TRITON_WARPS'))
    op = 'gat_forward' if args.conv == 'gat' else 'gatv2_forward'
    result['kernel'] = _kernel(args.impl, op, device, compute)

    def body(result):
        torch.manual_seed(0)
        n = max(1, args.edges // 20)
        result['nodes'] = n
        edge_index = torch.randint(0, n, (2, args.edges), device=device)
        x = torch.randn(n, IN_CHANNELS, device=device, dtype=dtype, requires_grad=True)
        name = 'GATConv' if args.conv == 'gat' else 'GATv2Conv'
        layer = getattr(pyg_nn, name)(IN_CHANNELS, CHANNELS, heads=HEADS)
        if args.impl != 'pyg':      # the same weights
            ours = getattr(gat_pyg, name)(IN_CHANNELS, CHANNELS, heads=HEADS)
            ours.load_state_dict(layer.state_dict())
            layer = ours
        layer = layer.to(device=device, dtype=dtype)
        grad = torch.randn(n, HEADS * CHANNELS, device=device)
        context = (lambda: torch.autocast(device.type, dtype=torch.bfloat16)) if autocast \
            else contextlib.nullcontext

        def forward():
            with context():
                return layer(x, edge_index)

        def train_step():
            x.grad = None
            layer.zero_grad(set_to_none=True)
            out = forward()
            out.backward(grad.to(out.dtype))

        _sync(device)
        if mem:
            torch.cuda.empty_cache()
            result['inputs_mib'] = mem['now']()
            mem['reset']()
        t0 = time.perf_counter()
        train_step()        # prepares the graph, compiles the kernels (or loads them)
        _sync(device)
        result['first_step_ms'] = (time.perf_counter() - t0) * 1e3
        if mem:
            result['first_peak_mib'] = mem['peak']() - result['inputs_mib']
        train_step()
        _sync(device)
        if mem:
            mem['reset']()
            train_step()
            _sync(device)
            result['peak_mib'] = mem['peak']() - result['inputs_mib']
            result['peak_total_mib'] = mem['peak']()
        steps = _timed(train_step, device, 1 if args.smoke else 5, 0 if args.smoke else 1.0)
        result.update(step_ms=steps[len(steps) // 2], step_ms_min=steps[0], steps=len(steps))
        with torch.no_grad():
            fwd = _timed(forward, device, 1 if args.smoke else 5, 0 if args.smoke else 0.5)
        result['forward_ms'] = fwd[len(fwd) // 2]

    return _run_case(result, body)


def _train_steps(net, data, device, warmup: int, repeats: int, result: dict) -> None:
    """Full-batch training steps of ``net`` on ``data`` (the package's :class:`NodeTask`: one
    forward, cross-entropy on the training nodes, backward, Adam); fills ``result`` with the
    first step, the median of ``repeats`` steps after ``warmup`` more, and the peak memory above
    what existed before the first step."""
    import torch

    from gat_pyg.train.device import Precision
    from gat_pyg.train.loop import NodeTask, make_optimizer
    mem = _memory(device)
    task = NodeTask(data, Precision.resolve('32', device))
    optimizer = make_optimizer(net.parameters(), lr=0.005, weight_decay=5e-4)
    _sync(device)
    if mem:
        torch.cuda.empty_cache()
        result['inputs_mib'] = mem['now']()
        mem['reset']()
    t0 = time.perf_counter()
    task.train_epoch(net, optimizer)        # prepares the graph, compiles the kernels
    _sync(device)
    result['first_step_ms'] = (time.perf_counter() - t0) * 1e3
    if mem:
        result['first_peak_mib'] = mem['peak']() - result['inputs_mib']
    for _ in range(warmup):
        task.train_epoch(net, optimizer)
    if mem:
        mem['reset']()
    # train_epoch reads the loss (.item()): each step ends synchronised, wall time is exact.
    steps = _timed(lambda: task.train_epoch(net, optimizer), torch.device('cpu'), repeats, 0)
    result.update(step_ms=steps[len(steps) // 2], step_ms_min=steps[0], steps=len(steps))
    if mem:
        result['peak_mib'] = mem['peak']() - result['inputs_mib']
        result['peak_total_mib'] = mem['peak']()


def _kernels_of(impl: str, device, sparse: bool, model: str) -> Dict[str, Optional[str]]:
    import torch
    from gat_pyg.kernels import kernel_for
    op = 'gat_forward' if model == 'gat' else 'gatv2_forward'
    _kernel(impl, op, device, torch.float32)
    ops = [op, 'feature_dropout'] + (['sparse_linear', 'sparse_dropout'] if sparse else [])
    return {o: kernel_for(o, device.type, torch.float32) for o in ops}


def epoch_case(args) -> dict:
    """The paper's training epoch on a Cora- or CiteSeer-shaped graph (module docstring, 3.)."""
    device = _device(args.smoke)
    sparse = args.features == 'sparse'
    result = dict(kind='epoch', dataset=args.dataset, model=args.model, impl=args.impl,
                  features=args.features,
                  data=f'synthetic, {args.dataset}-shaped' + (
                      f' (1/{SMOKE_SCALE} of its size)' if args.smoke else ''),
                  kernels=_kernels_of(args.impl, device, sparse, args.model))

    def body(result):
        data = planetoid_like(args.dataset, sparse, device, SMOKE_SCALE if args.smoke else 1)
        result.update(nodes=data.num_nodes, edges=data.edge_index.size(1))
        net = build_model(args.model, args.impl, data)
        _train_steps(net, data, device, warmup=0 if args.smoke else 5,
                     repeats=1 if args.smoke else 50, result=result)

    return _run_case(result, body)


def model_case(args) -> dict:
    """The two-layer GAT, full batch, at ogbn-products' size (module docstring, 4.)."""
    device = _device(args.smoke)
    result = dict(kind='model', model='gat', impl=args.impl,
                  kernels=_kernels_of(args.impl, device, False, 'gat'))

    def body(result):
        data = products_like(device, args.smoke)
        result.update(nodes=data.num_nodes, edges=data.edge_index.size(1))
        net = build_model('gat', args.impl, data)
        _train_steps(net, data, device, warmup=0, repeats=2, result=result)

    return _run_case(result, body)


# --- the run: cases in priority order -------------------------------------------------------------

def _layer(conv, impl, edges, precision='float32', tile=None, warps=None, smoke=False) -> dict:
    return dict(kind='layer', conv=conv, impl=impl, edges=edges, precision=precision,
                tile=tile, warps=warps, smoke=smoke)


def _epoch(dataset, model, impl, features, smoke=False) -> dict:
    return dict(kind='epoch', dataset=dataset, model=model, impl=impl, features=features,
                smoke=smoke)


def _model(impl, smoke=False) -> dict:
    return dict(kind='model', model='gat', impl=impl, smoke=smoke)


def cases(smoke: bool) -> List[dict]:
    """Every case, in priority order: first what the targets need (4M against PyG, bf16-mixed
    at 4M, the products-sized model, the Cora GAT epoch), then 20M, the Cora GATv2 epoch, 62M
    and 1M, the csr kernels at 4M and in the model, CiteSeer, bf16-mixed at 20M and 62M, the csr
    kernels at 1M and 20M, the remaining epoch forms, the bfloat16 layer, the launch shapes,
    and last the csr kernels at 62M. ``smoke``: the cases marked ``smoke`` (one of each code
    path)."""
    small, mid, large, largest = SMOKE_SIZES if smoke else SIZES
    convs = ('gat', 'gatv2')
    c: List[dict] = []
    c += [_layer(v, impl, mid, smoke=True) for v in convs for impl in ('triton', 'pyg')]
    c += [_layer(v, 'triton', mid, 'bf16-mixed', smoke=True) for v in convs]
    c += [_model('triton', smoke=True), _model('pyg', smoke=True)]
    c += [_epoch('cora', 'gat', 'triton', 'sparse', smoke=True),
          _epoch('cora', 'gat', 'pyg', 'dense', smoke=True),
          _epoch('cora', 'gat', 'pyg', 'sparse', smoke=True)]
    c += [_layer(v, impl, large) for v in convs for impl in ('triton', 'pyg')]
    c += [_epoch('cora', 'gatv2', 'triton', 'sparse', smoke=True),
          _epoch('cora', 'gatv2', 'pyg', 'dense'), _epoch('cora', 'gatv2', 'pyg', 'sparse')]
    c += [_layer(v, impl, e) for e in (largest, small) for v in convs
          for impl in ('triton', 'pyg')]
    c += [_layer(v, 'csr', mid, smoke=True) for v in convs] + [_model('csr', smoke=True)]
    c += [_epoch('citeseer', m, impl, features, smoke=smoke_mark)
          for m in ('gat', 'gatv2')
          for impl, features, smoke_mark in (('triton', 'sparse', m == 'gat'),
                                             ('pyg', 'dense', False), ('pyg', 'sparse', False))]
    c += [_layer(v, 'triton', e, 'bf16-mixed') for e in (large, largest) for v in convs]
    c += [_layer(v, 'csr', e) for e in (small, large) for v in convs]
    c += [_epoch(d, m, impl, features, smoke=(d, m) == ('cora', 'gat'))
          for impl, features in (('triton', 'dense'), ('csr', 'sparse'))
          for d in ('cora', 'citeseer') for m in ('gat', 'gatv2')]
    c += [_layer(v, 'triton', mid, 'bfloat16', smoke=v == 'gat') for v in convs]
    c += [_layer(v, 'triton', mid, tile=tile, warps=warps, smoke=(v, tile) == ('gat', '1024'))
          for v in convs for tile, warps in (('1024', '2'), ('4096', '8'), (None, '8'))]
    # Last: the pure-torch path is slowest at the largest size (the budget may well cut it).
    c += [_layer(v, 'csr', largest) for v in convs]
    return [x for x in c if x['smoke']] if smoke else c


def _label(case: dict) -> str:
    if case['kind'] == 'layer':
        variant = ' '.join(f'{k}={case[k]}' for k in ('tile', 'warps') if case[k])
        return (f"layer {case['conv']:5s} {case['impl']:6s} {case['precision']:10s} "
                f"E={case['edges']:>11,} {variant}").rstrip()
    if case['kind'] == 'epoch':
        return (f"epoch {case['dataset']:8s} {case['model']:5s} {case['impl']:6s} "
                f"{case['features']} x")
    return f"model products-size {case['model']} {case['impl']}"


def _argv(case: dict, smoke: bool) -> List[str]:
    if case['kind'] == 'layer':
        argv = ['layer', '--conv', case['conv'], '--impl', case['impl'], '--edges',
                str(case['edges']), '--precision', case['precision']]
    elif case['kind'] == 'epoch':
        argv = ['epoch', '--dataset', case['dataset'], '--model', case['model'], '--impl',
                case['impl'], '--features', case['features']]
    else:
        argv = ['model', '--impl', case['impl']]
    return argv + (['--smoke'] if smoke else [])


def _child_env(triton: bool, smoke: bool, extra: Optional[Dict[str, str]] = None
               ) -> Dict[str, str]:
    env = dict(os.environ, **(extra or {}))
    env['PYTHONPATH'] = os.pathsep.join([ROOT] + [p for p in [env.get('PYTHONPATH')] if p])
    # The Triton kernels are registered at import when GAT_PYG_TRITON=1: the one switch between
    # the triton and csr implementations.
    if triton:
        env['GAT_PYG_TRITON'] = '1'
    else:
        env.pop('GAT_PYG_TRITON', None)
    if smoke:
        env['TRITON_INTERPRET'] = '1'
        env['GAT_PYG_NATIVE'] = '0'     # as on the GPU machine: the C++ library does not load
    return env


def _triton_in(case: dict) -> bool:
    """Whether the case's process registers the Triton kernels: for ``triton``, and for PyG's
    models too, whose input dropout is the package's (the model is ours with PyG's layer), so
    that only the attention layers differ; PyG's single layer runs no package code."""
    return case['impl'] == 'triton' or (case['impl'] == 'pyg' and case['kind'] != 'layer')


class _Child:
    """One case's process, started ahead of its turn: it imports torch, PyG, the package and
    Triton (seconds, CPU only), then waits for :meth:`run` before it touches the GPU. The run
    starts the next case's process while this one measures, so the imports of one overlap the
    other's run (one core of many busy) instead of adding seconds to every case. A process
    that is not run is ended by :meth:`cancel`; one waiting creates no CUDA context."""

    def __init__(self, argv: List[str], env: Dict[str, str]):
        # Files, not pipes: a child that prints a lot (the check) never blocks on a full pipe.
        self._out, self._err = tempfile.TemporaryFile('w+'), tempfile.TemporaryFile('w+')
        self.proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), *argv,
                                      '--wait'], env=env, stdin=subprocess.PIPE,
                                     stdout=self._out, stderr=self._err, text=True)

    def run(self, timeout: float):
        """-> ``(exit status, or None when it ran past timeout and was killed; stdout;
        stderr)``; ``timeout`` counts from now."""
        try:
            self.proc.stdin.write('go\n')
            self.proc.stdin.close()
        except BrokenPipeError:     # it died while importing: its stderr says why
            pass
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            code = None
        outputs = []
        for f in (self._out, self._err):
            f.seek(0)
            outputs.append(f.read())
            f.close()
        return code, outputs[0], outputs[1]

    def cancel(self) -> None:
        self.proc.kill()
        self.proc.wait()
        self._out.close()
        self._err.close()


def _preload() -> None:
    """What every case imports, done before it waits for its turn (see :class:`_Child`)."""
    import torch                    # noqa: F401
    import torch_geometric.nn       # noqa: F401

    import gat_pyg.bench.epoch      # noqa: F401
    import gat_pyg.models           # noqa: F401
    import gat_pyg.train.loop       # noqa: F401
    from gat_pyg.kernels import triton as triton_backend
    if triton_backend.available():
        import triton.language      # noqa: F401


def _case_line(case: dict, res: dict) -> str:
    label = f'{_label(case):62s}'
    if res.get('status') != 'ok':
        return f"{label}  {res.get('status')}: {str(res.get('error', ''))[-300:]}".rstrip(': ')
    parts = [f"step {res['step_ms']:9.2f} ms"]
    if 'forward_ms' in res:
        parts.append(f"forward {res['forward_ms']:8.2f} ms")
    parts.append(f"first {res['first_step_ms']:8.0f} ms")
    if 'peak_mib' in res:
        parts.append(f"peak {res['peak_mib']:9.1f} MiB (first {res['first_peak_mib']:.1f})")
    return f"{label}  {'  '.join(parts)}"


def _size_key(case: dict) -> Optional[tuple]:
    """What a larger size of the same layer case would repeat (to skip after a failure)."""
    if case['kind'] != 'layer':
        return None
    return (case['conv'], case['impl'], case['precision'], case['tile'], case['warps'])


# --- ratios and the targets ---------------------------------------------------------------------

def _find(results: List[dict], **match) -> Optional[dict]:
    for r in results:
        if all(r.get(k) == v for k, v in match.items()):
            return r
    return None


def _ok(r: Optional[dict]) -> bool:
    return r is not None and r.get('status') == 'ok'


def _status(r: Optional[dict]) -> str:
    return 'not run' if r is None else str(r.get('status'))


def layer_ratios(results: List[dict]) -> List[dict]:
    """Per (conv, E): PyG's step over ours (triton and csr), our peak memory over PyG's, our
    float32 step over bf16-mixed / bfloat16, and the launch shapes' steps against the
    default."""
    rows = []
    layers = [r for r in results if r.get('kind') == 'layer']
    for conv, edges in sorted({(r['conv'], r['edges']) for r in layers},
                              key=lambda k: (k[0], k[1])):
        def get(impl, precision='float32', tile=None, warps=None):
            return _find(layers, conv=conv, edges=edges, impl=impl, precision=precision,
                         tile=tile, warps=warps)
        triton, csr, pyg = get('triton'), get('csr'), get('pyg')
        row: Dict[str, object] = dict(conv=conv, edges=edges)
        for name, ours in (('triton', triton), ('csr', csr)):
            if _ok(ours) and _ok(pyg):
                row[f'{name}_speedup_vs_pyg'] = pyg['step_ms'] / ours['step_ms']
                if 'peak_mib' in ours and 'peak_mib' in pyg:
                    row[f'{name}_memory_vs_pyg'] = ours['peak_mib'] / pyg['peak_mib']
        if _ok(triton) and _ok(csr):
            row['triton_speedup_vs_csr'] = csr['step_ms'] / triton['step_ms']
        for precision in ('bf16-mixed', 'bfloat16'):
            low = get('triton', precision)
            if _ok(triton) and _ok(low):
                row[f'{precision}_speedup'] = triton['step_ms'] / low['step_ms']
        for r in layers:
            if (r['conv'], r['edges'], r['impl']) == (conv, edges, 'triton') and \
                    (r.get('tile') or r.get('warps')) and _ok(r) and _ok(triton):
                row[f"tile{r.get('tile') or '-'}_warps{r.get('warps') or '-'}_speedup"] = \
                    triton['step_ms'] / r['step_ms']
        row.update({f'{impl}_status': _status(get(impl)) for impl in ('triton', 'csr', 'pyg')})
        rows.append(row)
    return rows


def _ran(r: Optional[dict]) -> bool:
    """The case ran (to a result or a failure), rather than being skipped or not listed."""
    return r is not None and not str(r.get('status')).startswith('skipped')


def targets(results: List[dict], smoke: bool) -> List[dict]:
    """The targets of issue 21, each ``met`` / ``missed`` / ``not run`` with what decided it.
    A target over several cases is met when every case measured meets it, missed when one
    does not (or ours failed where it ran), not run when none was measured."""
    big = SMOKE_SIZES[1] if smoke else TARGET_MIN_EDGES
    layers = [r for r in results if r.get('kind') == 'layer' and r['edges'] >= big]
    pairs = sorted({(r['conv'], r['edges']) for r in layers})

    def verdict(checks: List[Optional[bool]]) -> str:
        decided = [c for c in checks if c is not None]
        if not decided:
            return 'not run'
        return 'met' if all(decided) else 'missed'

    def ours_fp32(conv, edges):
        return _find(layers, conv=conv, edges=edges, impl='triton', precision='float32',
                     tile=None, warps=None)

    rows = []
    # 1. one layer, E >= 4M: >= 2x faster at <= 1/6 of PyG's peak memory.
    details, checks = [], []
    for conv, edges in pairs:
        ours = ours_fp32(conv, edges)
        pyg = _find(layers, conv=conv, edges=edges, impl='pyg', precision='float32')
        if _ok(ours) and _ok(pyg):
            speed = pyg['step_ms'] / ours['step_ms']
            memory = ours['peak_mib'] / pyg['peak_mib'] if 'peak_mib' in pyg else None
            checks.append(speed >= 2 and (memory is None or memory <= 1 / 6))
            details.append(f'{conv} {edges:,}: {speed:.2f}x' + (
                f' at {memory:.3f} of the memory' if memory is not None else ''))
        elif _ok(ours) and _ran(pyg) and pyg['status'] == 'out of memory':
            checks.append(True)     # ours fits where PyG's does not
            details.append(f'{conv} {edges:,}: PyG out of memory, ours '
                           f"{ours['step_ms']:.1f} ms")
        elif _ran(ours) and not _ok(ours):
            checks.append(False)
            details.append(f'{conv} {edges:,}: ours {_status(ours)}')
        elif ours is not None or pyg is not None:
            details.append(f'{conv} {edges:,}: ours {_status(ours)}, PyG {_status(pyg)}')
    rows.append(dict(target=f'one layer, E >= {big:,}: >= 2x faster than PyG at <= 1/6 of its '
                     'peak memory', verdict=verdict(checks), detail='; '.join(details)))

    # 2. the products-sized model fits where PyG's does not.
    ours = _find(results, kind='model', impl='triton')
    pyg = _find(results, kind='model', impl='pyg')
    if _ran(ours) and not _ok(ours):
        check: Optional[bool] = False
    elif _ok(ours) and _ran(pyg) and pyg['status'] in ('ok', 'out of memory'):
        check = pyg['status'] == 'out of memory'
    else:
        check = None

    def peak(r):
        return f" ({r['peak_total_mib'] / 1024:.1f} GiB peak)" if _ok(r) and \
            'peak_total_mib' in r else ''
    detail = f'ours {_status(ours)}{peak(ours)}, PyG {_status(pyg)}{peak(pyg)}'
    if check is False and _ok(ours):
        detail += ": PyG's fits too"
    rows.append(dict(target="two-layer GAT, full batch, products-sized: fits where PyG's does "
                     'not', verdict=verdict([check]), detail=detail))

    # 3. Cora epoch >= 1x PyG (ours on sparse x, its default, against PyG's faster form).
    details, checks = [], []
    for model in ('gat', 'gatv2'):
        ours = _find(results, kind='epoch', dataset='cora', model=model, impl='triton',
                     features='sparse')
        theirs = [r for r in (_find(results, kind='epoch', dataset='cora', model=model,
                                    impl='pyg', features=f) for f in ('dense', 'sparse'))
                  if _ok(r)]
        if _ok(ours) and theirs:
            best = min(theirs, key=lambda r: r['step_ms'])
            speed = best['step_ms'] / ours['step_ms']
            checks.append(speed >= 1)
            details.append(f"{model}: {speed:.2f}x (PyG's {best['features']} x)")
        elif _ran(ours) and not _ok(ours):
            checks.append(False)
            details.append(f'{model}: ours {_status(ours)}')
        elif _ok(ours):
            details.append(f'{model}: PyG not measured')
    rows.append(dict(target='Cora epoch (synthetic, Cora-shaped) >= 1x PyG', verdict=verdict(
        checks), detail='; '.join(details)))

    # 4. bf16 >= 1.4x our float32 at E >= 4M.
    details, checks = [], []
    for conv, edges in pairs:
        fp32 = ours_fp32(conv, edges)
        bf16 = _find(layers, conv=conv, edges=edges, impl='triton', precision='bf16-mixed')
        if _ok(fp32) and _ok(bf16):
            speed = fp32['step_ms'] / bf16['step_ms']
            checks.append(speed >= 1.4)
            details.append(f'{conv} {edges:,}: {speed:.2f}x')
        elif _ran(bf16) and not _ok(bf16):
            checks.append(False)
            details.append(f'{conv} {edges:,}: bf16-mixed {_status(bf16)}')
    rows.append(dict(target=f'bf16-mixed >= 1.4x our float32, one layer, E >= {big:,}',
                     verdict=verdict(checks), detail='; '.join(details)))
    return rows


def _table(headers: List[str], rows: List[List[str]]) -> List[str]:
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows)]
    line = lambda cells: '| ' + ' | '.join(f'{str(c):{w}s}' for c, w in zip(cells, widths)) \
        + ' |'  # noqa: E731
    return [line(headers), '|' + '|'.join('-' * (w + 2) for w in widths) + '|'] + \
        [line(r) for r in rows]


def _short(r: Optional[dict]) -> str:
    if _ok(r):
        return f"{r['step_ms']:.2f}"
    status = _status(r)
    return {'out of memory': 'OOM'}.get(status, status.split(':')[0])


def _layer_table(results: List[dict], ratios: List[dict]):
    """Headers and rows of the one-layer table: each (conv, E), our steps and the ratios."""
    layers = [r for r in results if r.get('kind') == 'layer']

    def num(row, key, digits=2):
        return f'{row[key]:.{digits}f}' if key in row else '-'
    rows = []
    for row in ratios:
        conv, edges = row['conv'], row['edges']

        def step(impl):
            return _short(_find(layers, conv=conv, edges=edges, impl=impl, precision='float32',
                                tile=None, warps=None))
        shapes = ' '.join(f"{k[:-len('_speedup')]}={v:.2f}" for k, v in row.items()
                          if k.startswith('tile'))
        rows.append([conv, f'{edges:,}', step('triton'), step('csr'), step('pyg'),
                     num(row, 'triton_speedup_vs_pyg'), num(row, 'triton_memory_vs_pyg', 3),
                     num(row, 'csr_speedup_vs_pyg'), num(row, 'csr_memory_vs_pyg', 3),
                     num(row, 'triton_speedup_vs_csr'), num(row, 'bf16-mixed_speedup'),
                     num(row, 'bfloat16_speedup'), shapes or '-'])
    return (['conv', 'E', 'triton', 'csr', 'PyG', 'triton vs PyG', 'triton mem/PyG',
             'csr vs PyG', 'csr mem/PyG', 'triton vs csr', 'bf16-mixed vs fp32',
             'bfloat16 vs fp32', 'launch shapes (default step / theirs)'], rows)


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

    def save() -> None:
        with open(json_path, 'w') as f:
            json.dump(results, f, indent=1)

    env = dict(python=platform.python_version(), torch=torch.__version__,
               cuda=torch.version.cuda, smoke=args.smoke, budget_s=args.budget)
    for name in ('triton', 'torch_geometric'):
        try:
            env[name] = __import__(name).__version__
        except Exception as error:   # noqa: BLE001
            env[name] = f'unavailable: {error}'
    results: dict = {'environment': env}
    # torch.cuda.is_available() creates no CUDA context: the parent holds no GPU memory.
    if not args.smoke and not torch.cuda.is_available():
        reason = 'no CUDA device (torch.cuda.is_available() is False)'
        say(f'gpu_check: {reason}: skipping the GPU checks and timings')
        results['skipped'] = reason
        save()
        log.close()
        return 0
    start = time.time()
    say(f'gpu_check: {json.dumps(env)}')

    def left() -> float:
        return args.budget - (time.time() - start)

    todo = [{k: v for k, v in case.items() if k != 'smoke'} for case in cases(args.smoke)]

    def start_case(case: dict) -> _Child:
        extra = {name: case[k] for k, name in (('tile', 'GAT_PYG_TRITON_TILE'),
                                               ('warps', 'GAT_PYG_TRITON_WARPS')) if case.get(k)}
        return _Child(_argv(case, args.smoke), _child_env(_triton_in(case), args.smoke, extra))

    # 1. correctness
    check_json = os.path.join(out_dir, 'check.json')
    say('== correctness (GAT_PYG_TRITON=1) ==')
    checker = _Child(['check', '--json', check_json] + (['--smoke'] if args.smoke else []),
                     _child_env(True, args.smoke))
    ahead = start_case(todo[0]) if todo else None
    timeout = max(1.0, min(args.check_timeout, left()))
    code, out, err = checker.run(timeout)
    say(out.rstrip())
    if code and err:
        say(err.rstrip()[-4000:])
    if code is None:
        say(f'correctness: timed out after {timeout:.0f} s')
        results['check'] = {'error': 'timeout', 'exit_status': None}
    else:
        results['check'] = (json.load(open(check_json)) if os.path.exists(check_json)
                            else {'error': err[-4000:]})
        results['check']['exit_status'] = code
    save()

    # 2-4. the cases
    say('== timed cases (one process each; steps are forward + backward [+ Adam], medians; '
        'peaks above the inputs) ==')
    done: List[dict] = []
    gave_up: Dict[tuple, tuple] = {}    # layer configuration -> (edges, why) it stopped at
    for i, case in enumerate(todo):
        child, ahead = ahead, None
        key = _size_key(case)
        if key in gave_up and case['edges'] > gave_up[key][0]:
            res = dict(case, status=f'skipped: {gave_up[key][1]}')
        elif left() < args.min_case_seconds:
            res = dict(case, status=f'skipped: time budget ({args.budget:.0f} s) spent')
        else:
            if i + 1 < len(todo):
                ahead = start_case(todo[i + 1])
            own = {'layer': args.case_timeout, 'epoch': args.case_timeout,
                   'model': args.model_timeout}[case['kind']]
            timeout = min(own, left())
            t0 = time.time()
            code, out, err = child.run(timeout)
            child = None
            lines = [ln for ln in out.splitlines() if ln.startswith('{')]
            if code is None and timeout < own:      # stopped by the budget, not by itself
                res = dict(case, status=f'skipped: time budget ({args.budget:.0f} s) spent '
                                        f'after {timeout:.0f} s of it')
            elif code is None:
                res = dict(case, status=f'timeout after {timeout:.0f} s')
            elif code or not lines:
                res = dict(case, status='failed', error=(err or out).strip()[-2000:])
            else:
                res = dict(case, **json.loads(lines[-1]))
            res['seconds'] = time.time() - t0
            if key is not None and (res['status'] == 'out of memory'
                                    or res['status'].startswith('timeout')):
                gave_up[key] = (case['edges'], f"{res['status']} at E={case['edges']:,}")
        if child is not None:           # skipped: it never ran
            child.cancel()
        if ahead is None and i + 1 < len(todo) and left() >= args.min_case_seconds:
            ahead = start_case(todo[i + 1])
        done.append(res)
        say(_case_line(case, res))
        results['cases'] = done
        save()
    if ahead is not None:
        ahead.cancel()

    results['layer_ratios'] = layer_ratios(done)
    results['targets'] = targets(done, args.smoke)
    results['seconds'] = time.time() - start
    say('== one layer, 64 -> 8 x 8, forward + backward: median step (ms) and ratios '
        '(speed-up: the other step / ours; memory: our peak / PyG peak) ==')
    for line in _table(*_layer_table(done, results['layer_ratios'])):
        say(line)
    say('== epoch and products-sized model ==')
    for r in done:
        if r['kind'] != 'layer':
            say('  ' + _case_line(r, r).strip())
    say('== summary: the targets of issue 21' + (
        " (smoke run: CPU, Triton's interpreter, toy sizes: the numbers mean nothing) =="
        if args.smoke else ' =='))
    for line in _table(['target', 'verdict', 'measured'],
                       [[t['target'], t['verdict'], t['detail'] or '-']
                        for t in results['targets']]):
        say(line)
    check_failed = results['check'].get('exit_status') != 0
    say(f"gpu_check: done in {results['seconds']:.0f} s; correctness "
        f"{'FAILED' if check_failed else 'passed'}; cases: "
        f"{sum(r['status'] == 'ok' for r in done)} ok, "
        f"{sum(r['status'] == 'out of memory' for r in done)} out of memory, "
        f"{sum(r['status'].startswith('skipped') for r in done)} skipped, "
        f"{sum(r['status'] == 'failed' or r['status'].startswith('timeout') for r in done)} "
        f"failed or timed out; {log_path}, {json_path}")
    save()
    log.close()
    return 1 if check_failed or any(r['status'] == 'failed' for r in done) else 0


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    sub = parser.add_subparsers(dest='command', required=True)
    p_all = sub.add_parser('all', help='correctness, then the timed cases; results under --out')
    p_all.add_argument('--out', default=os.environ.get('OUT', 'gpu-results'))
    p_all.add_argument('--budget', type=float, default=420.0,
                       help='seconds for everything; cases left when it is spent are skipped '
                            '(default 420: the run must end within 8 minutes on an H200)')
    p_all.add_argument('--check-timeout', type=float, default=200.0,
                       help='seconds for the correctness checks (default 200)')
    p_all.add_argument('--case-timeout', type=float, default=60.0,
                       help='seconds for one layer or epoch case (default 60)')
    p_all.add_argument('--model-timeout', type=float, default=90.0,
                       help='seconds for one products-sized model case (default 90)')
    p_all.add_argument('--min-case-seconds', type=float, default=15.0,
                       help='do not start a case with less of the budget left (default 15)')
    p_check = sub.add_parser('check', help='the correctness checks (run with GAT_PYG_TRITON=1)')
    p_check.add_argument('--json')
    p_layer = sub.add_parser('layer', help='one layer case')
    p_layer.add_argument('--conv', choices=('gat', 'gatv2'), required=True)
    p_layer.add_argument('--impl', choices=('triton', 'csr', 'pyg'), required=True)
    p_layer.add_argument('--edges', type=int, required=True)
    p_layer.add_argument('--precision', choices=('float32', 'bf16-mixed', 'bfloat16'),
                         default='float32')
    p_epoch = sub.add_parser('epoch', help='one training-epoch case')
    p_epoch.add_argument('--dataset', choices=tuple(PLANETOID), required=True)
    p_epoch.add_argument('--model', choices=('gat', 'gatv2'), required=True)
    p_epoch.add_argument('--impl', choices=('triton', 'csr', 'pyg'), required=True)
    p_epoch.add_argument('--features', choices=('sparse', 'dense'), required=True)
    p_model = sub.add_parser('model', help='the products-sized full-batch model')
    p_model.add_argument('--impl', choices=('triton', 'csr', 'pyg'), required=True)
    for p in (p_all, p_check, p_layer, p_epoch, p_model):
        p.add_argument('--smoke', action='store_true',
                       help="on the CPU through Triton's interpreter, toy sizes (tests this "
                            'script; the numbers mean nothing)')
    for p in (p_check, p_layer, p_epoch, p_model):
        p.add_argument('--wait', action='store_true', help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.command == 'all':
        return run_all(args)
    if args.smoke:
        if os.environ.get('TRITON_INTERPRET') != '1':
            parser.error('--smoke needs TRITON_INTERPRET=1 (set by `all --smoke`)')
        _hide_missing_dependencies()
    if args.wait:       # started ahead by `all` (_Child): import, then wait for its turn
        _preload()
        if sys.stdin.readline().strip() != 'go':
            return 0    # cancelled
    if args.command == 'check':
        return check(args)
    case = {'layer': layer_case, 'epoch': epoch_case, 'model': model_case}[args.command]
    print(json.dumps(case(args)), flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())

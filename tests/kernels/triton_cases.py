"""The cases of ``test_triton_kernels.py``, their inputs, and the worker that runs the Triton
kernels on them in a separate process.

Imported as ``triton_cases`` (pytest puts this folder on ``sys.path``), and run as a script::

    TRITON_INTERPRET=1 python tests/kernels/triton_cases.py interpret OUT.pt
    python tests/kernels/triton_cases.py compile OUT.json

``interpret`` runs every case through ``gat_pyg.kernels.triton`` in Triton's interpreter and
saves what each returned; ``compile`` compiles every kernel variant the cases launch for an
NVIDIA GPU (sm_90, or ``GAT_PYG_COMPILE_ARCH``) without one, through a stand-in driver (what
a CUDA machine would compile, short of running it), and saves what compiled. Both build the
inputs with :func:`inputs`, deterministic in the case, so the test process can rebuild them and
compare with the C++ operators.
"""
import contextlib
import dataclasses
import json
import os
import sys
import traceback
from typing import Dict, List

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

from kernel_reference import GRAPHS, random_edges, sorted_graph   # noqa: E402

F32, F64 = torch.float32, torch.float64
I32, I64 = torch.int32, torch.int64


def _graphs():
    graphs = dict(GRAPHS)
    # Every node with a self-loop, on top of random edges (duplicates included).
    ei, n, _ = GRAPHS['random']
    loops = torch.arange(n).repeat(2, 1)
    graphs['self_loops'] = (torch.cat([ei, loops], 1), n, n)
    # One edge per target, each source fanning out to 3 targets: out[target] is the
    # (dropped) h_src of its source, times alpha = 1, so a dropout mask reads out exactly.
    src = torch.arange(6).repeat_interleave(3)
    graphs['fan_out'] = (torch.stack([src, torch.arange(18)]), 6, 18)
    graphs['wide_row'] = (random_edges(4, 2, 70, seed=5), 4, 2)   # rows longer than a block
    return graphs


GRAPH_SPECS = _graphs()


def _case(name, kind, graph, heads, channels, dtype=F32, index=I64, **flags):
    return dict(name=name, kind=kind, graph=graph, heads=heads, channels=channels,
                dtype=dtype, index=index, **flags)


# kind: gat / gatv2 (forward + backward), mask_gat / mask_gatv2 (forward on the fan-out graph:
# compared bit for bit), scores (head_scores + backward), dropout (attention / feature).
CASES: List[dict] = [
    # --- GAT ---
    _case('gat_h1_c1', 'gat', 'random', 1, 1, s_dst=True),
    _case('gat_h2_c3_f64_i32_all', 'gat', 'random', 2, 3, F64, I32, s_dst=True, s_edge=True,
          p=0.3, p_msg=0.2, grad_alpha=True),
    _case('gat_bipartite_h8_c16', 'gat', 'more_sources', 8, 16, s_dst=True, s_edge=True, p=0.5),
    _case('gat_more_targets_h2_c64_i32', 'gat', 'more_targets', 2, 64, F32, I32, grad_alpha=True),
    _case('gat_isolated_duplicates_h8_c8_f64', 'gat', 'isolated_duplicates', 8, 8, F64,
          s_dst=True, s_edge=True, p=0.4, p_msg=0.3, grad_alpha=True),
    _case('gat_self_loops_h2_c8', 'gat', 'self_loops', 2, 8, s_dst=True, p=0.2),
    _case('gat_wide_row_h1_c3_f64', 'gat', 'wide_row', 1, 3, F64, s_dst=True, s_edge=True,
          grad_alpha=True),
    _case('gat_no_edges', 'gat', 'no_edges', 2, 3, s_dst=True, s_edge=True, grad_alpha=True),
    _case('gat_no_nodes_f64', 'gat', 'no_nodes', 2, 3, F64, s_dst=True),
    _case('gat_partial_mask', 'gat', 'random', 2, 3, F64, s_dst=True, s_edge=True,
          mask=[False, True, False, True], p_msg=0.5),
    _case('gat_p_one', 'gat', 'random', 2, 3, F64, s_dst=True, p=1.0, grad_alpha=True),
    _case('gat_h16_c2', 'gat', 'random', 16, 2, s_dst=True, s_edge=True, p=0.3),
    # --- GATv2 ---
    _case('gatv2_h1_c1_merge', 'gatv2', 'random', 1, 1, h_is_x_l=True, merge=True),
    _case('gatv2_h2_c3_f64_i32_edges_dropouts', 'gatv2', 'random', 2, 3, F64, I32, edge_dim=2,
          p=0.3, p_msg=0.2, grad_alpha=True, h_is_x_l=True, merge=True),
    _case('gatv2_bipartite_h8_c16_edges_merge', 'gatv2', 'more_sources', 8, 16, edge_dim=3,
          h_is_x_l=True, merge=True),
    _case('gatv2_more_targets_h2_c64_i32_own_h', 'gatv2', 'more_targets', 2, 64, F32, I32,
          grad_alpha=True),
    _case('gatv2_isolated_duplicates_h8_c8_f64', 'gatv2', 'isolated_duplicates', 8, 8, F64,
          edge_dim=1, p=0.4, h_is_x_l=True, merge=True, grad_alpha=True),
    _case('gatv2_rows_per_program_f64_edges', 'gatv2', 'random', 2, 3, F64, edge_dim=3, p=0.3,
          grad_alpha=True, max_programs=2),
    _case('gatv2_rows_per_program_isolated', 'gatv2', 'more_targets', 8, 8, F32, I32,
          edge_dim=2, h_is_x_l=True, merge=True, max_programs=3),
    _case('gatv2_self_loops_h2_c8_dropout', 'gatv2', 'self_loops', 2, 8, p=0.2, h_is_x_l=True,
          merge=True),
    _case('gatv2_wide_row_h2_c3_f64_edges', 'gatv2', 'wide_row', 2, 3, F64, edge_dim=2,
          grad_alpha=True, h_is_x_l=True),
    _case('gatv2_no_edges_edges', 'gatv2', 'no_edges', 2, 3, edge_dim=2, h_is_x_l=True,
          merge=True),
    _case('gatv2_no_nodes_f64', 'gatv2', 'no_nodes', 2, 3, F64, edge_dim=2),
    _case('gatv2_h12_c5_edges', 'gatv2', 'more_sources', 12, 5, F64, I32, edge_dim=2, p=0.2,
          grad_alpha=True, h_is_x_l=True, merge=True),
    _case('gatv2_partial_mask', 'gatv2', 'random', 2, 3, F64, edge_dim=2,
          mask=[True, False, True, False, True, False]),
    # --- masks, bit for bit ---
    _case('mask_gat', 'mask_gat', 'fan_out', 2, 5, F32, p=0.5, p_msg=0.4),
    _case('mask_gatv2', 'mask_gatv2', 'fan_out', 3, 3, F64, I32, p=0.6, p_msg=0.3),
    # --- head scores ---
    _case('scores_h1_c1', 'scores', None, 1, 1, nodes=7),
    _case('scores_h2_c3_f64', 'scores', None, 2, 3, F64, nodes=130),
    _case('scores_nodes_per_program', 'scores', None, 2, 8, F32, nodes=300, max_programs=2),
    _case('scores_h8_c16', 'scores', None, 8, 16, nodes=70),
    _case('scores_h2_c64', 'scores', None, 2, 64, nodes=33),
    _case('scores_h12_c5_f64', 'scores', None, 12, 5, F64, nodes=45),
    _case('scores_no_nodes', 'scores', None, 2, 3, nodes=0),
    # --- dropout ---
    _case('dropout_f32', 'dropout', None, 0, 0, F32, shapes=[(1000, ), (37, 53), (7, 11, 13)],
          ps=[0.1, 0.6, 1.0]),
    _case('dropout_f64', 'dropout', None, 0, 0, F64, shapes=[(57, 3), (3, 0, 5), ()],
          ps=[0.5]),
]

CASE_NAMES = [c['name'] for c in CASES]
FLOAT16_COMPILE_CASES = ('gat_bipartite_h8_c16', 'gatv2_bipartite_h8_c16_edges_merge',
                         'gatv2_rows_per_program_isolated', 'mask_gat', 'scores_h8_c16',
                         'dropout_f32')
BY_NAME = {c['name']: c for c in CASES}


def _randn(gen, shape, dtype):
    return torch.randn(tuple(shape), generator=gen, dtype=F64).to(dtype)


def inputs(case: dict) -> Dict[str, object]:
    """The case's inputs, the same in every process (a generator seeded by the case name)."""
    gen = torch.Generator().manual_seed(sum(map(ord, case['name'])))
    dtype, H, C = case['dtype'], case['heads'], case['channels']
    result: Dict[str, object] = {}
    if case['kind'] == 'scores':
        n = case['nodes']
        result.update(x=_randn(gen, (n, H, C), dtype), att=_randn(gen, (H, C), dtype),
                      grad=_randn(gen, (n, H), dtype))
        return result
    if case['kind'] == 'dropout':
        result['tensors'] = [_randn(gen, s, dtype) for s in case['shapes']]
        result['seed'] = torch.tensor(int(torch.randint(0, 2**62, (), generator=gen)))
        return result
    edge_index, num_src, num_dst = GRAPH_SPECS[case['graph']]
    g = sorted_graph(edge_index, num_src, num_dst, case['index'])
    E = g.num_edges
    result['graph'] = g
    result['seed'] = torch.tensor(int(torch.randint(-2**62, 2**62, (), generator=gen)))
    result['message_seed'] = torch.tensor(int(torch.randint(0, 2**62, (), generator=gen)))
    if case['kind'] in ('gat', 'mask_gat'):
        result['s_src'] = _randn(gen, (num_src, H), dtype)
        result['s_dst'] = _randn(gen, (num_dst, H), dtype) if case.get('s_dst') else None
        result['s_edge'] = _randn(gen, (E, H), dtype) if case.get('s_edge') else None
        result['h_src'] = _randn(gen, (num_src, H, C), dtype)
        if case['kind'] == 'mask_gat':
            result['h_src'] = torch.ones(num_src, H, C, dtype=dtype)
    else:
        result['x_l'] = _randn(gen, (num_src, H, C), dtype)
        result['x_r'] = _randn(gen, (num_dst, H, C), dtype)
        result['att'] = _randn(gen, (H, C), dtype)
        D = case.get('edge_dim', 0)
        result['edge_attr'] = _randn(gen, (E, D), dtype) if D else None
        result['w_edge'] = _randn(gen, (H * C, D), dtype) if D else None
        result['h_src'] = (result['x_l'] if case.get('h_is_x_l')
                           else _randn(gen, (num_src, H, C), dtype))
        if case['kind'] == 'mask_gatv2':
            result['h_src'] = torch.ones(num_src, H, C, dtype=dtype)
    result['grad_out'] = _randn(gen, (num_dst, H, C), dtype)
    result['grad_alpha'] = _randn(gen, (E, H), dtype) if case.get('grad_alpha') else None
    return result


def _moved(x: Dict[str, object], device, cast) -> Dict[str, object]:
    """x's tensors on ``device`` and its floating tensors of dtype ``cast`` (if given); a tensor
    that appears twice (h_src is x_l) stays one tensor. Seeds stay on the CPU."""
    memo: Dict[int, torch.Tensor] = {}

    def convert(t):
        if not isinstance(t, torch.Tensor):
            return t
        if id(t) not in memo:
            u = t.to(device)
            if cast is not None and u.is_floating_point():
                u = u.to(cast)
            memo[id(t)] = u
        return memo[id(t)]

    moved = {}
    for key, value in x.items():
        if key in ('seed', 'message_seed'):
            moved[key] = value
        elif key == 'graph':
            moved[key] = dataclasses.replace(value, **{
                f.name: convert(getattr(value, f.name)) for f in dataclasses.fields(value)
                if isinstance(getattr(value, f.name), torch.Tensor)})
        elif isinstance(value, list):
            moved[key] = [convert(t) for t in value]
        else:
            moved[key] = convert(value)
    return moved


@contextlib.contextmanager
def _program_limit(case: dict, ops):
    """With ``max_programs`` in the case, the Triton kernels that keep one partial sum per
    program (GATv2's destination pass, head scores' backward) use at most that many programs,
    so that tiny graphs take their loop over several rows (nodes) per program."""
    limit = case.get('max_programs')
    if not limit or getattr(ops, '__name__', '') != 'gat_pyg.kernels.triton':
        yield
        return
    from gat_pyg.kernels.triton import attend_kernel, head_scores_kernel
    saved = attend_kernel.MAX_ROW_PROGRAMS, head_scores_kernel.MAX_PROGRAMS
    attend_kernel.MAX_ROW_PROGRAMS = head_scores_kernel.MAX_PROGRAMS = limit
    try:
        yield
    finally:
        attend_kernel.MAX_ROW_PROGRAMS, head_scores_kernel.MAX_PROGRAMS = saved


def run(case: dict, ops, device='cpu', cast=None) -> List[torch.Tensor]:
    """Runs the case through ``ops`` (``torch.ops.gat_pyg``, ``gat_pyg.kernels.triton`` or
    its ``reference``) with the inputs on ``device`` (floating ones cast to ``cast`` if
    given); returns the list of results, in a fixed order."""
    with _program_limit(case, ops):
        return _run(case, ops, device, cast)


def _run(case: dict, ops, device, cast) -> List[torch.Tensor]:
    x = _moved(inputs(case), device, cast)
    kind = case['kind']
    if kind == 'scores':
        s = ops.head_scores(x['x'], x['att'])
        return [s, *ops.head_scores_backward(x['grad'], x['x'], x['att'], [True, True]),
                *ops.head_scores_backward(x['grad'], x['x'], x['att'], [False, True])]
    if kind == 'dropout':
        out = []
        for t in x['tensors']:
            for p in case['ps']:
                out.append(ops.feature_dropout(t, p, x['seed']))
                if t.dim() == 2:
                    out.append(ops.attention_dropout(t, p, x['seed']))
        return out
    g = x['graph']
    p, p_msg = case.get('p', 0.0), case.get('p_msg', 0.0)
    seed = x['seed'] if p else None
    mseed = x['message_seed'] if p_msg else None
    if kind in ('gat', 'mask_gat'):
        scores = (x['s_src'], x['s_dst'], x['s_edge'])
        out, alpha = ops.gat_forward(*g.args(), *scores, x['h_src'], 0.2, p, seed, p_msg, mseed)
        if kind == 'mask_gat':
            return [out, alpha]
        mask = case.get('mask', [True] * 4)
        grads = ops.gat_backward(x['grad_out'], x['grad_alpha'], *g.args(), *scores, x['h_src'],
                                 alpha, 0.2, p, seed, mask, p_msg, mseed)
        return [out, alpha, *grads]
    v2 = (x['x_l'], x['x_r'], x['att'], x['edge_attr'], x['w_edge'])
    out, alpha = ops.gatv2_forward(*g.args(), *v2, x['h_src'], 0.2, p, seed, p_msg, mseed)
    if kind == 'mask_gatv2':
        return [out, alpha]
    mask = case.get('mask', [True] * 6)
    grads = ops.gatv2_backward(x['grad_out'], x['grad_alpha'], *g.args(), *v2, x['h_src'],
                               alpha, 0.2, p, seed, mask, p_msg, mseed, case.get('merge', False))
    return [out, alpha, *grads]


# --- misuse: each raises RuntimeError before any kernel runs ----------------------------------

def error_cases():
    """``(name, call(ops), message pattern)``: calls that both the C++ operators and the Triton
    kernels refuse with a RuntimeError (the pattern is the Triton message's)."""
    g = sorted_graph(*GRAPH_SPECS['random'])
    n, E = g.num_src, g.num_edges
    s, h = torch.randn(n, 2), torch.randn(n, 2, 3)
    x_r, att = torch.randn(n, 2, 3), torch.randn(2, 3)
    alpha, grad_out = torch.rand(E, 2), torch.randn(n, 2, 3)
    bad_src = g.src.clone()
    bad_src[3] = n
    bad_ptr = g.ptr.clone()
    bad_ptr[2], bad_ptr[3] = bad_ptr[3], bad_ptr[2] - 1
    shuffled = g.t_perm.flip(0).contiguous()

    def gat(ops, *, ptr=g.ptr, src=g.src, s_src=s, h_src=h, p=0.0, seed=None, p_msg=0.0):
        return ops.gat_forward(ptr, src, None, None, None, s_src, None, None, h_src, 0.2, p,
                               seed, p_msg, None)

    def gat_backward(ops, transposed=(g.t_ptr, g.t_col, g.t_perm)):
        return ops.gat_backward(grad_out, None, g.ptr, g.src, *transposed, s, None, None, h,
                                alpha, 0.2, 0.0, None, [True] * 4)

    def gatv2(ops, *, edge_attr=None, w_edge=None):
        return ops.gatv2_forward(*g.args(), h, x_r, att, edge_attr, w_edge, h, 0.2, 0.0, None)

    def merged(ops):
        return ops.gatv2_backward(grad_out, None, *g.args(), h, x_r, att, None, None, h.clone(),
                                  alpha, 0.2, 0.0, None, [True] * 6, 0.0, None, True)

    return [
        ('integer_features', lambda ops: gat(ops, h_src=h.long(), s_src=s.long()),
         r'h_src must be float32, float64, bfloat16 or float16'),
        ('score_shape', lambda ops: gat(ops, s_src=s[:-1]), r's_src has shape'),
        ('source_out_of_range', lambda ops: gat(ops, src=bad_src), r'src has an entry outside'),
        ('decreasing_pointers', lambda ops: gat(ops, ptr=bad_ptr), r'ptr must start at 0'),
        ('index_dtypes_differ', lambda ops: gat(ops, src=g.src.int()),
         r'src must have the dtype of ptr'),
        ('dropout_above_one', lambda ops: gat(ops, p=1.5, seed=torch.tensor(1)),
         r'dropout must be in \[0, 1\]'),
        ('dropout_without_seed', lambda ops: gat(ops, p=0.5), r'dropout > 0 needs a seed'),
        ('message_dropout_without_seed', lambda ops: gat(ops, p_msg=0.5),
         r'message_dropout > 0 needs a message_seed'),
        ('backward_without_transpose', lambda ops: gat_backward(ops, (None, None, None)),
         r'backward needs the transposed order'),
        ('wrong_transpose', lambda ops: gat_backward(ops, (g.t_ptr, g.t_col, shuffled)),
         r'are not the transpose of ptr/src'),
        ('edge_attr_without_weight', lambda ops: gatv2(ops, edge_attr=torch.randn(E, 2)),
         r'edge_attr and w_edge must be given together'),
        ('merge_with_another_h_src', merged, r'merge_h_src needs h_src to be x_l'),
        ('head_scores_att_shape', lambda ops: ops.head_scores(h, torch.randn(3, 2)),
         r'att has shape'),
    ]


# --- the worker ---------------------------------------------------------------------------------

def _interpret(path: str) -> None:
    assert os.environ.get('TRITON_INTERPRET') == '1', 'run with TRITON_INTERPRET=1'
    import gat_pyg.kernels     # noqa: F401  (the C++ operators, which _dispatch_check uses)
    from gat_pyg.kernels import triton as kernels
    results = {}
    for case in CASES:
        try:
            results[case['name']] = {'outputs': [t.clone() for t in run(case, kernels)]}
        except Exception:   # noqa: BLE001  (reported by the test of that case)
            results[case['name']] = {'error': traceback.format_exc()}
    for name, call, _ in error_cases():
        try:
            call(kernels)
            results[f'error:{name}'] = {'raised': None}
        except Exception as error:   # noqa: BLE001
            results[f'error:{name}'] = {'raised': type(error).__name__, 'message': str(error)}
    try:        # last: it replaces the C++ CPU kernels in this process
        results['dispatch'] = _dispatch_check()
    except Exception:   # noqa: BLE001
        results['dispatch'] = {'error': traceback.format_exc()}
    torch.save(results, path)


def _through_the_dispatcher() -> List[torch.Tensor]:
    """The package's functions (gat_pyg.kernels: gat_attention, gatv2_attention, head_scores,
    feature_dropout; the operators' autograd over torch.ops.gat_pyg), forward and gradients,
    float64, dropouts on; then GATConv / GATv2Conv against PyG's layers with the same weights
    (outputs, attention, every gradient), which must agree to 1e-10."""
    import torch_geometric.nn as pyg_nn

    from gat_pyg import GATConv, GATv2Conv, kernels
    g = sorted_graph(*GRAPH_SPECS['random'])
    gen = torch.Generator().manual_seed(1)

    def r(*shape):
        return torch.randn(*shape, generator=gen, dtype=F64).requires_grad_()

    gat = [r(9, 2), r(9, 2), r(g.num_edges, 2), r(9, 2, 3)]
    gatv2 = [r(9, 2, 3), r(9, 2, 3), r(2, 3), r(g.num_edges, 2), r(6, 2)]
    x, att = r(7, 2, 3), r(2, 3)
    torch.manual_seed(3)
    out, alpha = kernels.gat_attention(*g.args(), *gat, 0.2, 0.3, True, message_dropout=0.2)
    results = [out, alpha, *torch.autograd.grad(out.square().sum() + alpha.sum(), gat)]
    out, alpha = kernels.gatv2_attention(*g.args(), *gatv2, gatv2[0], 0.2, 0.3, True,
                                         message_dropout=0.1)
    results += [out, alpha, *torch.autograd.grad(out.square().sum() + alpha.sum(), gatv2)]
    s = kernels.head_scores(x, att)
    results += [s, *torch.autograd.grad(s.square().sum(), [x, att])]
    dropped = kernels.feature_dropout(x, 0.4, True)
    results += [dropped, *torch.autograd.grad(dropped.square().sum(), [x])]
    edge_index = torch.randint(0, 9, (2, 30), generator=gen)
    edge_attr = torch.randn(30, 2, generator=gen, dtype=F64)
    for ours_cls, pyg_cls in ((GATConv, pyg_nn.GATConv), (GATv2Conv, pyg_nn.GATv2Conv)):
        torch.manual_seed(4)
        theirs = pyg_cls(5, 3, heads=2, edge_dim=2).double()
        ours = ours_cls(5, 3, heads=2, edge_dim=2, fast_path=True).double()
        ours.load_state_dict(theirs.state_dict())
        grads = []
        for layer in (ours, theirs):
            features = torch.randn(9, 5, generator=torch.Generator().manual_seed(5),
                                   dtype=F64).requires_grad_()
            out, (_, alpha) = layer(features, edge_index, edge_attr,
                                    return_attention_weights=True)
            loss = out.square().sum() + alpha.square().sum()
            names, params = zip(*sorted(layer.named_parameters()))
            grads.append([out, alpha, *torch.autograd.grad(loss, [features, *params])])
        for a, b in zip(*grads):
            torch.testing.assert_close(a, b, atol=1e-10, rtol=1e-10)
        results += grads[0]
    return [t.detach() for t in results]


OPERATORS = ('gat_forward', 'gat_backward', 'gatv2_forward', 'gatv2_backward',
             'attention_dropout', 'feature_dropout', 'head_scores', 'head_scores_backward')


def _dispatch_check() -> Dict[str, object]:
    """Runs :func:`_through_the_dispatcher` with the C++ kernels, then with the Triton ones
    serving the CPU (``gat_pyg.kernels.dispatch.use_backend``: how ``GAT_PYG_TRITON=1``
    registers them for CUDA): the same schemas, autograd and functions. Returns both results,
    and which operators the Triton kernels served."""
    from gat_pyg.kernels import dispatch
    from gat_pyg.kernels import triton as triton_backend
    before = _through_the_dispatcher()
    called = set()

    def counted(name, fn):
        def kernel(*args):
            called.add(name)
            return fn(*args)
        return kernel

    wrapped = {name: (counted(name, fn), dtypes)
               for name, (fn, dtypes) in triton_backend.kernels().items()}
    with dispatch.use_backend(triton_backend.BACKEND, 'cpu', wrapped):
        after = _through_the_dispatcher()
    return {'before': before, 'after': after, 'called': sorted(called)}


def install_stand_in_driver(arch: int):
    """Makes Triton compile for ``cuda:sm_<arch>`` without a GPU and not launch: launches
    become compile-only (``warmup``). Returns the list that collects (kernel, compiled)."""
    from triton.backends.compiler import GPUTarget
    from triton.backends.driver import DriverBase
    from triton.backends.nvidia.driver import ty_to_cpp
    from triton.runtime import jit
    from triton.runtime.driver import driver

    class StandIn(DriverBase):
        target = GPUTarget('cuda', arch, 32)

        @staticmethod
        def is_active():
            return True

        def get_current_target(self):
            return self.target

        def get_current_device(self):
            return 0

        def get_current_stream(self, device=None):
            return 0

        def get_active_torch_device(self):
            return torch.device('cpu')

        def map_python_to_cpp_type(self, ty):
            return ty_to_cpp(ty)

        def get_benchmarker(self):
            raise NotImplementedError

        def get_device_interface(self):
            raise NotImplementedError

    compiled = []
    run_original = jit.JITFunction.run

    def compile_only(self, *args, **kwargs):
        kwargs['warmup'] = True
        kernel = run_original(self, *args, **kwargs)
        compiled.append((self.fn.__name__, kernel))
        return kernel

    jit.JITFunction.run = compile_only
    driver.set_active(StandIn())
    return compiled


def _compile(path: str) -> None:
    assert os.environ.get('TRITON_INTERPRET') != '1'
    report = {'setup_error': None, 'compiled': [], 'errors': {}}
    try:
        compiled = install_stand_in_driver(int(os.environ.get('GAT_PYG_COMPILE_ARCH', '90')))
    except Exception:   # noqa: BLE001  (Triton's internals moved: the test skips)
        report['setup_error'] = traceback.format_exc()
        with open(path, 'w') as f:
            json.dump(report, f)
        return
    import gat_pyg.kernels     # noqa: F401
    from gat_pyg.kernels import triton as kernels
    for case in CASES:
        if case['graph'] in ('no_nodes', 'no_edges'):
            continue
        # float16 compiles as bfloat16 does (a float32 accumulator either way): a few cases.
        dtypes = [case['dtype']] + ([torch.bfloat16] if case['dtype'] == F32 else [])
        if case['name'] in FLOAT16_COMPILE_CASES:
            dtypes.append(torch.float16)
        for dtype in dtypes:
            name = f"{case['name']}:{dtype}"
            try:
                run(dict(case, dtype=dtype), kernels)   # outputs are garbage: nothing ran
            except Exception:   # noqa: BLE001
                report['errors'][name] = traceback.format_exc()
    report['compiled'] = sorted({name for name, kernel in compiled if kernel is not None})
    report['variants'] = len({id(kernel) for _, kernel in compiled})
    with open(path, 'w') as f:
        json.dump(report, f)


if __name__ == '__main__':
    mode, out_path = sys.argv[1], sys.argv[2]
    {'interpret': _interpret, 'compile': _compile}[mode](out_path)

r"""How an operator chooses its implementation: the one place that decides it.

Every primitive of the layers (attention, head scores, dropouts, sparse projection) is one
:class:`Operator`: a ``torch.library`` schema defined here, in Python, whether or not the C++
library is built; a fake kernel (shapes only, for ``torch.compile`` and ``torch.export``); a
pure-torch **reference** implementation, written with differentiable torch operations only;
and one kernel per *backend* and device, registered into the schema:

=============  ==========================  ========================================  =========
backend        device key                  source                                    dtypes
=============  ==========================  ========================================  =========
``native``     CPU                         C++/OpenMP (``gat_pyg/kernels/cpu``)      f32 f64 bf16
``triton``     CUDA (opt-in, see below)    Triton (``gat_pyg/kernels/triton``)       f32 f64 bf16 f16
``csr``        every other device          pure torch, ``torch.sparse`` CSR          f32 f64
                                           products (``gat_pyg/kernels/csr``)
=============  ==========================  ========================================  =========

PyTorch's dispatcher picks the kernel by the device of the tensors (``csr`` is registered as
``CompositeExplicitAutograd``: it serves every device that has no kernel of its own). The
reference runs instead, through :meth:`Operator.__call__`, wherever the device's kernel does
not take the dtype, and while a ``torch.func`` transform (``vmap``, ``grad``, ``jacrev``,
``jvp``), ``torch.jit.trace`` or forward-mode AD is active (:func:`reference_reason`): the
reference is made of torch operations, which those already understand. ``torch.compile`` and
``torch.export`` take the same route as eager code: the kernels appear in the graph as opaque
operators (their fake kernels give the shapes).

Autograd follows one rule per operator: backward calls the operator's ``*_backward`` operator,
which the dispatcher sends to the same backend. When the backward itself is being
differentiated (``create_graph=True``: gradient penalties, MAML, Hessian-vector products) it
returns the vector-Jacobian product of the reference instead, a differentiable function of the
inputs, so second derivatives are right on every backend; a layer built with
``fast_path=True`` refuses that by name instead. The rule is written here, once, as a
``torch.autograd.Function`` per operator (:func:`_autograd_function`), for the Python kernels
and under ``torch.compile``. A compiled backend may register the same rule itself, in C++, for
its device's Autograd key, because a Python autograd function costs ~40 us per call each way,
a tenth of a small graph's training step per operator: the ``native`` backend does
(``gat_pyg/kernels/cpu/autograd.h``), and its recorded backward calls the reference's
vector-Jacobian product as the operator ``gat_pyg::<op>_vjp``, defined here. Such a kernel is
recorded with ``autograd=True`` and eager calls go to it directly.

Adding a device is one more backend: kernels for the forward and backward operators of each
primitive, registered with :func:`register_kernel` (Python) or by a compiled library followed by
:func:`record_kernel`. :func:`use_backend` temporarily registers a backend's Python kernels for a
device (tests run the ``csr`` kernels on the CPU while the C++ ones are loaded, or the Triton
ones in Triton's interpreter).
"""
import contextlib
import threading
import warnings
from dataclasses import dataclass
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import torch
from torch import Tensor

NAMESPACE = 'gat_pyg'
LIBRARY = torch.library.Library(NAMESPACE, 'DEF')
"""The schemas of the package's operators (``torch.ops.gat_pyg.*``)."""
_IMPLEMENTATIONS = torch.library.Library(NAMESPACE, 'IMPL')
"""Python kernels registered for good (the ``csr`` backend, Triton on CUDA)."""

COMPOSITE = 'CompositeExplicitAutograd'
"""The dispatch key of a kernel that serves every device without a kernel of its own."""


# --- what is recording --------------------------------------------------------------------------

def _forward_ad_active() -> bool:
    # Private but long-standing: the dual level torch.autograd.forward_ad.dual_level() entered
    # (-1 outside). On upgrades check that it still exists (a test runs forward-mode AD).
    return torch.autograd.forward_ad._current_level >= 0


def _transform_name() -> str:
    # Private API (the functorch interpreter stack, TransformType.Vmap / Grad / Jvp /
    # Functionalize): only for the message; on upgrades check that it still answers.
    try:
        return str(torch._C._functorch.peek_interpreter_stack().key()).split('.')[-1].lower()
    except (AttributeError, RuntimeError):
        return 'vmap, grad or jvp'


def recording() -> Optional[str]:
    """What records the operations instead of only running them, if anything:
    ``'torch.compile'`` (also ``torch.export``), ``'a torch.func transform'`` (``vmap``,
    ``grad``, ``jacrev``, ``jvp``, ``hessian``) or ``'torch.jit.trace'``; ``None`` in plain
    eager code. While something records, nothing may branch on tensor values or keep tensors
    beyond the call (caches, value checks): the package's one test for it."""
    if torch.compiler.is_compiling():
        return 'torch.compile'
    if torch._C._are_functorch_transforms_active():
        return f'a torch.func transform ({_transform_name()})'
    if torch.jit.is_tracing():
        return 'torch.jit.trace'
    return None


def reference_reason() -> Optional[str]:
    """Why the operators run their pure-torch reference rather than a kernel in this call, if
    they must: a ``torch.func`` transform, ``torch.jit.trace`` or forward-mode AD is active.
    (``torch.compile`` is not a reason: it traces the kernels as operators.)"""
    why = recording()
    if why is not None and why != 'torch.compile':
        return why
    if _forward_ad_active():
        return 'forward-mode AD'
    return None


# --- kernels --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Kernel:
    """A backend's kernel of one operator on one device: its name, the dtypes it takes, and
    whether the backend registered the operator's autograd for the device itself (then eager
    calls that need gradients go straight to the operator)."""
    backend: str
    dtypes: Tuple[torch.dtype, ...]
    autograd: bool = False


_KERNELS: Dict[str, Dict[str, Kernel]] = {}
"""operator name -> device type ('cpu', 'cuda', ...; '*' for the composite kernel) -> kernel."""
_LOCK = threading.Lock()
_VERSION = [0]
"""Bumped by every change of the table: the operators' cached answers of kernel_for are then
stale."""


def record_kernel(name: str, device: str, backend: str, dtypes: Sequence[torch.dtype],
                  autograd: bool = False) -> None:
    """Records that ``backend``'s kernel of operator ``name`` serves ``device`` (a device type,
    or ``'*'`` for every device without one) for ``dtypes``: for kernels a compiled library
    registered itself (its ``TORCH_LIBRARY_IMPL``). ``autograd``: the library also registered
    the operator's autograd for the device, following the rule of the module docstring."""
    with _LOCK:
        _KERNELS.setdefault(name, {})[device] = Kernel(backend, tuple(dtypes), autograd)
        _VERSION[0] += 1


def register_kernel(name: str, device: str, backend: str, fn: Callable,
                    dtypes: Sequence[torch.dtype],
                    library: Optional[torch.library.Library] = None) -> None:
    """Registers the Python function ``fn`` as ``backend``'s kernel of operator ``name`` for
    ``device`` (``'*'``: every device without a kernel of its own) and records it."""
    key = COMPOSITE if device == '*' else device.upper()
    with warnings.catch_warnings():
        # torch warns once when a kernel replaces another (the C++ one): that is the point.
        warnings.filterwarnings('ignore', message='Warning only once for all operators')
        (library or _IMPLEMENTATIONS).impl(name, fn, key)
    record_kernel(name, device, backend, dtypes)


def _kernel(name: str, device: str, dtype: torch.dtype) -> Optional[Kernel]:
    kernels = _KERNELS.get(name, {})
    kernel = kernels.get(device, kernels.get('*'))
    return kernel if kernel is not None and dtype in kernel.dtypes else None


def kernel_for(name: str, device: str, dtype: torch.dtype) -> Optional[str]:
    """The backend whose kernel of operator ``name`` runs for a tensor of ``dtype`` on
    ``device`` (a device type or ``torch.device``), or ``None`` when the reference runs.

    The device's own kernel decides if it has one (the dispatcher sends the device's tensors
    there); otherwise the composite kernel, if it takes the dtype."""
    kernel = _kernel(name, getattr(device, 'type', device), dtype)
    return None if kernel is None else kernel.backend


def kernel_table() -> Dict[str, Dict[str, str]]:
    """``{operator: {device: 'backend (dtypes)'}}`` for every forward operator: what runs where
    (devices not listed, and dtypes not listed, run the reference)."""
    table = {}
    for name, kernels in sorted(_KERNELS.items()):
        if name in _OPERATORS and _OPERATORS[name].forward:
            table[name] = {device: f"{k.backend} ({', '.join(str(d)[6:] for d in k.dtypes)})"
                           for device, k in sorted(kernels.items())}
    return table


@contextlib.contextmanager
def use_backend(backend: str, device: str, kernels: Dict[str, Tuple[Callable, Sequence]]
                ) -> Iterator[None]:
    """Within the block, ``kernels`` (``{operator: (fn, dtypes)}``, a backend's Python kernels)
    serve ``device``, over whatever kernel it had; the previous ones are restored on exit (the
    dispatcher stacks registrations). Not thread-safe: for tests and set-up."""
    library = torch.library.Library(NAMESPACE, 'IMPL')
    with _LOCK:
        saved = {name: _KERNELS.get(name, {}).get(device) for name in kernels}
    try:
        for name, (fn, dtypes) in kernels.items():
            register_kernel(name, device, backend, fn, dtypes, library)
        yield
    finally:
        library._destroy()
        with _LOCK:
            for name, kernel in saved.items():
                if kernel is None:
                    _KERNELS[name].pop(device, None)
                else:
                    _KERNELS[name][device] = kernel
            _VERSION[0] += 1


# --- operators ------------------------------------------------------------------------------------

_OPERATORS: Dict[str, 'Operator'] = {}


class Operator:
    r"""One primitive: its schema, fake kernel, reference, and (for a differentiable forward
    operator) its autograd.

    Args:
        schema (str): ``name(args) -> outputs`` in ``torch.library`` syntax.
        fake (Callable): The fake kernel (shapes from shapes).
        reference (Callable, optional): The pure-torch implementation with the schema's
            arguments, differentiable by composition; ``None`` for a backward operator, which
            only runs as a kernel.
        like (int): The argument whose device and dtype choose the kernel.
        backward (Callable, optional): ``backward(args, saved_outputs, grads, needs, info)``
            -> one gradient (or ``None``) per argument, calling the backward operators;
            ``args`` holds the saved arguments (the others ``None``), ``info`` what
            ``context`` said. ``None``: not differentiable.
        save_inputs (sequence of int, optional): The arguments backward needs (default: all;
            the reference's vector-Jacobian product under ``create_graph`` needs all unless
            ``differentiable_backward`` is given).
        save_outputs (sequence of int): The outputs backward reads.
        differentiable_backward (Callable, optional): As ``backward``, differentiable (used
            under ``create_graph=True``); default: the reference's vector-Jacobian product.
        context (Callable, optional): ``context(args)`` -> what backward must know about the
            forward call beyond the saved tensors (e.g. which arguments were the same
            tensor), passed to ``backward`` as ``info``.
    """

    def __init__(self, schema: str, fake: Callable, reference: Optional[Callable] = None,
                 like: int = 0, backward: Optional[Callable] = None,
                 save_inputs: Optional[Sequence[int]] = None, save_outputs: Sequence[int] = (),
                 differentiable_backward: Optional[Callable] = None,
                 context: Optional[Callable] = None):
        self.name = schema.split('(', 1)[0]
        LIBRARY.define(schema)
        torch.library.register_fake(f'{NAMESPACE}::{self.name}', fake, lib=LIBRARY)
        self.op = getattr(getattr(torch.ops, NAMESPACE), self.name).default
        arguments = self.op._schema.arguments
        # Trailing arguments with defaults may be left out of a call; the references and the
        # autograd read every argument, so calls are completed with the schema's defaults.
        self._num_args = len(arguments)
        self._defaults = tuple(a.default_value for a in arguments)
        # Where the schema takes tensors (saved for backward) and floating ones (which may need
        # a gradient: the graph's indices and seeds never do).
        tensor_like = [str(a.type) in ('Tensor', 'Optional[Tensor]') for a in arguments]
        self._tensor_slots = tuple(i for i, t in enumerate(tensor_like) if t)
        self._scalar_slots = tuple(i for i, t in enumerate(tensor_like) if not t)
        self.reference = reference
        self.forward = reference is not None
        self.like = like
        self.backward = backward
        keep = range(len(arguments)) if save_inputs is None else save_inputs
        self._saved_slots = tuple(i for i in self._tensor_slots if i in keep)
        self.save_outputs = tuple(save_outputs)
        self.differentiable_backward = differentiable_backward or self._reference_vjp
        self.context = context
        self._function = _autograd_function(self) if backward is not None else None
        if backward is not None and differentiable_backward is None:
            self._define_vjp(schema)
        self._cache: Dict[tuple, Optional[Kernel]] = {}
        self._cache_version = -1
        _OPERATORS[self.name] = self

    def kernel(self, like: Tensor) -> Optional[Kernel]:
        """The kernel that runs for ``like`` (see :func:`kernel_for`); answers are cached
        until the kernel table changes."""
        # is_cpu is cheaper than building the device object, and the common case.
        key = ('cpu' if like.is_cpu else like.device.type, like.dtype)
        if torch.compiler.is_compiling():
            # A cache filled while tracing would be guarded on, and recompiled for once filled.
            return _kernel(self.name, *key)
        if self._cache_version != _VERSION[0]:
            self._cache = {}
            self._cache_version = _VERSION[0]
        try:
            return self._cache[key]
        except KeyError:
            kernel = self._cache[key] = _kernel(self.name, *key)
            return kernel

    def route(self, like: Tensor) -> Tuple[Optional[Kernel], str]:
        """``(kernel, why)``: the kernel this call runs, or ``None`` and why the reference
        runs instead."""
        why = reference_reason()
        if why is not None:
            return None, why
        kernel = self.kernel(like)
        if kernel is None:
            return None, f'no kernel takes {like.dtype} on {like.device.type}'
        return kernel, ''

    def __call__(self, *args, strict: Optional[str] = None):
        """Runs the operator. ``strict`` (a description such as ``'fast_path=True'``) makes a
        call that cannot run a kernel, or a kernel's backward asked for second derivatives,
        raise ``ValueError`` naming it instead of taking the reference."""
        if len(args) < self._num_args:
            args = args + self._defaults[len(args):]
        kernel, why = self.route(args[self.like])
        if kernel is None:
            if strict:
                raise ValueError(f'{strict}: no kernel can run {self.name} here ({why}); use '
                                 f'fast_path=None, which takes the pure-torch reference')
            return self.reference(*args)
        if torch.is_grad_enabled() and any(args[i] is not None and args[i].requires_grad
                                           for i in self._tensor_slots):
            if self.backward is None:
                # No kernel backward (sparse_dropout): the reference is differentiable.
                return self.reference(*args)
            if torch.compiler.is_compiling():
                args = _distinct(args)
            elif kernel.autograd:
                # The backend's own autograd (C++): the same rule, without the Python
                # function's cost. torch.compile traces the Python function, whose operators
                # it knows how to trace.
                outputs = self.op(*args)
                if strict:
                    _refuse_double_backward(outputs, strict, self.name)
                return outputs
            return self._function.apply(strict, *args)
        return self.op(*args)

    # autograd -------------------------------------------------------------------------------

    def _define_vjp(self, schema: str) -> None:
        """Defines ``gat_pyg::<name>_vjp(grads, needs, *args) -> Tensor[]``: the reference's
        vector-Jacobian product as an operator, for a backend's own autograd to call when its
        backward is recorded (C++ cannot call the Python reference otherwise). Its kernel is
        ``CompositeImplicitAutograd``: autograd records the torch operations it runs."""
        arguments = schema.split('(', 1)[1].rsplit(') ->', 1)[0]
        name = f'{self.name}_vjp'
        LIBRARY.define(f'{name}(Tensor?[] grads, bool[] needs, {arguments}) -> Tensor[]')
        LIBRARY.impl(name, self._vjp_kernel, 'CompositeImplicitAutograd')

    def _vjp_kernel(self, grads, needs, *args) -> List[Tensor]:
        """The gradients of the arguments ``needs`` flags, in order (zeros for one the
        outputs do not depend on)."""
        result = self._reference_vjp(list(args), [], list(grads), needs)
        return [torch.zeros_like(args[i]) if g is None else g
                for i, g in enumerate(result) if needs[i]]

    def setup_context(self, ctx, args: tuple, outputs) -> None:
        ctx.scalars = tuple(args[i] for i in self._scalar_slots)
        ctx.info = self.context(args) if self.context is not None else None
        outs = outputs if isinstance(outputs, tuple) else (outputs, )
        ctx.save_for_backward(*(args[i] for i in self._saved_slots),
                              *(outs[i] for i in self.save_outputs))

    def saved(self, ctx) -> Tuple[List, List[Tensor]]:
        """The forward call's arguments (those not saved: ``None``) and the saved outputs."""
        saved = ctx.saved_tensors
        args = [None] * self._num_args
        for i, value in zip(self._scalar_slots, ctx.scalars):
            args[i] = value
        for i, value in zip(self._saved_slots, saved):
            args[i] = value
        return args, list(saved[len(self._saved_slots):])

    def _reference_vjp(self, args, saved_outputs, grads, needs, info=None) -> tuple:
        """The reference's vector-Jacobian product, differentiable (``create_graph``)."""
        wanted = [i for i, need in enumerate(needs) if need]
        # Each wanted input enters as a view of itself: the gradient of a view counts only the
        # paths through that argument, where the tensor itself would also collect the paths
        # through other arguments computed from it (s_src from h_src), which autograd adds on
        # its own. The views stay connected, so the result is differentiable in the inputs.
        args = [a.view_as(a) if i in wanted else a for i, a in enumerate(args)]
        with torch.enable_grad():
            outputs = self.reference(*args)
            outputs = outputs if isinstance(outputs, tuple) else (outputs, )
            pairs = [(o, g) for o, g in zip(outputs, grads)
                     if g is not None and o.requires_grad]
            if not pairs or not wanted:
                return (None, ) * len(args)
            result = torch.autograd.grad([o for o, _ in pairs], [args[i] for i in wanted],
                                         [g for _, g in pairs], create_graph=True,
                                         allow_unused=True)
        out = [None] * len(args)
        for i, g in zip(wanted, result):
            out[i] = g
        return tuple(out)


def _distinct(args: tuple) -> tuple:
    """``args`` with a tensor passed twice replaced, the second time, by a view of itself:
    torch.compile cannot trace an autograd.Function given one tensor twice (GATv2Conv passes
    its source projection as x_l and h_src). Autograd sums the two gradients as usual; only
    the backward's shared buffer for them (a memory saving) is lost under torch.compile."""
    out = []
    for a in args:
        if isinstance(a, Tensor) and any(a is b for b in out):
            a = a.view_as(a)
        out.append(a)
    return tuple(out)


def _double_backward_refused(strict: str, name: str) -> str:
    return (f'{strict}: the kernels of {name} compute first derivatives only, and this '
            f'backward is being differentiated (create_graph=True: double backward); use '
            f'fast_path=None, which switches to the differentiable pure-torch reference for it')


def _refuse_double_backward(outputs, strict: str, name: str) -> None:
    """Makes the backward of a call into a backend's own autograd raise ``ValueError`` naming
    ``strict`` when it is recorded (what the Python function's backward checks itself)."""
    def refuse(grad_outputs):
        if torch.is_grad_enabled():
            raise ValueError(_double_backward_refused(strict, name))
    (outputs[0] if isinstance(outputs, tuple) else outputs).grad_fn.register_prehook(refuse)


def _autograd_function(operator: Operator) -> type:
    """The ``torch.autograd.Function`` of a kernel call of ``operator``: it records the
    backward, which runs the operator's backward kernels or, under ``create_graph=True``, a
    differentiable backward (see the module docstring). One class per operator, so that
    ``torch.compile`` sees the operator as a constant."""

    def forward(ctx, strict: Optional[str], *args):
        outputs = operator.op(*args)
        ctx.strict = strict
        # An unused output (alpha, usually) gets None, not a tensor of zeros.
        ctx.set_materialize_grads(False)
        operator.setup_context(ctx, args, outputs)
        return outputs

    def backward(ctx, *grads):
        args, saved_outputs = operator.saved(ctx)
        needs = ctx.needs_input_grad[1:]
        if torch.is_grad_enabled():
            # The backward is being recorded: a gradient of this gradient will be asked for.
            if ctx.strict:
                raise ValueError(_double_backward_refused(ctx.strict, operator.name))
            grads_in = operator.differentiable_backward(args, saved_outputs, grads, needs,
                                                        ctx.info)
        else:
            grads_in = operator.backward(args, saved_outputs, grads, needs, ctx.info)
        return (None, *grads_in)

    return type(f'{operator.name}_call', (torch.autograd.Function, ),
                {'forward': staticmethod(forward), 'backward': staticmethod(backward)})


def operator(name: str) -> Operator:
    """The :class:`Operator` registered under ``name``."""
    return _OPERATORS[name]

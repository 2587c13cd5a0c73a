"""The ``csr`` backend: the operators' kernels in pure torch on ``torch.sparse`` CSR products.

They serve every device that has no kernel of its own (registered as
``CompositeExplicitAutograd``): CUDA without Triton, the CPU without the C++ library. float32
and float64 only (torch's sparse CSR kernels have no half-precision versions); the reference
runs for the other dtypes. Only the operators whose reference would hold an ``E x H x C`` (or
``nnz x O``) tensor have one here; the dropouts and head scores run their reference, which is
already of that form.
"""
import functools

import torch

from gat_pyg.kernels.csr import attend_kernel, sparse_linear_kernel

BACKEND = 'csr'
DTYPES = (torch.float32, torch.float64)
KERNELS = {
    'gat_forward': attend_kernel.gat_forward,
    'gat_backward': attend_kernel.gat_backward,
    'gatv2_forward': attend_kernel.gatv2_forward,
    'gatv2_backward': attend_kernel.gatv2_backward,
    'sparse_linear': sparse_linear_kernel.sparse_linear,
    'sparse_linear_backward': sparse_linear_kernel.sparse_linear_backward,
}
"""operator name -> kernel."""


def _in_input_dtype(fn):
    """A kernel computes in its inputs' dtype: autocast (still on inside an operator's Python
    kernel) would cast the sparse products' operands to a half type, which torch's sparse CSR
    kernels do not take."""
    @functools.wraps(fn)
    def kernel(*args):
        device = next(a.device.type for a in args if isinstance(a, torch.Tensor))
        if not torch.is_autocast_enabled(device):
            return fn(*args)
        with torch.autocast(device, enabled=False):
            return fn(*args)
    return kernel


def kernels():
    """``{operator: (kernel, dtypes)}``, as :func:`gat_pyg.kernels.dispatch.use_backend`
    takes them."""
    return {name: (_in_input_dtype(fn), DTYPES) for name, fn in KERNELS.items()}

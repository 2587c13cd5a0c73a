r"""The sparse-feature projection ``X @ W^T`` on torch's sparse products (any device, f32/f64).

Forward is a CSR product. Backward needs ``X^T @ grad`` for the weight: the transpose of a CSR
matrix is the COO matrix with its row and column indices swapped, and torch's COO product needs
no sorted indices, so nothing is sorted or cached per call (input dropout may change the pattern
every epoch). The values' gradient is a sampled dense-dense product on ``X``'s pattern.
"""
import torch
from torch import Tensor
from torch_geometric.utils.sparse import index2ptr

from gat_pyg.kernels.csr.attend_kernel import _csr, _sddmm


def _crow(row: Tensor, num_rows: int) -> Tensor:
    return index2ptr(row.long(), num_rows).to(row.dtype)


def sparse_linear(row: Tensor, col: Tensor, values: Tensor, weight: Tensor,
                  num_rows: int) -> Tensor:
    return _csr(_crow(row, num_rows), col, values, (num_rows, weight.shape[1])) @ weight.t()


def sparse_linear_backward(grad_out: Tensor, row: Tensor, col: Tensor, values: Tensor,
                           weight: Tensor, output_mask) -> tuple:
    grad_values, grad_weight = values.new_empty(0), weight.new_empty(0)
    num_rows = grad_out.shape[0]
    if output_mask[0]:
        pattern = _csr(_crow(row, num_rows), col, values, (num_rows, weight.shape[1]))
        grad_values = _sddmm(pattern, grad_out.contiguous(), weight.t())
    if output_mask[1]:
        x_t = torch.sparse_coo_tensor(torch.stack([col.long(), row.long()]), values,
                                      (weight.shape[1], num_rows), check_invariants=False)
        grad_weight = torch.sparse.mm(x_t, grad_out.contiguous()).t().contiguous()
    return grad_values, grad_weight

r"""Label co-occurrence: the conditional probabilities that a label mask is built from."""
import torch
from torch import Tensor


def label_cooccurrence(labels: Tensor) -> Tensor:
    r"""Conditional co-occurrence matrix :math:`P_{ij} = P(\text{label } j \mid \text{label } i)`.

    .. math::
        P_{ij} = \frac{\#\{\text{samples with labels } i \text{ and } j\}}
                      {\#\{\text{samples with label } i\}}

    estimated from multi-hot training labels (ML-GCN's correlation matrix before binarisation).
    Row ``i`` is a target in :func:`~gat_pyg.mask_from_scores`' convention, so thresholding
    ``P`` lets label ``i`` attend to the labels that tend to appear with it. The diagonal is 1
    for every label seen at least once; a label never seen gets a zero row.

    Args:
        labels (Tensor): ``[S, L]`` multi-hot labels of ``S`` samples (bool or 0/1).

    Returns:
        ``float32`` ``[L, L]`` on the CPU.
    """
    if not isinstance(labels, Tensor):
        labels = torch.as_tensor(labels)
    if labels.dim() != 2:
        raise ValueError(f"labels: expected multi-hot labels [S, L], got shape "
                         f"{list(labels.shape)}")
    labels = labels.detach().cpu()
    if labels.dtype != torch.bool:
        if labels.numel() and bool(((labels != 0) & (labels != 1)).any()):
            raise ValueError("labels: expected multi-hot 0/1 (or bool) labels")
    y = labels.double()
    counts = y.t() @ y                              # counts[i, j]: samples with both i and j
    seen = counts.diagonal().clamp(min=1).unsqueeze(1)
    return (counts / seen).float()

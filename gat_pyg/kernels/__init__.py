"""Native (C++/OpenMP) fused attention kernels, registered as ``torch.ops.gat_pyg`` operators.

* :func:`available` / :func:`supports`: whether the library is loaded / takes a given tensor;
* :func:`instruction_set`: which compiled version of the kernels runs ('base' x86-64, 'avx2' or
  'avx512', chosen from the CPU; ``GAT_PYG_ISA`` caps it);
* :func:`gat_attention` / :func:`gatv2_attention`: autograd-aware fused attention
  (documented in :mod:`gat_pyg.kernels.attention`);
* :func:`feature_dropout`: dropout of a dense tensor from the kernels' hash (no random
  tensor; backward regenerates the mask);
* :func:`head_scores`: GAT's per-node, per-head scores ``<x[n, h, :], att[h, :]>``;
* :func:`sparse_linear` / :func:`sparse_dropout`: the product of sparse bag-of-words features
  with a dense weight (and its backward), and dropout of their stored entries
  (:mod:`gat_pyg.kernels.sparse`).

The library is built with the package when a C++ compiler and torch are present at install
time (see ``setup.py``). Set ``GAT_PYG_NATIVE=0`` to leave it unloaded (the layers then take
their pure-torch paths); :func:`load_error` says why it is not available. Whether it loaded is
logged once at debug level on the ``gat_pyg.kernels`` logger.
"""
from gat_pyg.kernels.attention import (SUPPORTED_DTYPES, available, feature_dropout,
                                       gat_attention, gatv2_attention, head_scores, supports)
from gat_pyg.kernels.library import instruction_set, load_error
from gat_pyg.kernels.sparse import sparse_dropout, sparse_linear

__all__ = [
    'SUPPORTED_DTYPES',
    'available',
    'supports',
    'load_error',
    'instruction_set',
    'gat_attention',
    'gatv2_attention',
    'feature_dropout',
    'head_scores',
    'sparse_linear',
    'sparse_dropout',
]

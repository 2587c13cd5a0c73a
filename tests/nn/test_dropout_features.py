"""dropout_features: dense, sparse COO and CSR inputs share one keep-mask semantics, the masks of
gat_pyg.kernels.hashing (the same on every backend and device)."""
import pytest
import torch

from gat_pyg import kernels
from gat_pyg.kernels import hashing
from gat_pyg.nn.functional import dropout_features


def _features(seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    x = torch.rand(30, 20, generator=generator)
    return x * (torch.rand(30, 20, generator=generator) < 0.2)   # ~20 % stored entries


def _seed(manual_seed: int) -> torch.Tensor:
    """The seed the operators draw after ``torch.manual_seed(manual_seed)``."""
    torch.manual_seed(manual_seed)
    return torch.randint(0, 2**62, (), dtype=torch.int64)


@pytest.mark.parametrize('backend', ['native', 'reference'])
def test_dense_is_inverted_dropout_with_the_hash_mask(backend):
    x = _features()
    keep = hashing.paired_keep_mask(_seed(3), 0.4, x.numel()).view(x.shape)
    torch.manual_seed(3)
    if backend == 'native':
        out = dropout_features(x, 0.4, True)
    else:
        with torch.autograd.forward_ad.dual_level():   # forward AD runs the references
            out = dropout_features(x, 0.4, True)
    torch.testing.assert_close(out, x * keep / 0.6)
    assert 0 < int(keep.sum()) < keep.numel()


@pytest.mark.parametrize('p', [0.3, 0.6])
def test_sparse_coo_equals_dense_dropout_with_the_same_mask(p):
    x = _features()
    sparse = x.to_sparse()
    torch.manual_seed(7)
    out = dropout_features(sparse, p, True)
    # Replay the mask: one keep/drop per stored value, in storage order.
    keep = hashing.keep_mask(_seed(7), p, sparse._nnz())
    row, col = sparse.indices()
    dense_mask = torch.zeros_like(x, dtype=torch.bool)
    dense_mask[row[keep], col[keep]] = True
    assert out.layout == torch.sparse_coo and out.is_coalesced()
    assert out._nnz() == int(keep.sum())            # dropped entries are not stored
    assert torch.allclose(out.to_dense(), x * dense_mask / (1 - p))


def test_sparse_csr_keeps_structure_and_scales():
    x = _features()
    csr = x.to_sparse_csr()
    out = dropout_features(csr, 0.5, True)
    assert out.layout == torch.sparse_csr
    assert torch.equal(out.crow_indices(), csr.crow_indices())
    assert torch.equal(out.col_indices(), csr.col_indices())
    kept = out.values() != 0
    assert 0 < int(kept.sum()) < csr.values().numel()
    assert torch.allclose(out.values()[kept], csr.values()[kept] * 2)


@pytest.mark.parametrize('layout', ['dense', 'coo', 'csr'])
def test_expectation_is_the_input(layout):
    x = _features(1)
    convert = {'dense': lambda t: t, 'coo': torch.Tensor.to_sparse,
               'csr': torch.Tensor.to_sparse_csr}[layout]
    torch.manual_seed(0)
    samples = 2000
    mean = sum(dropout_features(convert(x), 0.6, True).to_dense() for _ in range(samples))
    mean = mean / samples
    # Each stored value is kept with probability 0.4 and scaled by 1 / 0.4: unbiased, with a
    # standard error of sqrt(0.6 / 0.4 / samples) ~ 3 % of the value.
    assert torch.allclose(mean, x, atol=0.1 * float(x.max()), rtol=0)
    assert torch.equal(mean == 0, x == 0)


@pytest.mark.parametrize('layout', ['dense', 'coo', 'csr'])
def test_identity_when_not_training_or_p_zero_and_zeros_at_p_one(layout):
    x = _features()
    x = {'dense': x, 'coo': x.to_sparse(), 'csr': x.to_sparse_csr()}[layout]
    assert dropout_features(x, 0.6, False) is x
    assert dropout_features(x, 0.0, True) is x
    dropped = dropout_features(x, 1.0, True)
    assert dropped.layout == x.layout and dropped.shape == x.shape
    assert not dropped.to_dense().any()


def test_rejects_bad_probability_and_layout():
    with pytest.raises(ValueError, match=r'p: expected a probability in \[0, 1\]'):
        dropout_features(torch.ones(2, 2), 1.5, True)
    with pytest.raises(ValueError, match='layout'):
        dropout_features(torch.ones(2, 2).to_sparse_csc(), 0.5, True)


def test_the_operators_masks_are_used():
    """Dense features go through kernels.feature_dropout and COO features through
    kernels.sparse_dropout (the same seed gives the same mask)."""
    x = _features()
    torch.manual_seed(4)
    out = dropout_features(x, 0.4, True)
    torch.manual_seed(4)
    assert torch.equal(out, kernels.feature_dropout(x, 0.4, True))
    sparse = x.to_sparse()
    torch.manual_seed(4)
    out = dropout_features(sparse, 0.4, True)
    torch.manual_seed(4)
    indices, values = kernels.sparse_dropout(sparse.indices(), sparse.values(), 0.4)
    assert torch.equal(out.indices(), indices) and torch.equal(out.values(), values)

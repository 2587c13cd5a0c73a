"""embed_tsne: shape, determinism, and that well separated clusters stay separated."""
import numpy as np
import pytest
import torch

from gat_pyg.analysis import embed_tsne


def blobs(per_cluster: int = 20, dims: int = 60):
    rng = np.random.default_rng(0)
    centres = np.zeros((2, dims))
    centres[1, :] = 10.0
    points = np.concatenate([c + rng.normal(size=(per_cluster, dims)) for c in centres])
    return torch.from_numpy(points).float(), np.repeat([0, 1], per_cluster)


def test_two_clusters_stay_apart_and_a_seed_repeats_the_map():
    h, labels = blobs()
    result = embed_tsne(h, seed=3, max_iter=500, perplexity=10)
    assert result.coords.shape == (40, 2) and result.coords.dtype == np.float32
    assert np.isfinite(result.coords).all() and result.seed == 3
    # the clusters are 77 apart against a spread of 11 within: in the map, nearly every
    # point's nearest neighbour is of its own cluster
    distance = np.linalg.norm(result.coords[:, None] - result.coords[None], axis=-1)
    np.fill_diagonal(distance, np.inf)
    assert (labels[distance.argmin(axis=1)] == labels).mean() >= 0.95
    again = embed_tsne(h.numpy(), seed=3, max_iter=500, perplexity=10)
    np.testing.assert_allclose(again.coords, result.coords, rtol=1e-5, atol=1e-5)


def test_wide_inputs_go_through_pca_first():
    h, _ = blobs(per_cluster=30, dims=80)                 # 60 points, 80 > 50 dimensions
    assert embed_tsne(h, seed=0, max_iter=250).coords.shape == (60, 2)


def test_tiny_and_one_dimensional_inputs():
    # perplexity is lowered below N, and 1-D input falls back to random initialisation
    result = embed_tsne(torch.arange(5.0).unsqueeze(-1), seed=0, max_iter=250)
    assert result.coords.shape == (5, 2)


@pytest.mark.parametrize('h, kwargs, match', [
    (torch.zeros(5), {}, r'h: expected embeddings \[N, D\] with N >= 2'),
    (torch.zeros(1, 3), {}, 'N >= 2'),
    (torch.tensor([[0.0, float('nan')], [1.0, 2.0]]), {}, 'NaN or inf'),
    (torch.zeros(4, 3), {'seed': 1.5}, 'seed: expected an integer'),
])
def test_embed_tsne_errors(h, kwargs, match):
    with pytest.raises(ValueError, match=match):
        embed_tsne(h, **kwargs)

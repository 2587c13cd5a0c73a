"""Two-dimensional t-SNE maps of node embeddings (scikit-learn)."""
from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch


@dataclass
class Embedding2D:
    """A 2-D map of ``N`` points.

    Attributes:
        coords (numpy.ndarray): ``[N, 2]`` positions (``float32``).
        seed (int): The random state of the t-SNE run, so a map can be redrawn exactly.
    """
    coords: np.ndarray
    seed: int


def embed_tsne(h, seed: int = 0, perplexity: float = 30.0, max_iter: int = 1000,
               pca_dims: int = 50, num_threads: Optional[int] = 1) -> Embedding2D:
    r"""t-SNE of node embeddings ``h`` ``[N, D]`` into two dimensions.

    Runs :class:`sklearn.manifold.TSNE` (PCA initialisation, ``learning_rate='auto'``), after a
    PCA to ``pca_dims`` dimensions when ``D`` is larger: the usual way to keep t-SNE quick on
    bag-of-words inputs (CiteSeer has 3703 features), and what the t-SNE authors recommend.

    Args:
        h: ``[N, D]`` embeddings (tensor or array), ``N >= 2``.
        seed (int, optional): Random state (PCA and t-SNE). (default: ``0``)
        perplexity (float, optional): t-SNE perplexity, reduced to ``(N - 1) / 3`` for tiny
            ``N`` since scikit-learn requires ``perplexity < N``. (default: ``30.0``)
        max_iter (int, optional): Optimisation steps (scikit-learn's minimum is 250).
            (default: ``1000``)
        pca_dims (int, optional): Dimension of the PCA before t-SNE; ``0`` for none.
            (default: ``50``)
        num_threads (int, optional): OpenMP / BLAS threads for the run; ``None`` keeps the
            libraries' defaults. One thread is the default because t-SNE of a few thousand
            points is quick on one core, while threads that spin-wait on busy shared cores
            made it 5-7x slower on a loaded 2-core machine. (default: ``1``)
    """
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE
    from threadpoolctl import threadpool_limits     # a dependency of scikit-learn

    if isinstance(h, torch.Tensor):
        h = h.detach().cpu().numpy()
    h = np.asarray(h, dtype=np.float32)
    if h.ndim != 2 or h.shape[0] < 2:
        raise ValueError(f"h: expected embeddings [N, D] with N >= 2, got shape "
                         f"{list(h.shape)}")
    if not np.isfinite(h).all():
        raise ValueError("h: contains NaN or inf")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"seed: expected an integer, got {seed!r}")
    perplexity = min(float(perplexity), (h.shape[0] - 1) / 3)
    # PCA initialisation needs two input dimensions; it makes runs more stable where possible.
    init = 'pca' if h.shape[1] >= 2 else 'random'
    with threadpool_limits(limits=num_threads):
        if pca_dims and h.shape[1] > pca_dims and h.shape[0] > pca_dims:
            h = PCA(n_components=pca_dims, random_state=seed).fit_transform(h)
        tsne = TSNE(n_components=2, perplexity=perplexity, init=init, learning_rate='auto',
                    max_iter=int(max_iter), random_state=int(seed))
        coords = tsne.fit_transform(h)
    return Embedding2D(coords=coords.astype(np.float32), seed=int(seed))

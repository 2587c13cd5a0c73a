"""PNG figures of the analyses, drawn with matplotlib's Agg canvas.

Every helper builds its own :class:`matplotlib.figure.Figure` on a ``FigureCanvasAgg`` instead of
going through ``pyplot``: no global figure state and no backend switch, so the helpers work the
same in a script, in CI without a display and inside a notebook (which shows the PNG with
``IPython.display.Image(path)``). Each takes the analysis result (or a ``{name: result}`` mapping
to compare several side by side), writes ``path`` (creating its folder) and returns it.
Figures are saved at a modest ``dpi`` so that committed notebooks and docs stay small.
"""
from pathlib import Path
from typing import Dict, Mapping, Optional, Sequence, Union

import numpy as np
import torch

from gat_pyg.analysis.degree import AccuracyByDegree, DegreeDistribution
from gat_pyg.analysis.embedding import Embedding2D
from gat_pyg.analysis.entropy import AttentionEntropy

PathLike = Union[str, Path]
DPI = 90


def _figure(ncols: int = 1, width: float = 4.8, height: float = 3.6):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width * ncols, height), layout='constrained')
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, ncols, squeeze=False)[0]
    return fig, list(axes)


def _save(fig, path: PathLike, dpi: int) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    return path


def _named(result, kind, argument: str = 'result') -> Dict[str, object]:
    """``result`` or ``{name: result}`` -> ``{name: result}``, each of type ``kind``."""
    named = dict(result) if isinstance(result, Mapping) else {'': result}
    if not named:
        raise ValueError(f"{argument}: expected a {kind.__name__} or a non-empty mapping of them")
    for name, value in named.items():
        if not isinstance(value, kind):
            where = f" (entry {name!r})" if name else ""
            raise TypeError(f"{argument}: expected a {kind.__name__}{where}, got "
                            f"{type(value).__name__}")
    return named


def plot_degree_distribution(result: DegreeDistribution, path: PathLike,
                             title: Optional[str] = None, dpi: int = DPI) -> Path:
    """Bar chart of the number of nodes per in-degree, on a log scale (degrees are heavy-tailed)."""
    result = _named(result, DegreeDistribution)['']
    fig, (ax, ) = _figure()
    degrees = np.arange(result.counts.numel())
    counts = result.counts.numpy()
    keep = counts > 0
    ax.bar(degrees[keep], counts[keep], width=0.9, color='tab:blue')
    ax.set_yscale('log')
    ax.set_xlabel('in-degree')
    ax.set_ylabel('nodes')
    ax.set_title(title or f'{result.num_nodes} nodes, mean degree {result.mean_degree:.2f}, '
                          f'{result.num_isolated} isolated', fontsize=9)
    return _save(fig, path, dpi)


def plot_accuracy_by_degree(result: Union[AccuracyByDegree, Mapping[str, AccuracyByDegree]],
                            path: PathLike, title: Optional[str] = None,
                            dpi: int = DPI) -> Path:
    """Grouped bars: accuracy per degree bin, one bar per model; tick labels give node counts."""
    named = _named(result, AccuracyByDegree)
    first = next(iter(named.values()))
    for name, value in named.items():
        if not torch.equal(value.edges, first.edges):
            raise ValueError(f"result: every entry must use the same bins to share an axis; "
                             f"{name!r} has edges {value.edges.tolist()}, the first "
                             f"{first.edges.tolist()}")
    fig, (ax, ) = _figure(width=max(4.8, 0.6 * len(first.labels) * max(1, len(named) / 2)))
    positions = np.arange(len(first.labels))
    width = 0.8 / len(named)
    for k, (name, value) in enumerate(named.items()):
        accuracy = np.nan_to_num(value.accuracy.numpy(), nan=0.0)
        ax.bar(positions + (k - (len(named) - 1) / 2) * width, 100 * accuracy, width,
               label=name or None)
    ax.set_xticks(positions, [f'{label}\nn={int(n)}' for label, n in
                              zip(first.labels, first.count)], fontsize=8)
    ax.set_xlabel('degree')
    ax.set_ylabel('accuracy (%)')
    ax.set_ylim(0, 100)
    if len(named) > 1 or '' not in named:
        ax.legend(fontsize=8, loc='lower right')
    if title:
        ax.set_title(title, fontsize=9)
    return _save(fig, path, dpi)


def plot_attention_entropy(result: Union[AttentionEntropy, Mapping[str, AttentionEntropy]],
                           path: PathLike, bins: int = 30, dpi: int = DPI) -> Path:
    """Per entry, histograms of the learnt attention entropy (all heads) and of uniform attention.

    Only nodes with at least one incoming edge are counted; both histograms share their bins, so
    a learnt histogram shifted to the left of the uniform one means sharper than averaging.
    """
    named = _named(result, AttentionEntropy)
    fig, axes = _figure(ncols=len(named), width=4.2)
    for ax, (name, value) in zip(axes, named.items()):
        has = value.degree > 0
        learnt = value.entropy[has].flatten().numpy()
        uniform = value.uniform[has].numpy()
        top = max(float(uniform.max()) if uniform.size else 1.0,
                  float(learnt.max()) if learnt.size else 1.0, 1e-6)
        edges = np.linspace(0.0, top, bins + 1)
        # density: the learnt histogram pools H heads per node, the uniform one has one entry.
        ax.hist(uniform, bins=edges, density=True, alpha=0.5, label='uniform', color='tab:gray')
        ax.hist(learnt, bins=edges, density=True, alpha=0.6, label='attention',
                color='tab:orange')
        summary = value.summary()
        ax.set_title(f"{name + ': ' if name else ''}mean {summary['entropy']:.3f} vs "
                     f"uniform {summary['uniform']:.3f}", fontsize=9)
        ax.set_xlabel('entropy of incoming attention (nats)')
        ax.set_ylabel('density')
        ax.legend(fontsize=8)
    return _save(fig, path, dpi)


def plot_tsne(result: Union[Embedding2D, Mapping[str, Embedding2D]], path: PathLike,
              labels=None, dpi: int = DPI, point_size: float = 4.0) -> Path:
    """Scatter of each 2-D map, side by side, coloured by ``labels`` (e.g. the classes) if given."""
    named = _named(result, Embedding2D)
    if labels is not None:
        labels = labels.detach().cpu().numpy() if isinstance(labels, torch.Tensor) \
            else np.asarray(labels)
        for name, value in named.items():
            if labels.shape != (value.coords.shape[0], ):
                raise ValueError(f"labels: expected one label per point, [{value.coords.shape[0]}]"
                                 f", got shape {list(labels.shape)}")
    fig, axes = _figure(ncols=len(named), width=4.0, height=4.0)
    for ax, (name, value) in zip(axes, named.items()):
        ax.scatter(value.coords[:, 0], value.coords[:, 1], s=point_size, c=labels,
                   cmap='tab10' if labels is not None else None, linewidths=0)
        ax.set_xticks([])
        ax.set_yticks([])
        if name:
            ax.set_title(name, fontsize=9)
    return _save(fig, path, dpi)


def plot_label_matrix(matrix, path: PathLike, names: Optional[Sequence[str]] = None,
                      title: Optional[str] = None, dpi: int = DPI,
                      vmax: Optional[float] = None) -> Path:
    """Heatmap(s) of ``[L, L]`` label matrices (rows targets, columns sources), e.g. ``P(j | i)``
    or mean attention weights; pass ``{title: matrix}`` for several side by side."""
    named = dict(matrix) if isinstance(matrix, Mapping) else {title or '': matrix}
    arrays = {}
    for name, value in named.items():
        value = value.detach().cpu().numpy() if isinstance(value, torch.Tensor) \
            else np.asarray(value, dtype=float)
        if value.ndim != 2 or value.shape[0] != value.shape[1]:
            raise ValueError(f"matrix: expected a square [L, L] matrix, got shape "
                             f"{list(value.shape)}")
        arrays[name] = value
    size = next(iter(arrays.values())).shape[0]
    if names is not None and len(names) != size:
        raise ValueError(f"names: expected {size} label names, got {len(names)}")
    fig, axes = _figure(ncols=len(arrays), width=4.4, height=3.9)
    for ax, (name, value) in zip(axes, arrays.items()):
        image = ax.imshow(value, cmap='viridis', vmin=0.0, vmax=vmax)
        fig.colorbar(image, ax=ax, shrink=0.8)
        ax.set_xlabel('source label j')
        ax.set_ylabel('target label i')
        if names is not None:
            ax.set_xticks(range(size), names, rotation=90, fontsize=7)
            ax.set_yticks(range(size), names, fontsize=7)
        if name:
            ax.set_title(name, fontsize=9)
    return _save(fig, path, dpi)

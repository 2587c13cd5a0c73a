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


def _figure(ncols: int = 1, width: float = 4.8, height: float = 3.6, nrows: int = 1):
    """A figure of ``nrows x ncols`` panels of ``width x height`` inches; its axes in row
    order."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width * ncols, height * nrows), layout='constrained')
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False).flatten()
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
        # above the bars: the low-degree bins on the left rarely reach the top
        ax.set_ylim(0, 115)
        ax.set_yticks(range(0, 101, 20))
        ax.legend(fontsize=8, loc='upper left', ncols=len(named), frameon=False)
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
              labels=None, dpi: int = DPI, point_size: float = 6.0, ncols: Optional[int] = None,
              class_names: Optional[Sequence[str]] = None) -> Path:
    """Scatter of each 2-D map, coloured by ``labels`` (e.g. the classes) if given, with one
    legend entry per class.

    Args:
        result: A map or ``{title: map}``; several maps are laid out in a grid of ``ncols``
            columns (default: 2 for 4 maps, else all in one row).
        labels: One integer label per point, ``[N]``. (default: one colour)
        point_size (float): Marker area in points^2. (default: ``6.0``)
        class_names: Legend names of labels ``0, 1, ...`` (default: ``class 0``, ...).
    """
    named = _named(result, Embedding2D)
    if labels is not None:
        labels = labels.detach().cpu().numpy() if isinstance(labels, torch.Tensor) \
            else np.asarray(labels)
        for name, value in named.items():
            if labels.shape != (value.coords.shape[0], ):
                raise ValueError(f"labels: expected one label per point, [{value.coords.shape[0]}]"
                                 f", got shape {list(labels.shape)}")
    if ncols is None:
        ncols = 2 if len(named) == 4 else len(named)
    if ncols < 1:
        raise ValueError(f"ncols: expected an integer >= 1, got {ncols!r}")
    nrows = -(-len(named) // ncols)
    fig, axes = _figure(ncols=ncols, nrows=nrows, width=4.2, height=4.2)
    classes = np.unique(labels) if labels is not None else []
    if class_names is not None and len(class_names) < len(classes):
        raise ValueError(f"class_names: expected a name for each of the {len(classes)} labels, "
                         f"got {len(class_names)}")
    for ax, (name, value) in zip(axes, named.items()):
        if labels is None:
            ax.scatter(value.coords[:, 0], value.coords[:, 1], s=point_size, linewidths=0)
        for k, label in enumerate(classes):      # one call per class: one legend entry each
            at = labels == label
            ax.scatter(value.coords[at, 0], value.coords[at, 1], s=point_size, linewidths=0,
                       color=f'C{k % 10}', label=class_names[int(label)] if class_names
                       else f'class {label}')
        ax.set_xticks([])
        ax.set_yticks([])
        if name:
            ax.set_title(name, fontsize=11)
    for ax in axes[len(named):]:
        ax.set_visible(False)
    if len(classes):
        handles, names = axes[0].get_legend_handles_labels()
        fig.legend(handles, names, loc='outside lower center', ncols=min(len(classes), 8),
                   fontsize=10, markerscale=2.5, frameon=False)
    return _save(fig, path, dpi)


def plot_heatmap(matrix, path: PathLike, names: Optional[Sequence[str]] = None,
                 title: Optional[str] = None, dpi: int = DPI, vmax: Optional[float] = None,
                 xlabel: str = 'source j', ylabel: str = 'target i',
                 annotate: bool = False) -> Path:
    """Heatmap(s) of square ``[N, N]`` pair matrices, rows targets and columns sources: a label
    co-occurrence ``P(j | i)``, a mask, mean attention weights. Pass ``{title: matrix}`` to draw
    several side by side (on one colour scale if ``vmax`` is given). ``NaN`` entries are left
    blank (e.g. pairs without an edge); ``annotate`` writes each value in its cell."""
    named = dict(matrix) if isinstance(matrix, Mapping) else {title or '': matrix}
    arrays = {}
    for name, value in named.items():
        value = value.detach().cpu().double().numpy() if isinstance(value, torch.Tensor) \
            else np.asarray(value, dtype=float)
        if value.ndim != 2 or value.shape[0] != value.shape[1]:
            raise ValueError(f"matrix: expected a square [N, N] matrix, got shape "
                             f"{list(value.shape)}")
        arrays[name] = value
    size = next(iter(arrays.values())).shape[0]
    if any(value.shape[0] != size for value in arrays.values()):
        raise ValueError("matrix: every matrix must have the same size")
    if names is not None and len(names) != size:
        raise ValueError(f"names: expected {size} names, got {len(names)}")
    fig, axes = _figure(ncols=len(arrays), width=4.4, height=3.9)
    for ax, (name, value) in zip(axes, arrays.items()):
        image = ax.imshow(value, cmap='viridis', vmin=0.0, vmax=vmax)
        fig.colorbar(image, ax=ax, shrink=0.8)
        if annotate:
            top = vmax if vmax is not None else np.nanmax(value)
            for (i, j), v in np.ndenumerate(value):
                if not np.isnan(v):
                    ax.text(j, i, f'{v:.2f}', ha='center', va='center', fontsize=8,
                            color='black' if v > 0.6 * top else 'white')
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        if names is not None:
            ax.set_xticks(range(size), names, rotation=90, fontsize=7)
            ax.set_yticks(range(size), names, fontsize=7)
        if name:
            ax.set_title(name, fontsize=9)
    return _save(fig, path, dpi)


def plot_training_curves(curves: Mapping[str, object], path: PathLike, dpi: int = DPI) -> Path:
    """Loss (training dotted, validation solid) and validation accuracy per epoch.

    Args:
        curves: ``{name: metrics}``, ``metrics`` being :func:`read_metrics`' dict (or a run
            folder / ``metrics.csv`` path), or a list of them (seeds: thin lines of one colour).
        path: The PNG to write.
    """
    from gat_pyg.analysis.curves import read_metrics

    if not isinstance(curves, Mapping) or not curves:
        raise ValueError("curves: expected a non-empty mapping {name: metrics or [metrics]}")
    fig, (loss_ax, acc_ax) = _figure(ncols=2, width=4.4)
    for k, (name, runs) in enumerate(curves.items()):
        runs = runs if isinstance(runs, (list, tuple)) else [runs]
        colour = f'C{k}'
        for s, run in enumerate(runs):
            run = run if isinstance(run, Mapping) else read_metrics(run)
            acc = next(key for key in run if key.startswith('val_') and key != 'val_loss')
            width = 1.2 if len(runs) == 1 else 0.7
            label = name if s == 0 else None
            loss_ax.plot(run['epoch'], run['train_loss'], ':', color=colour, lw=width)
            loss_ax.plot(run['epoch'], run['val_loss'], '-', color=colour, lw=width, label=label)
            acc_ax.plot(run['epoch'], 100 * run[acc], '-', color=colour, lw=width, label=label)
    loss_ax.set_xlabel('epoch')
    loss_ax.set_ylabel('loss (train dotted, validation solid)')
    acc_ax.set_xlabel('epoch')
    acc_ax.set_ylabel('validation accuracy (%)')
    loss_ax.legend(fontsize=8)
    acc_ax.legend(fontsize=8, loc='lower right')
    return _save(fig, path, dpi)


def plot_results_vs_paper(rows: Sequence[object], path: PathLike, dpi: int = DPI) -> Path:
    """Bars of measured test accuracy (mean ± std over seeds) beside the GAT paper's numbers.

    Args:
        rows: :class:`gat_pyg.train.ResultRow` objects or dicts with ``dataset``, ``model``,
            ``mean``, ``std`` and ``paper`` (fractions; ``paper`` may be ``None``), e.g. the
            ``rows`` of a reproduction's ``results.json``.
        path: The PNG to write.
    """
    rows = [row if isinstance(row, Mapping) else vars(row) for row in rows]
    if not rows:
        raise ValueError("rows: expected at least one result row")
    for row in rows:
        missing = {'dataset', 'model', 'mean', 'std', 'paper'} - set(row)
        if missing:
            raise ValueError(f"rows: each row needs dataset, model, mean, std and paper; "
                             f"missing {sorted(missing)}")
    fig, (ax, ) = _figure(width=max(4.8, 0.75 * len(rows)))
    positions = np.arange(len(rows))
    ours = [100 * row['mean'] for row in rows]
    spread = [100 * row['std'] for row in rows]
    ax.bar(positions - 0.2, ours, 0.4, yerr=spread, capsize=3, label='measured (mean ± std)',
           color='tab:blue')
    paper = [100 * row['paper'] if row['paper'] is not None else np.nan for row in rows]
    ax.bar(positions + 0.2, paper, 0.4, label='paper', color='tab:gray')
    for x, value, std in zip(positions, ours, spread):
        # above the error bar's cap, so the bar never crosses the number
        ax.annotate(f'{value:.1f}', (x - 0.2, value + std), ha='center', va='bottom',
                    fontsize=7, xytext=(0, 3), textcoords='offset points')
    ax.set_xticks(positions, [f"{row['model']}\n{row['dataset']}" for row in rows], fontsize=8)
    ax.set_ylabel('test accuracy (%)')
    ax.set_ylim(0, 100)
    # above the axes: inside, it would cover a group of bars
    ax.legend(fontsize=8, loc='lower center', bbox_to_anchor=(0.5, 1.0), ncols=2,
              frameon=False)
    return _save(fig, path, dpi)

"""Analyses of graphs, predictions, attention and training runs, each with a PNG plotting helper.

* :func:`degree_distribution` / :func:`plot_degree_distribution`: in-degrees of a graph;
* :func:`accuracy_by_degree` / :func:`plot_accuracy_by_degree`: accuracy per degree bin;
* :func:`attention_entropy` / :func:`plot_attention_entropy`: entropy of each node's incoming
  attention against uniform attention over the same neighbours;
* :func:`embed_tsne` / :func:`plot_tsne`: 2-D t-SNE maps of embeddings;
* :func:`label_cooccurrence` / :func:`plot_heatmap`: ``P(label j | label i)`` (the masked
  layer's mask source) and heatmaps of pair matrices such as mean attention weights;
* :func:`probe_model`: a model's per-layer outputs (hidden embeddings) and attention weights;
* :func:`read_metrics` / :func:`plot_training_curves`: a run's per-epoch metrics;
  :func:`plot_results_vs_paper`: a reproduction's table beside the paper's numbers;
* :func:`notebook_settings`: small / full mode, data mirror and output folders of the notebooks.

The compute functions return dataclasses of CPU tensors (numpy arrays for t-SNE maps and
metrics); the plotting helpers need matplotlib (the ``notebooks`` extra), ``embed_tsne``
scikit-learn.
"""
from gat_pyg.analysis.cooccurrence import label_cooccurrence
from gat_pyg.analysis.curves import read_metrics
from gat_pyg.analysis.degree import (DEFAULT_DEGREE_BINS, AccuracyByDegree, DegreeDistribution,
                                     accuracy_by_degree, degree_distribution)
from gat_pyg.analysis.embedding import Embedding2D, embed_tsne
from gat_pyg.analysis.entropy import AttentionEntropy, attention_entropy
from gat_pyg.analysis.notebook import NotebookSettings, notebook_settings
from gat_pyg.analysis.plots import (plot_accuracy_by_degree, plot_attention_entropy,
                                    plot_degree_distribution, plot_heatmap,
                                    plot_results_vs_paper, plot_training_curves, plot_tsne)
from gat_pyg.analysis.probe import ModelProbe, probe_model

__all__ = [
    'degree_distribution',
    'DegreeDistribution',
    'accuracy_by_degree',
    'AccuracyByDegree',
    'DEFAULT_DEGREE_BINS',
    'attention_entropy',
    'AttentionEntropy',
    'embed_tsne',
    'Embedding2D',
    'label_cooccurrence',
    'probe_model',
    'ModelProbe',
    'read_metrics',
    'notebook_settings',
    'NotebookSettings',
    'plot_degree_distribution',
    'plot_accuracy_by_degree',
    'plot_attention_entropy',
    'plot_tsne',
    'plot_heatmap',
    'plot_training_curves',
    'plot_results_vs_paper',
]

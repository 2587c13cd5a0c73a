"""Analyses of graphs, predictions and attention, each with a PNG plotting helper.

* :func:`degree_distribution` / :func:`plot_degree_distribution`: in-degrees of a graph;
* :func:`accuracy_by_degree` / :func:`plot_accuracy_by_degree`: accuracy per degree bin;
* :func:`attention_entropy` / :func:`plot_attention_entropy`: entropy of each node's incoming
  attention against uniform attention over the same neighbours;
* :func:`embed_tsne` / :func:`plot_tsne`: 2-D t-SNE maps of embeddings;
* :func:`label_cooccurrence` / :func:`plot_label_matrix`: ``P(label j | label i)`` (the
  masked layer's mask source) and heatmaps of label-by-label matrices such as mean attention.

The compute functions return dataclasses of CPU tensors (numpy arrays for t-SNE maps); the
plotting helpers need matplotlib (the ``notebooks`` extra), ``embed_tsne`` scikit-learn.
"""
from gat_pyg.analysis.cooccurrence import label_cooccurrence
from gat_pyg.analysis.degree import (DEFAULT_DEGREE_BINS, AccuracyByDegree, DegreeDistribution,
                                     accuracy_by_degree, degree_distribution)
from gat_pyg.analysis.embedding import Embedding2D, embed_tsne
from gat_pyg.analysis.entropy import AttentionEntropy, attention_entropy
from gat_pyg.analysis.plots import (plot_accuracy_by_degree, plot_attention_entropy,
                                    plot_degree_distribution, plot_label_matrix, plot_tsne)

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
    'plot_degree_distribution',
    'plot_accuracy_by_degree',
    'plot_attention_entropy',
    'plot_tsne',
    'plot_label_matrix',
]

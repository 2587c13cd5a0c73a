"""Every plotting helper writes a non-empty PNG at the given path and returns that path."""
import math

import numpy as np
import pytest
import torch

from gat_pyg.analysis import (AccuracyByDegree, Embedding2D, accuracy_by_degree,
                              attention_entropy, degree_distribution, label_cooccurrence,
                              plot_accuracy_by_degree, plot_attention_entropy,
                              plot_degree_distribution, plot_heatmap, plot_tsne)

PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'
EDGES = torch.tensor([[0, 0, 0, 1, 2, 3, 1, 2], [1, 2, 3, 0, 0, 0, 2, 1]])


def assert_png(path, expected):
    assert path == expected
    data = expected.read_bytes()
    assert len(data) > 1000 and data[:8] == PNG_SIGNATURE


def test_plot_degree_distribution(tmp_path):
    target = tmp_path / 'new' / 'folder' / 'degrees.png'        # folders are created
    assert_png(plot_degree_distribution(degree_distribution(EDGES, 5), target), target)


def test_plot_accuracy_by_degree_one_or_several(tmp_path):
    degree = torch.tensor([0, 1, 1, 2, 3, 5])
    y = torch.zeros(6, dtype=torch.long)
    a = accuracy_by_degree(torch.tensor([0, 1, 0, 0, 0, 1]), y, degree, bins=(0, 1, 2, math.inf))
    b = accuracy_by_degree(torch.zeros(6, dtype=torch.long), y, degree,
                           bins=(0, 1, 2, math.inf))
    assert_png(plot_accuracy_by_degree(a, tmp_path / 'one.png'), tmp_path / 'one.png')
    assert_png(plot_accuracy_by_degree({'GCN': a, 'GAT': b}, tmp_path / 'two.png', title='t'),
               tmp_path / 'two.png')
    other = accuracy_by_degree(torch.zeros(6, dtype=torch.long), y, degree, bins=(0, 2, 9))
    with pytest.raises(ValueError, match='same bins'):
        plot_accuracy_by_degree({'a': a, 'b': other}, tmp_path / 'bad.png')


def test_plot_attention_entropy(tmp_path):
    alpha = torch.rand(EDGES.size(1), 2)
    learnt = attention_entropy(EDGES, alpha, 5)                 # node 4 has no edge
    target = tmp_path / 'entropy.png'
    assert_png(plot_attention_entropy({'layer 1': learnt, 'layer 2': learnt}, target), target)
    assert_png(plot_attention_entropy(learnt, tmp_path / 'e1.png'), tmp_path / 'e1.png')


def test_plot_tsne(tmp_path):
    rng = np.random.default_rng(0)
    maps = {'before': Embedding2D(rng.normal(size=(30, 2)).astype(np.float32), 0),
            'after': Embedding2D(rng.normal(size=(30, 2)).astype(np.float32), 0)}
    target = tmp_path / 'tsne.png'
    assert_png(plot_tsne(maps, target, labels=torch.arange(30) % 3), target)
    with pytest.raises(ValueError, match='one label per point'):
        plot_tsne(maps, tmp_path / 'bad.png', labels=np.zeros(7))


def test_plot_heatmap(tmp_path):
    P = label_cooccurrence(torch.tensor([[1, 1, 0], [1, 0, 1], [0, 1, 1]]))
    target = tmp_path / 'matrix.png'
    assert_png(plot_heatmap({'P(j | i)': P, 'attention': P / 2}, target,
                                 names=['a', 'b', 'c']), target)
    with_gaps = P.clone()
    with_gaps[0, 2] = float('nan')                   # left blank, not annotated
    assert_png(plot_heatmap(with_gaps, tmp_path / 'gaps.png', annotate=True, vmax=1.0),
               tmp_path / 'gaps.png')
    with pytest.raises(ValueError, match='names: expected 3 names'):
        plot_heatmap(P, tmp_path / 'bad.png', names=['a'])
    with pytest.raises(ValueError, match=r'square \[N, N\]'):
        plot_heatmap(torch.zeros(2, 3), tmp_path / 'bad.png')


def test_wrong_result_type_is_refused(tmp_path):
    with pytest.raises(TypeError, match=r"expected a AccuracyByDegree \(entry 'x'\)"):
        plot_accuracy_by_degree({'x': degree_distribution(EDGES, 5)}, tmp_path / 'x.png')
    assert isinstance(accuracy_by_degree(torch.zeros(2), torch.zeros(2), torch.zeros(2)),
                      AccuracyByDegree)

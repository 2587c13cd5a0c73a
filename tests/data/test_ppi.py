"""load_ppi on a synthetic dataset written in PPI's raw format (no download)."""
import pytest
import torch

from gat_pyg.data import load_ppi
from gat_pyg.data.ppi import RAW_FILES
from ppi_synthetic import GRAPHS, NODES_PER_GRAPH, write_ppi_raw


def test_raw_files_become_one_graph_per_graph_id(tmp_path):
    written = write_ppi_raw(tmp_path)
    assert sorted(p.name for p in (tmp_path / 'PPI' / 'raw').iterdir()) == sorted(RAW_FILES)
    splits = load_ppi(tmp_path)
    for dataset, split in zip(splits, ('train', 'valid', 'test')):
        assert len(dataset) == GRAPHS[split]
        feats, labels = written[split]
        assert torch.equal(torch.cat([g.x for g in dataset]), torch.from_numpy(feats))
        assert torch.equal(torch.cat([g.y for g in dataset]), torch.from_numpy(labels))
        for graph in dataset:
            # Node ids restart at 0 per graph; every ring edge appears in both directions.
            assert graph.num_nodes == NODES_PER_GRAPH
            assert int(graph.edge_index.min()) == 0
            assert int(graph.edge_index.max()) == NODES_PER_GRAPH - 1
            pairs = set(map(tuple, graph.edge_index.t().tolist()))
            assert {(0, 1), (1, 0), (19, 0), (0, 19)} <= pairs
    # Processed once: a second call reads the processed files.
    assert (tmp_path / 'PPI' / 'processed' / 'test.pt').is_file()
    assert torch.equal(load_ppi(tmp_path)[2][1].x, splits[2][1].x)


def test_missing_files_without_network_name_the_folder(tmp_path, monkeypatch):
    import torch_geometric.datasets.ppi as pyg_ppi

    def offline(url, folder, *args, **kwargs):
        raise OSError('network unreachable')

    monkeypatch.setattr(pyg_ppi, 'download_url', offline)
    with pytest.raises(OSError, match=r'PPI: the raw files are not in .*PPI/raw and '
                                      r'downloading .*ppi.zip failed \(network unreachable\)'):
        load_ppi(tmp_path)
    # The attempt leaves no empty PPI/raw (or PPI/) behind; the root, which existed, stays.
    assert tmp_path.is_dir() and not (tmp_path / 'PPI').exists()

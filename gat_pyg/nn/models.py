r"""PyG's own GNN models with this package's attention layers.

:class:`GAT` is :class:`torch_geometric.nn.models.GAT` (PyG's ``BasicGNN``) whose
convolutions are :class:`gat_pyg.GATConv` / :class:`gat_pyg.GATv2Conv` instead of PyG's: the
same constructor, forward and state_dict, so it drops into PyG code and examples
(``examples/ogbn_train.py --model gat`` and the like) unchanged. The package's paper models,
built from ``configs/`` by the training harness, are :mod:`gat_pyg.models` (there
``hidden_channels`` counts features per head; here, as in PyG, the total width of a layer).
"""
from typing import Any, Tuple, Union

from torch_geometric.nn.conv import MessagePassing
from torch_geometric.nn.models import GAT as PyGGAT

from gat_pyg.nn.gat_conv import GATConv
from gat_pyg.nn.gatv2_conv import GATv2Conv

__all__ = ['GAT']


class GAT(PyGGAT):
    r"""PyG's :class:`torch_geometric.nn.models.GAT` (`"Graph Attention Networks"
    <https://arxiv.org/abs/1710.10903>`_, or `"How Attentive are Graph Attention Networks?"
    <https://arxiv.org/abs/2105.14491>`_ with ``v2=True``) on :class:`gat_pyg.GATConv` /
    :class:`gat_pyg.GATv2Conv`.

    Everything but the convolution is PyG's ``BasicGNN``: dropout, activation, ``norm``,
    jumping knowledge (``jk``), the final ``Linear`` when ``jk`` is set, ``forward``'s
    ``num_sampled_nodes_per_hop`` / ``num_sampled_edges_per_hop`` (``trim_to_layer``: each
    layer of a ``NeighborLoader`` mini-batch runs only on the nodes and edges the later layers
    still need) and layer-wise :meth:`inference` over a one-hop ``NeighborLoader``. The layers
    take PyG's arguments and give PyG's numbers (to 1e-6), so with the same parameters this
    model and PyG's give the same outputs, and a ``state_dict`` loads either way.

    Args:
        in_channels (int or tuple): Input features per node, ``-1`` for lazy
            initialisation, or a ``(source, target)`` pair.
        hidden_channels (int): Output width of each hidden layer, **all heads together**: a
            layer with ``heads`` concatenated heads has ``hidden_channels // heads`` features
            per head (so ``hidden_channels`` must be divisible by ``heads``).
        num_layers (int): Number of attention layers.
        out_channels (int, optional): Output width; with ``jk=None`` the last layer maps to it
            directly (its heads averaged, not concatenated), else a final linear layer does.
            (default: ``None``, ``hidden_channels``)
        v2 (bool, optional): :class:`gat_pyg.GATv2Conv` instead of :class:`gat_pyg.GATConv`.
            (default: ``False``)
        dropout (float, optional): Dropout on the hidden features between layers, and the
            layers' attention dropout. (default: ``0.0``)
        act (str or Callable, optional): Activation. (default: ``'relu'``)
        act_first, act_kwargs, norm, norm_kwargs, jk: As
            :class:`torch_geometric.nn.models.BasicGNN`.
        **kwargs (optional): Further arguments of every layer: ``heads``, ``concat``,
            ``negative_slope``, ``add_self_loops``, ``edge_dim``, ``fill_value``, ``bias``,
            ``residual``, ``share_weights`` (``v2``), and our ``message_dropout``,
            ``head_input_dropout``, ``att_bias`` (not ``v2``), ``fast_path``.

    Shapes:
        - **input:** node features :math:`(|\mathcal{V}|, F_{in})`, edge indices
          :math:`(2, |\mathcal{E}|)` (or a sparse adjacency), optional edge features
          :math:`(|\mathcal{E}|, D)`
        - **output:** node features :math:`(|\mathcal{V}|, F_{out})`

    Raises:
        ValueError: a concatenating layer whose width is not divisible by ``heads`` (as PyG's
            model), and whatever the layers refuse (naming the argument).

    Example::

        from gat_pyg.nn.models import GAT
        model = GAT(-1, hidden_channels=64, num_layers=2, out_channels=7, heads=8)
        out = model(x, edge_index)               # [N, 7]
    """

    def init_conv(self, in_channels: Union[int, Tuple[int, int]], out_channels: int,
                  **kwargs: Any) -> MessagePassing:
        # PyG's GAT.init_conv (torch_geometric 2.8, nn/models/basic_gnn.py) with our layers: it
        # names PyG's classes inside its body, so the choice of class cannot be overridden
        # alone. Its rules are kept to the letter; tests/nn/test_pyg_models.py holds both
        # models' structure and numbers equal.
        v2 = kwargs.pop('v2', False)
        heads = kwargs.pop('heads', 1)
        concat = kwargs.pop('concat', True)
        # The layer that maps to out_channels (out_channels set, jk None) averages its heads.
        if getattr(self, '_is_conv_to_out', False):
            concat = False
        if concat and out_channels % heads != 0:
            raise ValueError(f"Ensure that the number of output channels of "
                             f"'GATConv' (got '{out_channels}') is divisible "
                             f"by the number of heads (got '{heads}')")
        if concat:
            out_channels = out_channels // heads
        conv = GATv2Conv if v2 else GATConv
        return conv(in_channels, out_channels, heads=heads, concat=concat,
                    dropout=self.dropout.p, **kwargs)

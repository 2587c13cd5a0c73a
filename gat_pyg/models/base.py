"""The one base model: a stack of graph layers with input dropout and an activation between.

Modelled on PyG's ``torch_geometric/nn/models/basic_gnn.py`` (template method): the base owns the
layer list, the dropout on each layer's input, the activation and the forward loop; a subclass
only says which layer it builds (:meth:`BaseModel.init_conv`) and, if that layer widens its
output (concatenated attention heads), how wide the next layer's input is
(:meth:`BaseModel.conv_width`).

:meth:`BaseModel.inference` computes the same logits layer by layer over node batches, for graphs
whose whole-graph activations do not fit at once (PyG's ``BasicGNN.inference``); a subclass whose
layer cannot run on a bipartite block as is says how in :meth:`BaseModel.inference_edges` /
:meth:`BaseModel.inference_layer`.
"""
from typing import Any, Dict, List, Optional, Tuple, Union

import torch
from torch import Tensor
from torch.nn import Module, ModuleList
from torch_geometric.data import Data
from torch_geometric.nn.resolver import activation_resolver
from torch_geometric.typing import Adj
from tqdm.auto import tqdm

from gat_pyg.checks import check_probability
from gat_pyg.nn.attention_conv import AttentionConv
from gat_pyg.models.inference import Block, NodeBlocks, NodeRows
from gat_pyg.nn.functional import dropout_features
from gat_pyg.nn.graph import GraphCache, PreparedGraph


class BaseModel(Module):
    r"""A ``num_layers``-deep node classifier: ``dropout -> conv -> act`` per hidden layer,
    ``dropout -> conv`` at the output (logits; the loss applies the softmax).

    Args:
        in_channels (int): Input features per node.
        hidden_channels (int): Output features of each hidden layer (per head for attention
            models).
        out_channels (int): Number of classes.
        num_layers (int, optional): Number of graph layers. (default: ``2``)
        dropout (float, optional): Dropout on the input of every layer, applied to the stored
            values when the input is a ``torch.sparse`` tensor. (default: ``0.0``)
        act (str or Callable, optional): Activation after each hidden layer, resolved by
            :func:`torch_geometric.nn.resolver.activation_resolver`. (default: ``'relu'``)
        **conv_kwargs (optional): Passed to :meth:`init_conv` and :meth:`conv_width`.

    Shapes:
        - **input:** node features :math:`(|\mathcal{V}|, F_{in})` (dense or sparse), edge
          indices :math:`(2, |\mathcal{E}|)`
        - **output:** logits :math:`(|\mathcal{V}|, F_{out})`
    """

    def __init__(
        self,
        in_channels: int,
        hidden_channels: int,
        out_channels: int,
        num_layers: int = 2,
        dropout: float = 0.0,
        act: Union[str, Module, None] = 'relu',
        **conv_kwargs: Any,
    ):
        super().__init__()
        for name, value in (('in_channels', in_channels), ('hidden_channels', hidden_channels),
                            ('out_channels', out_channels), ('num_layers', num_layers)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f'{type(self).__name__}: {name} must be a positive int, '
                                 f'got {value!r}')
        check_probability(dropout, 'dropout')
        self.in_channels = in_channels
        self.hidden_channels = hidden_channels
        self.out_channels = out_channels
        self.num_layers = num_layers
        self.dropout = dropout
        self.act = activation_resolver(act) if act is not None else torch.nn.Identity()
        self.graph_cache = GraphCache()
        self.convs = ModuleList()
        width = in_channels
        for i in range(num_layers):
            last = i == num_layers - 1
            channels = out_channels if last else hidden_channels
            self.convs.append(self.init_conv(width, channels, last=last, **conv_kwargs))
            width = self.conv_width(channels, last=last, **conv_kwargs)

    def init_conv(self, in_channels: int, out_channels: int, last: bool, **kwargs: Any) -> Module:
        """Build one layer: ``forward(x, edge_index)`` mapping ``in_channels`` features to
        :meth:`conv_width` features. ``last`` marks the output layer."""
        raise NotImplementedError

    def conv_width(self, out_channels: int, last: bool, **kwargs: Any) -> int:
        """Width of a layer's output (the next layer's input) built with ``out_channels``."""
        return out_channels

    def layer_input(self, x: Tensor) -> Tensor:
        """What a layer reads of its input ``x``: ``x`` dropped out with ``dropout``, one mask
        for the whole layer (a subclass whose layers draw the dropout themselves returns ``x``)."""
        return dropout_features(x, self.dropout, self.training)

    def reset_parameters(self) -> None:
        """Re-initialise every layer."""
        for conv in self.convs:
            conv.reset_parameters()

    def forward(self, x: Tensor, edge_index: Union[Adj, PreparedGraph],
                return_attention_weights: Optional[bool] = None):
        """Logits ``[N, out_channels]`` of every node.

        The graph is prepared once (:meth:`prepare_graph`) and handed to every layer.

        Args:
            x (Tensor): Node features ``[N, in_channels]``, dense or ``torch.sparse``.
            edge_index (Tensor or SparseTensor or PreparedGraph): The graph, in any form the
                layers take.
            return_attention_weights (bool, optional): Also return one entry per layer: the
                attention layer's ``(edge_index, alpha)`` (PyG's format for the graph's form,
                ``alpha`` ``[E', H]`` after that layer's attention dropout), ``None`` for a
                layer without attention. (default: ``None``)
        """
        graph = self.prepare_graph(edge_index, x.size(0))
        attention: List[Any] = []
        for i, conv in enumerate(self.convs):
            x = self.layer_input(x)
            if return_attention_weights and isinstance(conv, AttentionConv):
                x, weights = conv(x, graph, return_attention_weights=True)
                attention.append(weights)
            else:
                x = conv(x, graph)
                attention.append(None)
            if i < self.num_layers - 1:
                x = self.act(x)
        return (x, attention) if return_attention_weights else x

    def prepare_graph(self, edge_index: Union[Adj, PreparedGraph],
                      num_nodes: int) -> Union[Adj, PreparedGraph]:
        """The graph as this model's layers read it, for ``num_nodes`` nodes; pass the result
        as ``edge_index`` to skip the preparation in later calls (e.g. an evaluation graph
        kept across epochs).

        When every layer is a :class:`~gat_pyg.AttentionConv` with the same ``add_self_loops``
        (the models pass no edge features), this is one
        :class:`~gat_pyg.nn.graph.PreparedGraph` for all of them, reused while ``edge_index``
        keeps its contents (a
        :class:`~gat_pyg.nn.graph.GraphCache`: one O(E) comparison per call). Otherwise, and
        for a graph already prepared, ``edge_index`` as given.
        """
        if isinstance(edge_index, PreparedGraph):
            return edge_index
        first = self.convs[0]
        if not all(isinstance(c, AttentionConv) and c.add_self_loops == first.add_self_loops
                   for c in self.convs):
            return edge_index
        return self.graph_cache.prepare(edge_index, (num_nodes, first.add_self_loops),
                                         lambda: first.prepare(edge_index, num_nodes))

    @torch.no_grad()
    def inference(self, data_or_x: Union[Data, Tensor], edge_index: Optional[Tensor] = None, *,
                  batch_size: int = 1024, device: Optional[Union[str, torch.device]] = None,
                  progress: bool = False) -> Tensor:
        r"""Every node's logits, computed layer by layer over batches of target nodes: the same
        numbers as :meth:`forward` in eval mode (to float rounding; the tests hold them to 1e-5)
        without holding any layer's whole-graph activations on ``device`` at once.

        Layer :math:`l` runs for all nodes before layer :math:`l + 1` starts. For a batch of
        ``batch_size`` consecutive nodes it takes the edges into them, gathers the previous
        layer's rows of their sources (full in-neighbourhood, no sampling) and calls the layer
        on that bipartite block, ``conv((h[n_id], h[batch]), block_edge_index, size=...)``; the
        outputs stay on the device of the input features and only each block travels to
        ``device``. This is PyG's ``BasicGNN.inference`` (which takes the blocks from a
        one-hop ``NeighborLoader``); here the blocks come from one sort of the edges by target
        (:class:`gat_pyg.models.inference.NodeBlocks`).

        Args:
            data_or_x (Data or Tensor): A graph with ``x`` and ``edge_index``, or node features
                ``[N, F]`` (dense or torch.sparse COO).
            edge_index (Tensor, optional): ``[2, E]`` edges (row 0 sources, row 1 targets),
                when ``data_or_x`` is a tensor.
            batch_size (int, optional): Target nodes per block. (default: ``1024``)
            device (str or torch.device, optional): Where each block is computed.
                (default: the device of the model's parameters)
            progress (bool, optional): A progress bar over the layers' blocks.
                (default: ``False``)

        Returns:
            Logits ``[N, out_channels]`` on the device of the input features.

        Raises:
            RuntimeError: the model is in training mode (inference has no dropout; call
                :meth:`eval` first, as PyG's ``inference`` requires).
            ValueError / TypeError: ``batch_size`` < 1, a missing or malformed ``edge_index``.
        """
        if self.training:
            raise RuntimeError(f'{type(self).__name__}.inference computes eval-mode outputs '
                               '(no dropout); call model.eval() first')
        if isinstance(data_or_x, Data):
            if edge_index is not None:
                raise ValueError('inference: pass either a Data object or x and edge_index, '
                                 'not a Data object and an edge_index')
            x, edge_index = data_or_x.x, data_or_x.edge_index
        else:
            x = data_or_x
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f'inference: batch_size must be an int >= 1, got {batch_size!r}')
        num_nodes = x.size(0)
        _check_edge_index(edge_index, num_nodes)
        if device is None:
            first = next(self.parameters(), None)
            device = first.device if first is not None else x.device
        device = torch.device(device)
        edge_index, edge_weight = self.inference_edges(edge_index, num_nodes)
        # Cut once, used by every layer (the blocks hold E edge ids in all, like the graph).
        blocks = list(NodeBlocks(edge_index, num_nodes, batch_size, edge_weight))
        h = x
        with tqdm(total=self.num_layers * len(blocks), disable=not progress, leave=False,
                  unit='batch', desc=f'{type(self).__name__} inference') as bar:
            for i, conv in enumerate(self.convs):
                rows = NodeRows(h)
                outs = []
                for block in blocks:
                    x_src = rows[block.n_id].to(device)
                    x_dst = rows[block.n_id[:block.end - block.start]].to(device)
                    out = self.inference_layer(conv, x_src, x_dst, block.to(device))
                    if i < self.num_layers - 1:
                        out = self.act(out)
                    outs.append(out.to(x.device))
                    bar.update()
                h = torch.cat(outs)
        return h

    def inference_edges(self, edge_index: Tensor,
                        num_nodes: int) -> Tuple[Tensor, Optional[Tensor]]:
        """The edges (and per-edge weights, if the layer needs them) that :meth:`inference`
        cuts into blocks; by default the graph as given, without weights."""
        return edge_index, None

    def inference_layer(self, conv: Module, x_src: Tensor, x_dst: Tensor,
                        block: Block) -> Tensor:
        """One layer's outputs for a block's targets ``[num_dst, width]``, from the previous
        layer's rows of its sources ``x_src`` (targets first) and targets ``x_dst``. By default
        the layer's bipartite call, as in a ``NeighborLoader`` batch."""
        return conv((x_src, x_dst), block.edge_index, size=block.size)

    def parameter_groups(self, weight_decay: float,
                         first_layer_only: bool = False) -> List[Dict[str, Any]]:
        """Optimizer parameter groups with L2 ``weight_decay`` on every parameter, or only on
        the first layer's (Kipf & Welling's GCN regularises only its first layer)."""
        if not first_layer_only:
            return [{'params': list(self.parameters()), 'weight_decay': weight_decay}]
        first = list(self.convs[0].parameters())
        first_ids = {id(p) for p in first}
        rest = [p for p in self.parameters() if id(p) not in first_ids]
        return [{'params': first, 'weight_decay': weight_decay},
                {'params': rest, 'weight_decay': 0.0}]

    def __repr__(self) -> str:
        return (f'{type(self).__name__}({self.in_channels}, {self.hidden_channels}, '
                f'{self.out_channels}, num_layers={self.num_layers})')


def _check_edge_index(edge_index: Any, num_nodes: int) -> None:
    if not isinstance(edge_index, Tensor):
        raise TypeError(f'inference: edge_index must be a [2, E] integer tensor, got '
                        f'{type(edge_index).__name__}')
    if edge_index.dim() != 2 or edge_index.size(0) != 2:
        raise ValueError(f'inference: edge_index must have shape [2, E], got '
                         f'{list(edge_index.shape)}')
    if edge_index.dtype not in (torch.int64, torch.int32):
        raise TypeError(f'inference: edge_index must hold integers, got {edge_index.dtype}')
    if edge_index.numel() and (int(edge_index.min()) < 0 or int(edge_index.max()) >= num_nodes):
        raise ValueError(f'inference: edge_index holds ids outside [0, {num_nodes}) (x has '
                         f'{num_nodes} rows)')

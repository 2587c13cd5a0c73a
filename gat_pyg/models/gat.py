"""GAT and GATv2 node classifiers (Velickovic et al. 2018; Brody et al. 2022).

The constructors take PyG's neutral defaults (one head, no dropout, ReLU, as
:class:`torch_geometric.nn.models.GAT`); the papers' settings are written once, in
``configs/<dataset>_gat.yaml`` / ``_gatv2.yaml``, and :func:`gat_pyg.train.build_model` builds
a model from them. For PyG's own model interface (``BasicGNN``: ``jk``, ``trim_to_layer``,
``inference`` over a loader) with these layers, see :class:`gat_pyg.nn.models.GAT`.
"""
from typing import Any, Type

from torch import Tensor
from torch.nn import Module

from gat_pyg.checks import check_probability
from gat_pyg.models.base import BaseModel
from gat_pyg.nn import GATConv, GATv2Conv


class GAT(BaseModel):
    r"""The transductive GAT of `"Graph Attention Networks"
    <https://arxiv.org/abs/1710.10903>`_: hidden layers concatenate ``heads`` heads of
    ``hidden_channels`` features each, followed by the activation; the output layer averages
    ``out_heads`` heads. The paper's settings: ``configs/<dataset>_gat.yaml``.

    Args:
        in_channels (int): Input features per node.
        hidden_channels (int): Features **per head** of each hidden layer, so a hidden layer
            is ``heads * hidden_channels`` wide (paper: ``8``, times 8 heads = 64). PyG's
            :class:`torch_geometric.nn.models.GAT` reads its ``hidden_channels`` as the total
            width and divides it by ``heads``: the paper's hidden layer is
            ``hidden_channels=8`` here and ``hidden_channels=64`` there.
        out_channels (int): Number of classes.
        num_layers (int, optional): Number of attention layers. (default: ``2``)
        heads (int, optional): Heads of each hidden layer, concatenated. (default: ``1``)
        out_heads (int, optional): Heads of the output layer, averaged. (default: ``1``)
        dropout (float, optional): Dropout on each layer's input. (default: ``0.0``)
        per_head_dropout (bool, optional): Draw that dropout separately for every head of a
            layer (the layers' ``head_input_dropout``), as the official GAT code does inside
            each ``attn_head`` (``utils/layers.py``; ``models/gat.py`` passes its ``ffd_drop``
            to every head of every layer), instead of one mask for all heads before the layer.
            A layer of one head computes the same function either way (from other random
            numbers). Not in PyG's model; ``configs/*_gat.yaml`` say whether the paper's runs
            use it (``docs/official_code.md``). (default: ``False``)
        attn_dropout (float, optional): Dropout on the attention coefficients (each layer's
            ``dropout``). (default: ``0.0``)
        message_dropout (float, optional): Dropout on each layer's projected features before
            they are summed: the official GAT code's (its ``in_drop`` also drops ``seq_fts``),
            which PyG's layer lacks. (default: ``0.0``)
        act (str, optional): Activation between layers. (default: ``'relu'``)
        bias (bool, optional): Additive bias in each layer. (default: ``True``)
        att_bias (bool, optional): The official code's learnt per-head bias of the attention
            score, before its LeakyReLU (:class:`gat_pyg.GATConv`'s ``att_bias``); GAT only,
            :class:`GATv2` refuses it (see :class:`gat_pyg.GATv2Conv`). (default: ``False``)
        residual (bool, optional): A linear skip connection in every layer (``residual=True``
            of the conv): the paper's inductive PPI model. (default: ``False``)

    Raises:
        TypeError / ValueError: ``attn_dropout`` or ``message_dropout`` not a probability
            (:func:`gat_pyg.checks.check_probability`, naming the argument); ``att_bias`` for
            :class:`GATv2`; the other arguments as :class:`BaseModel` and the layers check
            them.
    """
    conv_class: Type[Module] = GATConv

    def __init__(self, in_channels: int, hidden_channels: int, out_channels: int,
                 num_layers: int = 2, heads: int = 1, out_heads: int = 1, dropout: float = 0.0,
                 attn_dropout: float = 0.0, message_dropout: float = 0.0, act: str = 'relu',
                 bias: bool = True, residual: bool = False, per_head_dropout: bool = False,
                 att_bias: bool = False):
        # Checked here under the model's names: the layers would report them as 'dropout'.
        check_probability(attn_dropout, 'attn_dropout')
        check_probability(message_dropout, 'message_dropout')
        super().__init__(in_channels, hidden_channels, out_channels, num_layers, dropout, act,
                         heads=heads, out_heads=out_heads, attn_dropout=attn_dropout,
                         message_dropout=message_dropout, bias=bias, residual=residual,
                         head_input_dropout=dropout if per_head_dropout else 0.0,
                         att_bias=att_bias)
        self.per_head_dropout = per_head_dropout

    def init_conv(self, in_channels: int, out_channels: int, last: bool, *, heads: int,
                  out_heads: int, attn_dropout: float, message_dropout: float, bias: bool,
                  residual: bool, head_input_dropout: float, att_bias: bool,
                  **_: Any) -> Module:
        # Passed only when set: PyG's layers (which the benchmarks plug in) do not take them.
        extra = {name: value for name, value in (('message_dropout', message_dropout),
                                                 ('head_input_dropout', head_input_dropout),
                                                 ('att_bias', att_bias)) if value}
        return self.conv_class(in_channels, out_channels, heads=out_heads if last else heads,
                               concat=not last, dropout=attn_dropout, bias=bias,
                               residual=residual, **extra)

    def layer_input(self, x: Tensor) -> Tensor:
        # With per_head_dropout every layer drops its input itself, a mask per head.
        return x if self.per_head_dropout else super().layer_input(x)

    def conv_width(self, out_channels: int, last: bool, *, heads: int, **_: Any) -> int:
        return out_channels if last else out_channels * heads


class GATv2(GAT):
    r"""GAT with the dynamic attention of `"How Attentive are Graph Attention Networks?"
    <https://arxiv.org/abs/2105.14491>`_ (:class:`gat_pyg.GATv2Conv`); same arguments,
    defaults and shape as :class:`GAT`, but no ``att_bias``."""
    conv_class = GATv2Conv

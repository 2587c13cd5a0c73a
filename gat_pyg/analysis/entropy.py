r"""Entropy of the attention each node pays to its neighbours.

For target :math:`i` and head :math:`h`, with :math:`\alpha^h_{ij}` the weights over its
incoming edges (self-loop included when the layer added one),

.. math::
    H^h_i = -\sum_{j \in \mathcal{N}(i)} \alpha^h_{ij} \log \alpha^h_{ij}
    \qquad\text{and}\qquad
    H^{\mathrm{uniform}}_i = \log |\mathcal{N}(i)|,

the second being the entropy of a mean over the same neighbours (what GCN-like averaging does,
up to its degree normalisation). Weights that sum to one per target give
:math:`0 \le H^h_i \le \log|\mathcal{N}(i)|`: 0 when a node attends to one neighbour only, the
upper bound when attention is uniform. A learnt attention whose entropy histogram sits on top of
the uniform one has learnt little beyond averaging (DGL's GAT tutorial makes this plot for Cora,
where it does).
"""
from dataclasses import dataclass

import torch
from torch import Tensor

from gat_pyg.analysis._checks import check_edge_index, check_num_nodes


@dataclass
class AttentionEntropy:
    """Per-node attention entropy and its uniform reference.

    Attributes:
        entropy (Tensor): ``[N, H]`` entropy (nats) of node ``i``'s incoming attention in head
            ``h``; 0 for a node without incoming edges.
        uniform (Tensor): ``[N]`` ``log(degree)``, the entropy of uniform attention over the
            same incoming edges; 0 for a node without incoming edges.
        degree (Tensor): ``[N]`` number of incoming edges in the given ``edge_index``.
    """
    entropy: Tensor
    uniform: Tensor
    degree: Tensor

    @property
    def heads(self) -> int:
        return self.entropy.size(1)

    def summary(self) -> dict:
        """Mean entropy and mean uniform entropy over the nodes with an incoming edge."""
        has = self.degree > 0
        return dict(entropy=float(self.entropy[has].mean()) if bool(has.any()) else 0.0,
                    uniform=float(self.uniform[has].mean()) if bool(has.any()) else 0.0,
                    nodes=int(has.sum()), heads=self.heads)


def attention_entropy(edge_index: Tensor, alpha: Tensor, num_nodes: int) -> AttentionEntropy:
    r"""Entropy of every node's incoming attention, per head, and of uniform attention.

    Takes what ``conv(x, edge_index, return_attention_weights=True)`` returns as its second
    element, ``(edge_index, alpha)`` (the edges *with* the self-loops the layer added), so a
    layer's attention is analysed over the neighbourhoods it actually normalised over. Run the
    model in ``eval()`` mode: attention dropout would zero weights at random.

    Args:
        edge_index (Tensor): ``[2, E]``, row 0 sources, row 1 targets.
        alpha (Tensor): ``[E, H]`` (or ``[E]`` for one head) attention weights, ``alpha[e]``
            the weight of edge ``e`` in its target's update.
        num_nodes (int): ``N``.

    Returns:
        :class:`AttentionEntropy`, on the CPU, in ``float64``.
    """
    num_nodes = check_num_nodes(num_nodes)
    edge_index = check_edge_index(edge_index, num_nodes).cpu()
    if not isinstance(alpha, Tensor):
        raise TypeError(f"alpha: expected a torch.Tensor [E, H], got {type(alpha).__name__}")
    if alpha.dim() == 1:
        alpha = alpha.unsqueeze(-1)
    num_edges = edge_index.size(1)
    if alpha.dim() != 2 or alpha.size(0) != num_edges:
        raise ValueError(f"alpha: expected [E, H] or [E] weights for the E = {num_edges} "
                         f"edges of edge_index, got shape {list(alpha.shape)}")
    if not alpha.is_floating_point():
        raise TypeError(f"alpha: expected floating point weights, got {alpha.dtype}")
    alpha = alpha.detach().cpu().double()
    if alpha.numel() and bool((alpha < 0).any()):
        raise ValueError("alpha: attention weights must be non-negative, found "
                         f"{float(alpha.min())}")

    target = edge_index[1]
    # xlogy(a, a) = a log a with 0 log 0 = 0: a weight that attention (or a mask) set to
    # exactly zero adds nothing, as in the limit.
    terms = -torch.special.xlogy(alpha, alpha)
    entropy = torch.zeros(num_nodes, alpha.size(1), dtype=torch.float64)
    entropy.index_add_(0, target, terms)
    degree = torch.bincount(target, minlength=num_nodes)
    uniform = torch.log(degree.double().clamp(min=1))     # log 1 = 0 for degree 0 too
    return AttentionEntropy(entropy=entropy, uniform=uniform, degree=degree)

"""Dropout and the first projection for dense or sparse node features, shared by the layers
(attention coefficients, per-head input dropout: :class:`HeadInputs`) and the models (input and
hidden features).

Both go through the package's operators (:mod:`gat_pyg.kernels`), so the device's kernel runs
where there is one and the pure-torch reference elsewhere, with the same masks.
"""
from typing import Optional, Tuple, Union

import torch
from torch import Tensor
from torch_geometric.nn.dense.linear import Linear

from gat_pyg import kernels
from gat_pyg.checks import check_probability


def dropout_features(x: Tensor, p: float, training: bool) -> Tensor:
    r"""Dropout on node features, for dense and for ``torch.sparse`` (COO or CSR) ``x``.

    Each stored entry is kept with probability :math:`1 - p` and scaled by :math:`1 / (1 - p)`,
    so for a sparse ``x`` the result equals dense dropout of ``x.to_dense()`` whose mask happens
    to agree on the stored entries (zeros stay zero whatever the mask says). Bag-of-words
    Planetoid features are ~1 % dense, so one draw per stored value instead of per matrix entry
    is what makes input dropout cheap. The masks are the kernels' counter-based hash
    (:func:`gat_pyg.kernels.feature_dropout`, :func:`gat_pyg.kernels.sparse_dropout`), drawn
    from torch's default generator: ``torch.manual_seed`` repeats them on every device.

    Args:
        x (Tensor): Dense features of any shape, or a sparse COO / CSR matrix.
        p (float): Probability of zeroing an entry, in ``[0, 1]``.
        training (bool): Apply dropout only when ``True`` (as :func:`torch.nn.functional.dropout`).

    Returns:
        A tensor of the same layout as ``x`` (``x`` itself outside training or for ``p = 0``). A
        COO result stores only the kept entries (coalesced); a CSR result keeps ``x``'s structure
        with the dropped values set to zero.

    Raises:
        TypeError / ValueError: ``p`` not a probability; ``x`` of another layout.
    """
    p = check_probability(p, 'p')
    if not training or p == 0.0:
        return x
    if x.layout == torch.strided:
        return kernels.feature_dropout(x, p, True)
    if x.layout == torch.sparse_coo:
        x = x.coalesce()
        # Dropping the zeroed entries halves the sparse product that follows (and its
        # backward): on Cora (nnz 49,216, p 0.6) dropout + x @ W[1433, 64] took 2.6 + 2.3 ms
        # with filtering against 1.4 + 4.8 ms when the zeros were kept (torch's products).
        indices, values = kernels.sparse_dropout(x.indices(), x.values(), p, True)
        return torch.sparse_coo_tensor(indices, values, x.shape, is_coalesced=True,
                                       check_invariants=False)
    if x.layout == torch.sparse_csr:
        # Filtering a CSR tensor would mean rebuilding crow_indices; keeping its structure with
        # explicit zeros is simpler and CSR features are rare (Planetoid gives COO).
        kept = kernels.feature_dropout(x.values(), p, True)
        return torch.sparse_csr_tensor(x.crow_indices(), x.col_indices(), kept, x.shape,
                                       check_invariants=False)
    raise ValueError(f'dropout_features: x must be dense, sparse COO or sparse CSR, '
                     f'got layout {x.layout}')


def linear(lin: Linear, x: Tensor) -> Tensor:
    """``lin(x)`` for dense or ``torch.sparse`` (COO/CSR) ``x``: a sparse ``x`` goes through
    :func:`gat_pyg.kernels.sparse_linear` (PyG's ``Linear`` would take torch's COO product,
    slower, and no CSR). The sparse product stays in ``x``'s dtype, under autocast too (torch's
    sparse kernels have no half-precision versions).
    """
    if x.layout == torch.strided or isinstance(lin.weight,
                                               torch.nn.parameter.UninitializedParameter):
        return lin(x)
    row, col, values = _sparse_entries(x)
    out = kernels.sparse_linear(row, col, values, lin.weight.to(values.dtype), x.size(0),
                                check=False)
    return out if lin.bias is None else out + lin.bias.to(out.dtype)


def _sparse_entries(x: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
    """``(row, col, values)`` of a sparse COO / CSR matrix, sorted by row (as
    :func:`gat_pyg.kernels.sparse_linear` reads them)."""
    if x.layout == torch.sparse_coo:
        # A coalesced COO tensor lists its entries sorted by row.
        x = x.coalesce()
        row, col = x.indices()
    elif x.layout == torch.sparse_csr:
        crow, col = x.crow_indices(), x.col_indices()
        row = torch.repeat_interleave(torch.arange(x.size(0), device=crow.device),
                                      crow[1:] - crow[:-1], output_size=col.numel())
    else:
        raise TypeError(f"x: expected a dense, sparse COO or sparse CSR tensor, got {x.layout}")
    return row, col, x.values()


class HeadInputs:
    r"""A layer's input ``x`` ``[N, F]`` dropped out with its own mask for each of ``heads``
    attention heads: the input dropout of the official GAT code, whose ``attn_head``
    (``utils/layers.py`` of PetarV-/GAT) applies ``tf.nn.dropout(seq, 1 - in_drop)`` inside
    every head, so that each head projects a differently masked copy of the same input (one
    dropout before the layer, :func:`dropout_features`, gives all heads one mask).

    Plain meaning, per head :math:`k` with weight rows :math:`W_k` (``W.view(H, C, F)[k]``):

    .. math::
        \mathbf{h}_{n,k} = W_k \big(\mathbf{m}_{n,k} \odot \mathbf{x}_n\big) / (1 - p)
        + \mathbf{b}_k, \qquad \mathbf{m}_{n,k} \sim \mathrm{Bernoulli}(1 - p)^{F}

    computed as one product on ``H`` stacked masked copies of ``x`` (:meth:`linear`), so the
    work equals one shared-mask projection (each kept entry meets only its own head's ``C``
    weights):

    * dense ``x``: :func:`gat_pyg.kernels.feature_dropout` of ``[H, N, F]`` copies, then one
      batched product with ``[H, F, C]`` weights;
    * sparse ``x`` (COO / CSR, never densified): the stored entries repeated ``H`` times as one
      block-diagonal sparse matrix ``[H * N, H * F]`` (copy ``k`` at rows ``k N + n``, columns
      ``k F + f``, so rows stay sorted), its entries dropped by one
      :func:`gat_pyg.kernels.sparse_dropout` call (the dropped ones left out), then one
      :func:`gat_pyg.kernels.sparse_linear` with the weights rearranged to ``[C, H * F]``.

    Every mask comes from the package's dropout operators (one seed from torch's default
    generator per :class:`HeadInputs`), so ``torch.manual_seed`` repeats it. Dense and sparse
    copies of one ``x`` get different masks, as with :func:`dropout_features`. Build it once per
    layer call and project it with every weight that should see the same masks (a head's source
    and target projections, its share of the residual).

    Args:
        x (Tensor): ``[N, F]`` features, dense or ``torch.sparse`` COO / CSR.
        heads (int): Number of heads ``H``.
        p (float): Dropout probability, in ``[0, 1]``; outside training no instance is needed
            (the projection is then the plain ``linear(lin, x)``).
    """

    def __init__(self, x: Tensor, heads: int, p: float):
        p = check_probability(p, 'p')
        if x.dim() != 2:
            raise ValueError(f'x: per-head input dropout takes [N, F] features, got shape '
                             f'{list(x.shape)}')
        self.x = x
        self.heads = heads
        self.num_rows, self.num_features = x.shape
        if x.layout == torch.strided:
            self.stacked = kernels.feature_dropout(x.expand(heads, *x.shape), p, True)
            return
        row, col, values = _sparse_entries(x)
        # int32 where the stacked coordinates fit: these H * nnz indices are rebuilt every
        # call, and half the bytes is most of their cost.
        fits = heads * max(self.num_rows, self.num_features) < 2**31
        dtype = torch.int32 if fits else torch.int64
        first = torch.arange(heads, device=row.device, dtype=dtype).view(heads, 1)
        indices = torch.empty(2, heads, values.numel(), dtype=dtype, device=row.device)
        torch.add(row.to(dtype), first * self.num_rows, out=indices[0])
        torch.add(col.to(dtype), first * self.num_features, out=indices[1])
        indices, values = kernels.sparse_dropout(indices.view(2, -1),
                                                 values.repeat(heads), p, True)
        self.stacked = None
        self.row, self.col, self.values = indices[0], indices[1], values

    @property
    def shape(self) -> torch.Size:
        return self.x.shape

    def size(self, dim: int) -> int:
        return self.x.size(dim)

    def linear(self, weight: Tensor, bias: Optional[Tensor] = None) -> Tensor:
        """``[N, H, C]``: head ``k``'s masked copy times its rows of ``weight`` ``[H * C, F]``
        (plus its slice of ``bias`` ``[H * C]``)."""
        heads, num_features = self.heads, self.num_features
        channels = weight.size(0) // heads
        per_head = weight.view(heads, channels, num_features)
        if self.stacked is not None:
            out = torch.bmm(self.stacked, per_head.transpose(1, 2).to(self.stacked.dtype))
        else:
            # Column k F + f of the rearranged weight is head k's column f.
            folded = per_head.transpose(0, 1).reshape(channels, heads * num_features)
            out = kernels.sparse_linear(self.row, self.col, self.values,
                                        folded.to(self.values.dtype), heads * self.num_rows,
                                        check=False).view(heads, self.num_rows, channels)
        out = out.transpose(0, 1)
        if bias is not None:
            out = out + bias.view(heads, channels).to(out.dtype)
        return out.contiguous()


def head_linear(lin: Linear, x: Union[Tensor, HeadInputs], heads: int) -> Tensor:
    """``lin(x)`` as ``[N, heads, C]``: with a :class:`HeadInputs` each head's rows of
    ``lin.weight`` read that head's masked copy, with a tensor all read ``x``
    (:func:`linear`)."""
    if isinstance(x, HeadInputs):
        materialize(lin, x.x)
        return x.linear(lin.weight, lin.bias)
    return linear(lin, x).view(-1, heads, lin.out_channels // heads)


def materialize(lin: Linear, x: Tensor) -> None:
    """Initialise a lazy ``lin`` (``in_channels=-1``) for ``x`` as its first call would, for
    code that reads ``lin.weight`` instead of calling ``lin``."""
    if isinstance(lin.weight, torch.nn.parameter.UninitializedParameter):
        lin.initialize_parameters(lin, (x, ))


__all__ = ['HeadInputs', 'dropout_features', 'head_linear', 'linear']

// The dropout operators' CPU kernels: attention_dropout and feature_dropout (dense, the mask
// regenerated from the seed, linear and so their own backward) and sparse_dropout (the kept
// stored entries of a sparse tensor). Every mask is the counter-based hash of attend.h
// (HashDropout), the same bits as gat_pyg/kernels/hashing.py and the Triton kernels.
//
//   attention_dropout  counter e * H + h (alpha's flat index), one hash per entry;
//   feature_dropout    counter: the flat index, two entries per hash (apply_paired);
//   sparse_dropout     keep k iff hash(seed, k) clears p: the kept coordinates in order,
//                      values scaled by 1 / (1 - p).
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <vector>

#include "autograd.h"
#include "common.h"

namespace gat_pyg {
namespace {

// flags[k] = 1 if entry k0 + k is kept, else 0: the hash of HashDropout::apply, vectorised for
// the instruction set (64-bit multiplies, which the baseline cannot vectorise).
struct KeepFlags {
  template <Isa isa>
  static GAT_PYG_INLINE void run(const HashDropout& drop, const int64_t& k0, const int64_t& m,
                                 float*& flags) {
    std::fill(flags, flags + m, 1.0f);
    drop.template apply<isa>(static_cast<uint64_t>(k0), m, flags, flags);
  }
};

// The kept entries of [begin, end) copied to the places j = first, first + 1, ... (< stop),
// branch-free (whether an entry is kept is a coin flip, so a branch would be mispredicted half
// the time): each entry is written at the next free place, which advances only past a kept one;
// once the piece's last kept entry is placed, nothing more is written (the places after belong
// to the next piece). Arguments by value: stores through o_i cannot alias them.
template <typename acc_t, typename index_t, typename scalar_t>
void compact(const index_t* __restrict__ in_i, const scalar_t* __restrict__ in_v,
             const float* __restrict__ keep, int64_t nnz, int64_t dims, int64_t block,
             index_t* __restrict__ o_i, scalar_t* __restrict__ o_v, int64_t total, acc_t scale,
             int64_t begin, int64_t end, int64_t j, int64_t stop) {
  if (dims == 2 && block == 1) {   // a sparse matrix with scalar values: the common case
    const index_t *rows = in_i, *cols = in_i + nnz;
    index_t *o_rows = o_i, *o_cols = o_i + total;
    for (int64_t k = begin; k < end && j < stop; ++k) {
      o_rows[j] = rows[k];
      o_cols[j] = cols[k];
      o_v[j] = static_cast<scalar_t>(static_cast<acc_t>(in_v[k]) * scale);
      j += keep[k] != 0.0f;
    }
    return;
  }
  for (int64_t k = begin; k < end && j < stop; ++k) {
    for (int64_t d = 0; d < dims; ++d) o_i[d * total + j] = in_i[d * nnz + k];
    for (int64_t b = 0; b < block; ++b)
      o_v[j * block + b] = static_cast<scalar_t>(static_cast<acc_t>(in_v[k * block + b]) * scale);
    j += keep[k] != 0.0f;
  }
}

}  // namespace

// alpha * keep / (1 - p) with the mask of the forward operators (counter e * H + h, alpha's
// flat index): linear in alpha, so it is also its own backward.
at::Tensor attention_dropout(const at::Tensor& alpha, double dropout,
                             const std::optional<at::Tensor>& seed) {
  TORCH_CHECK(alpha.dim() == 2, "gat_pyg: alpha must be [E, H], got shape ", alpha.sizes());
  TORCH_CHECK(alpha.device().is_cpu(), "gat_pyg: alpha must be on the CPU");
  return hash_dropout(alpha, make_dropout(dropout, seed), false);
}

// x * keep / (1 - p) per element of any shape (counter: the flat index, two elements per
// hash); its own backward.
at::Tensor feature_dropout(const at::Tensor& x, double dropout,
                           const std::optional<at::Tensor>& seed) {
  TORCH_CHECK(x.device().is_cpu(), "gat_pyg: x must be on the CPU, got ", x.device());
  const auto dtype = x.scalar_type();
  TORCH_CHECK(dtype == at::kFloat || dtype == at::kDouble || dtype == at::kBFloat16,
              "gat_pyg: x must be float32, float64 or bfloat16, got ", dtype);
  return hash_dropout(x, make_dropout(dropout, seed), true);
}

std::tuple<at::Tensor, at::Tensor> sparse_dropout(const at::Tensor& indices,
                                                  const at::Tensor& values, double dropout,
                                                  const std::optional<at::Tensor>& seed) {
  TORCH_CHECK(indices.dim() == 2 && indices.device().is_cpu() &&
                  (indices.scalar_type() == at::kLong || indices.scalar_type() == at::kInt),
              "gat_pyg: indices must be a [D, nnz] int64 or int32 CPU tensor, got shape ",
              indices.sizes(), " of ", indices.scalar_type());
  const auto dtype = values.scalar_type();
  TORCH_CHECK(values.device().is_cpu() &&
                  (dtype == at::kFloat || dtype == at::kDouble || dtype == at::kBFloat16),
              "gat_pyg: values must be a float32, float64 or bfloat16 CPU tensor, got ", dtype);
  TORCH_CHECK(values.dim() >= 1 && values.size(0) == indices.size(1), "gat_pyg: values must "
              "have one row per column of indices (", indices.size(1), "), got shape ",
              values.sizes());
  const HashDropout drop = make_dropout(dropout, seed);
  const at::Tensor idx = indices.contiguous(), val = values.contiguous();
  const int64_t nnz = idx.size(1), dims = idx.size(0);
  // Values may carry dense trailing dimensions (hybrid COO): one mask entry per stored row.
  const int64_t block = nnz ? val.numel() / nnz : 0;
  if (!drop.active()) return {idx.clone(), val.clone()};

  // Three passes over fixed pieces (so the result does not depend on the thread count):
  // the mask and each piece's count, the pieces' offsets, the copy of the kept entries.
  constexpr int64_t kPiece = 1 << 14;
  const int64_t pieces = (nnz + kPiece - 1) / kPiece;
  std::vector<float> keep(static_cast<size_t>(nnz));   // 1 or 0 per entry
  std::vector<int64_t> offset(static_cast<size_t>(pieces) + 1, 0);
  const Isa isa = active_isa();
  at::parallel_for(0, pieces, 1, [&](int64_t first, int64_t last) {
    for (int64_t p = first; p < last; ++p) {
      const int64_t k0 = p * kPiece, m = std::min(nnz, k0 + kPiece) - k0;
      float* flags = keep.data() + k0;
      dispatch_isa<KeepFlags>(isa, drop, k0, m, flags);
      int64_t kept = 0;
      for (int64_t k = 0; k < m; ++k) kept += flags[k] != 0.0f;
      offset[p + 1] = kept;
    }
  });
  for (int64_t p = 0; p < pieces; ++p) offset[p + 1] += offset[p];
  const int64_t total = offset[pieces];
  at::Tensor out_idx = at::empty({dims, total}, idx.options());
  std::vector<int64_t> out_shape(val.sizes().begin(), val.sizes().end());
  out_shape[0] = total;
  at::Tensor out_val = at::empty(out_shape, val.options());
  const double scale = drop.scale();
  AT_DISPATCH_INDEX_TYPES(idx.scalar_type(), "sparse_dropout", [&] {
    AT_DISPATCH_FLOATING_TYPES_AND(at::kBFloat16, dtype, "sparse_dropout", [&] {
      using acc_t = at::opmath_type<scalar_t>;
      const index_t* in_i = idx.const_data_ptr<index_t>();
      const scalar_t* in_v = val.const_data_ptr<scalar_t>();
      index_t* o_i = out_idx.data_ptr<index_t>();
      scalar_t* o_v = out_val.data_ptr<scalar_t>();
      const acc_t s = static_cast<acc_t>(scale);
      at::parallel_for(0, pieces, 1, [&](int64_t first, int64_t last) {
        for (int64_t p = first; p < last; ++p)
          compact<acc_t>(in_i, in_v, keep.data(), nnz, dims, block, o_i, o_v, total, s,
                         p * kPiece, std::min(nnz, (p + 1) * kPiece), offset[p], offset[p + 1]);
      });
    });
  });
  return {out_idx, out_val};
}

// Autograd (autograd.h) of attention_dropout and feature_dropout: linear in x, so the
// backward is the same operator on the gradient, called through the dispatcher with autograd:
// recorded, and so differentiable, when the backward is (create_graph=True).
namespace {

using DropoutOp = c10::TypedOperatorHandle<decltype(feature_dropout)>;
const DropoutOp& attention_dropout_op() {
  static const auto op = typed_op<decltype(attention_dropout)>("gat_pyg::attention_dropout");
  return op;
}
const DropoutOp& feature_dropout_op() {
  static const auto op = typed_op<decltype(feature_dropout)>("gat_pyg::feature_dropout");
  return op;
}

template <const DropoutOp& (*op)()>
class DropoutFunction : public torch::autograd::Function<DropoutFunction<op>> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, double dropout,
                            const OptTensor& seed) {
    ctx->save_for_backward({or_undefined(seed)});
    ctx->saved_data["dropout"] = dropout;
    ctx->set_materialize_grads(false);
    return below_autograd(op(), x, dropout, seed);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    if (!grads[0].defined()) return variable_list(3);
    const at::Tensor seed = ctx->get_saved_variables()[0];
    return {op().call(grads[0].contiguous(), ctx->saved_data["dropout"].toDouble(),
                      present(seed)),
            at::Tensor(), at::Tensor()};
  }
};

template <const DropoutOp& (*op)()>
at::Tensor dropout_autograd(const at::Tensor& x, double dropout, const OptTensor& seed) {
  if (records(x)) return DropoutFunction<op>::apply(x, dropout, seed);
  return below_autograd(op(), x, dropout, seed);
}

}  // namespace
}  // namespace gat_pyg

TORCH_LIBRARY_IMPL(gat_pyg, CPU, m) {
  m.impl("attention_dropout", &gat_pyg::attention_dropout);
  m.impl("feature_dropout", &gat_pyg::feature_dropout);
  m.impl("sparse_dropout", &gat_pyg::sparse_dropout);
}

// sparse_dropout has none: values that need a gradient take the reference (dropout.py).
TORCH_LIBRARY_IMPL(gat_pyg, AutogradCPU, m) {
  m.impl("attention_dropout", &gat_pyg::dropout_autograd<&gat_pyg::attention_dropout_op>);
  m.impl("feature_dropout", &gat_pyg::dropout_autograd<&gat_pyg::feature_dropout_op>);
}

// Sparse input features (bag-of-words, ~1 % dense): dropout of the stored values and the
// product with a dense weight, the first layer's projection X @ W^T, with its backward.
//
// X is given as coordinates sorted by row (a coalesced torch.sparse COO matrix, or a CSR one
// with its rows expanded): row[k], col[k], values[k] for k < nnz. W is [O, F] (torch's Linear
// layout). Each sum has a fixed order whatever the thread count:
//
//   forward     out[n, :]       = sum over k with row[k] = n of values[k] * W^T[col[k], :]
//               (rows split among threads at row boundaries; each row written by one thread)
//   backward    grad_W^T[f, :]  = sum over k with col[k] = f of values[k] * grad_out[row[k], :]
//               (output channels split among threads; each thread walks all k in order, so no
//               transposed copy of X is needed and no two threads write one element)
//               grad_values[k]  = <grad_out[row[k], :], W^T[col[k], :]>
//   dropout     keep k iff hash(seed, k) clears p (the kernels' counter-based hash): the kept
//               coordinates in order, values scaled by 1 / (1 - p).
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <vector>

#include "ops.h"

namespace gat_pyg {
namespace {

void check_coordinates(const at::Tensor& row, const at::Tensor& col, const at::Tensor& values,
                       const at::Tensor& weight, int64_t num_rows) {
  for (const auto& [name, t] : {std::pair<const char*, const at::Tensor&>{"row", row},
                                {"col", col}}) {
    TORCH_CHECK(t.dim() == 1, "gat_pyg: ", name, " must be 1-D, got shape ", t.sizes());
    TORCH_CHECK(t.scalar_type() == at::kLong || t.scalar_type() == at::kInt, "gat_pyg: ", name,
                " must be int64 or int32, got ", t.scalar_type());
    TORCH_CHECK(t.device().is_cpu() && t.is_contiguous(), "gat_pyg: ", name,
                " must be a contiguous CPU tensor");
  }
  TORCH_CHECK(col.scalar_type() == row.scalar_type(), "gat_pyg: col must have the dtype of row (",
              row.scalar_type(), "), got ", col.scalar_type());
  const auto dtype = values.scalar_type();
  TORCH_CHECK(dtype == at::kFloat || dtype == at::kDouble,
              "gat_pyg: values must be float32 or float64, got ", dtype);
  check_tensor("values", values, dtype, {row.numel()});
  TORCH_CHECK(col.numel() == row.numel(), "gat_pyg: row and col must have one entry per stored "
              "value, got ", row.numel(), " and ", col.numel());
  check_tensor("weight", weight, dtype, {-1, -1});
  TORCH_CHECK(num_rows >= 0, "gat_pyg: num_rows must be >= 0, got ", num_rows);
  check_index_sorted("row", row);
  check_index_range("row", row, num_rows);
  check_index_range("col", col, weight.size(1));
}

// [begin, end) moved forward to row boundaries: a row belongs to the piece holding its first
// entry.
template <typename index_t>
void whole_rows(const index_t* row, int64_t nnz, int64_t& begin, int64_t& end) {
  while (begin > 0 && begin < end && row[begin] == row[begin - 1]) ++begin;
  while (end < nnz && end > 0 && row[end] == row[end - 1]) ++end;
}

// Forward, for whole rows in [begin, end): each row's sum is kept in a block of kBlock
// accumulators (registers, for a block of fixed size) and stored once, so consecutive entries of
// a row do not wait on each other's stores to out; a width that is not a multiple of kBlock ends
// with a narrower block of run-time size.
constexpr int64_t kBlock = 64;

template <int64_t kFixed, typename index_t, typename scalar_t>
GAT_PYG_INLINE void forward_block(const index_t* row, const index_t* col, const scalar_t* values,
                                  const scalar_t* wt, scalar_t* out, int64_t width, int64_t c0,
                                  int64_t n, int64_t begin, int64_t end) {
  const int64_t m = kFixed > 0 ? kFixed : n;
  for (int64_t k = begin; k < end;) {
    const index_t r = row[k];
    scalar_t acc[kBlock] = {};
    do {
      const scalar_t v = values[k];
      const scalar_t* w = wt + static_cast<int64_t>(col[k]) * width + c0;
#pragma omp simd
      for (int64_t c = 0; c < m; ++c) acc[c] += v * w[c];
      ++k;
    } while (k < end && row[k] == r);
    scalar_t* o = out + static_cast<int64_t>(r) * width + c0;
#pragma omp simd
    for (int64_t c = 0; c < m; ++c) o[c] = acc[c];
  }
}

struct Forward {   // out[row[k], :] = sum of values[k] * wt[col[k], :] for whole rows
  template <Isa isa, typename index_t, typename scalar_t>
  static GAT_PYG_INLINE void run(const index_t*& row, const index_t*& col,
                                 const scalar_t*& values, const scalar_t*& wt, scalar_t*& out,
                                 const int64_t& width, const int64_t& begin,
                                 const int64_t& end) {
    for (int64_t c0 = 0; c0 < width; c0 += kBlock) {
      const int64_t n = std::min(kBlock, width - c0);
      if (n == kBlock)
        forward_block<kBlock>(row, col, values, wt, out, width, c0, n, begin, end);
      else
        forward_block<0>(row, col, values, wt, out, width, c0, n, begin, end);
    }
  }
};

struct WeightGrad {   // gwt[col[k], c0:c1] += values[k] * grad[row[k], c0:c1] for every k
  template <Isa isa, typename index_t, typename scalar_t>
  static GAT_PYG_INLINE void run(const index_t*& row, const index_t*& col,
                                 const scalar_t*& values, const scalar_t*& grad, scalar_t*& gwt,
                                 const int64_t& width, const int64_t& nnz, const int64_t& c0,
                                 const int64_t& c1) {
    for (int64_t k = 0; k < nnz; ++k) {
      scalar_t* w = gwt + static_cast<int64_t>(col[k]) * width;
      const scalar_t* g = grad + static_cast<int64_t>(row[k]) * width;
      const scalar_t v = values[k];
#pragma omp simd
      for (int64_t c = c0; c < c1; ++c) w[c] += v * g[c];
    }
  }
};

struct ValuesGrad {   // gv[k] = <grad[row[k], :], wt[col[k], :]> for k in [begin, end)
  template <Isa isa, typename index_t, typename scalar_t>
  static GAT_PYG_INLINE void run(const index_t*& row, const index_t*& col, const scalar_t*& grad,
                                 const scalar_t*& wt, scalar_t*& gv, const int64_t& width,
                                 const int64_t& begin, const int64_t& end) {
    for (int64_t k = begin; k < end; ++k) {
      const scalar_t* g = grad + static_cast<int64_t>(row[k]) * width;
      const scalar_t* w = wt + static_cast<int64_t>(col[k]) * width;
      scalar_t sum = 0;
#pragma omp simd reduction(+ : sum)
      for (int64_t c = 0; c < width; ++c) sum += g[c] * w[c];
      gv[k] = sum;
    }
  }
};

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

at::Tensor sparse_linear(const at::Tensor& row, const at::Tensor& col, const at::Tensor& values,
                         const at::Tensor& weight, int64_t num_rows) {
  check_coordinates(row, col, values, weight, num_rows);
  const int64_t width = weight.size(0), nnz = row.numel();
  const at::Tensor wt = weight.t().contiguous();   // [F, O]: a stored value reads one row
  at::Tensor out = at::zeros({num_rows, width}, values.options());
  if (nnz == 0 || width == 0) return out;
  const Isa isa = active_isa();
  AT_DISPATCH_INDEX_TYPES(row.scalar_type(), "sparse_linear", [&] {
    AT_DISPATCH_FLOATING_TYPES(values.scalar_type(), "sparse_linear", [&] {
      constexpr bool wide = !std::is_same_v<scalar_t, double>;
      const index_t* r = row.const_data_ptr<index_t>();
      const index_t* c = col.const_data_ptr<index_t>();
      const scalar_t* v = values.const_data_ptr<scalar_t>();
      const scalar_t* w = wt.const_data_ptr<scalar_t>();
      scalar_t* o = out.data_ptr<scalar_t>();
      at::parallel_for(0, nnz, std::max<int64_t>(1, (1 << 16) / width),
                       [&](int64_t begin, int64_t end) {
        whole_rows(r, nnz, begin, end);
        if (begin < end) dispatch_isa<Forward, wide>(isa, r, c, v, w, o, width, begin, end);
      });
    });
  });
  return out;
}

std::tuple<at::Tensor, at::Tensor> sparse_linear_backward(
    const at::Tensor& grad_out, const at::Tensor& row, const at::Tensor& col,
    const at::Tensor& values, const at::Tensor& weight, std::array<bool, 2> output_mask) {
  const int64_t num_rows = grad_out.size(0);
  check_coordinates(row, col, values, weight, num_rows);
  check_tensor("grad_out", grad_out, values.scalar_type(), {-1, weight.size(0)});
  const int64_t width = weight.size(0), features = weight.size(1), nnz = row.numel();
  at::Tensor grad_values = output_mask[0] ? at::empty_like(values) : values.new_empty({0});
  at::Tensor grad_wt = output_mask[1] ? at::zeros({features, width}, weight.options())
                                      : weight.new_empty({0});
  const Isa isa = active_isa();
  AT_DISPATCH_INDEX_TYPES(row.scalar_type(), "sparse_linear_backward", [&] {
    AT_DISPATCH_FLOATING_TYPES(values.scalar_type(), "sparse_linear_backward", [&] {
      constexpr bool wide = !std::is_same_v<scalar_t, double>;
      const index_t* r = row.const_data_ptr<index_t>();
      const index_t* c = col.const_data_ptr<index_t>();
      const scalar_t* g = grad_out.const_data_ptr<scalar_t>();
      if (output_mask[1] && nnz > 0 && width > 0) {
        const scalar_t* v = values.const_data_ptr<scalar_t>();
        scalar_t* gw = grad_wt.data_ptr<scalar_t>();
        // Slices of at least 16 channels (a cache line of float32), at most one per thread.
        const int64_t slices = std::max<int64_t>(
            1, std::min<int64_t>(at::get_num_threads(), width / 16));
        at::parallel_for(0, slices, 1, [&](int64_t first, int64_t last) {
          for (int64_t s = first; s < last; ++s) {
            int64_t c0 = width * s / slices, c1 = width * (s + 1) / slices;
            dispatch_isa<WeightGrad, wide>(isa, r, c, v, g, gw, width, nnz, c0, c1);
          }
        });
      }
      if (output_mask[0] && nnz > 0) {
        const at::Tensor wt = weight.t().contiguous();
        const scalar_t* w = wt.const_data_ptr<scalar_t>();
        scalar_t* gv = grad_values.data_ptr<scalar_t>();
        at::parallel_for(0, nnz, std::max<int64_t>(1, (1 << 16) / std::max<int64_t>(width, 1)),
                         [&](int64_t begin, int64_t end) {
          dispatch_isa<ValuesGrad, wide>(isa, r, c, g, w, gv, width, begin, end);
        });
      }
    });
  });
  return {grad_values, output_mask[1] ? grad_wt.t().contiguous() : grad_wt};
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

}  // namespace gat_pyg

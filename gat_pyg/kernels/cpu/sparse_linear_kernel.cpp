// Sparse input features (bag-of-words, ~1 % dense): the product with a dense weight, the first
// layer's projection X @ W^T, with its backward (their dropout is in dropout_kernel.cpp).
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
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <vector>

#include <torch/library.h>

#include "autograd.h"
#include "common.h"

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

// out = the transpose of the row-major [rows, cols] matrix `in` ([cols, rows], row-major), by
// ATen's blocked copy of a transposed view, into memory the caller owns.
template <typename scalar_t>
void transpose(const scalar_t* in, int64_t rows, int64_t cols, scalar_t* out,
               const at::TensorOptions& options) {
  at::from_blob(out, {cols, rows}, options)
      .copy_(at::from_blob(const_cast<scalar_t*>(in), {rows, cols}, options).t());
}

// The transposed weight W^T [F, O] and the accumulator of grad_W^T [F, O], kept by the calling
// thread from one call to the next (attend.h's thread_scratch; released beyond
// kKeepScratchBytes). Both are ~1 MB on CiteSeer: allocated afresh per call, glibc hands back
// freshly mapped pages that fault on first write (measured: ~600 page faults, ~1 ms, per
// CiteSeer GATv2 training step), where a kept buffer is already resident.
template <typename scalar_t>
struct LinearScratch {
  Buffer<scalar_t> wt, grad_wt;
  void trim(int64_t bytes) { wt.trim(bytes), grad_wt.trim(bytes); }
};

template <typename scalar_t>
const scalar_t* transposed_weight(LinearScratch<scalar_t>& scratch, const at::Tensor& weight) {
  scalar_t* wt = scratch.wt.ensure(weight.numel());
  transpose(weight.const_data_ptr<scalar_t>(), weight.size(0), weight.size(1), wt,
            weight.options());
  return wt;
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

}  // namespace

at::Tensor sparse_linear(const at::Tensor& row, const at::Tensor& col, const at::Tensor& values,
                         const at::Tensor& weight, int64_t num_rows) {
  check_coordinates(row, col, values, weight, num_rows);
  const int64_t width = weight.size(0), nnz = row.numel();
  at::Tensor out = at::zeros({num_rows, width}, values.options());
  if (nnz == 0 || width == 0) return out;
  const Isa isa = active_isa();
  AT_DISPATCH_INDEX_TYPES(row.scalar_type(), "sparse_linear", [&] {
    AT_DISPATCH_FLOATING_TYPES(values.scalar_type(), "sparse_linear", [&] {
      constexpr bool wide = !std::is_same_v<scalar_t, double>;
      auto& scratch = thread_scratch<LinearScratch<scalar_t>>();
      const index_t* r = row.const_data_ptr<index_t>();
      const index_t* c = col.const_data_ptr<index_t>();
      const scalar_t* v = values.const_data_ptr<scalar_t>();
      const scalar_t* w = transposed_weight(scratch, weight);   // a stored value reads a row
      scalar_t* o = out.data_ptr<scalar_t>();
      at::parallel_for(0, nnz, std::max<int64_t>(1, (1 << 16) / width),
                       [&](int64_t begin, int64_t end) {
        whole_rows(r, nnz, begin, end);
        if (begin < end) dispatch_isa<Forward, wide>(isa, r, c, v, w, o, width, begin, end);
      });
      scratch.trim(kKeepScratchBytes);
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
  at::Tensor grad_weight = output_mask[1] ? at::empty_like(weight) : weight.new_empty({0});
  if (output_mask[1] && (nnz == 0 || width == 0)) grad_weight.zero_();
  const Isa isa = active_isa();
  AT_DISPATCH_INDEX_TYPES(row.scalar_type(), "sparse_linear_backward", [&] {
    AT_DISPATCH_FLOATING_TYPES(values.scalar_type(), "sparse_linear_backward", [&] {
      constexpr bool wide = !std::is_same_v<scalar_t, double>;
      auto& scratch = thread_scratch<LinearScratch<scalar_t>>();
      const index_t* r = row.const_data_ptr<index_t>();
      const index_t* c = col.const_data_ptr<index_t>();
      const scalar_t* g = grad_out.const_data_ptr<scalar_t>();
      if (output_mask[1] && nnz > 0 && width > 0) {
        const scalar_t* v = values.const_data_ptr<scalar_t>();
        scalar_t* gw = scratch.grad_wt.ensure(features * width);   // grad_W^T, [F, O]
        std::fill(gw, gw + features * width, scalar_t(0));
        // Slices of at least 16 channels (a cache line of float32), at most one per thread.
        const int64_t slices = std::max<int64_t>(
            1, std::min<int64_t>(at::get_num_threads(), width / 16));
        at::parallel_for(0, slices, 1, [&](int64_t first, int64_t last) {
          for (int64_t s = first; s < last; ++s) {
            int64_t c0 = width * s / slices, c1 = width * (s + 1) / slices;
            dispatch_isa<WeightGrad, wide>(isa, r, c, v, g, gw, width, nnz, c0, c1);
          }
        });
        transpose(static_cast<const scalar_t*>(gw), features, width,
                  grad_weight.data_ptr<scalar_t>(), weight.options());
      }
      if (output_mask[0] && nnz > 0) {
        const scalar_t* w = transposed_weight(scratch, weight);
        scalar_t* gv = grad_values.data_ptr<scalar_t>();
        at::parallel_for(0, nnz, std::max<int64_t>(1, (1 << 16) / std::max<int64_t>(width, 1)),
                         [&](int64_t begin, int64_t end) {
          dispatch_isa<ValuesGrad, wide>(isa, r, c, g, w, gv, width, begin, end);
        });
      }
      scratch.trim(kKeepScratchBytes);
    });
  });
  return {grad_values, grad_weight};
}

// Autograd (autograd.h): backward = sparse_linear_backward with the saved inputs.
namespace {

// num_rows as the schema's SymInt: under torch.compile's tracing it may be symbolic.
using Signature = at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&,
                             const at::Tensor&, c10::SymInt);
using BackwardSignature = decltype(sparse_linear_backward);

class SparseLinearFunction : public torch::autograd::Function<SparseLinearFunction> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& row, const at::Tensor& col,
                            const at::Tensor& values, const at::Tensor& weight,
                            c10::SymInt num_rows) {
    static const auto op = typed_op<Signature>("gat_pyg::sparse_linear");
    ctx->save_for_backward({row, col, values, weight});
    ctx->saved_data["needs"] = needs_grad(row, col, values, weight, num_rows);
    ctx->saved_data["num_rows"] = num_rows;
    ctx->set_materialize_grads(false);
    return below_autograd(op, row, col, values, weight, std::move(num_rows));
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    static const auto op = typed_op<BackwardSignature>("gat_pyg::sparse_linear_backward");
    if (!grads[0].defined()) return variable_list(5);
    const auto saved = ctx->get_saved_variables();
    const auto needs = ctx->saved_data["needs"].toBoolList();
    if (at::GradMode::is_enabled())
      return reference_vjp("sparse_linear",
                           {saved[0], saved[1], saved[2], saved[3], ctx->saved_data["num_rows"]},
                           grads, needs);
    const std::array<bool, 2> mask{needs[2], needs[3]};
    return gradients(5, 2, mask, op.call(grads[0].contiguous(), saved[0], saved[1], saved[2],
                                         saved[3], mask));
  }
};

at::Tensor sparse_linear_autograd(const at::Tensor& row, const at::Tensor& col,
                                  const at::Tensor& values, const at::Tensor& weight,
                                  c10::SymInt num_rows) {
  if (records(values, weight))
    return SparseLinearFunction::apply(row, col, values, weight, std::move(num_rows));
  static const auto op = typed_op<Signature>("gat_pyg::sparse_linear");
  return below_autograd(op, row, col, values, weight, std::move(num_rows));
}

}  // namespace
}  // namespace gat_pyg

TORCH_LIBRARY_IMPL(gat_pyg, CPU, m) {
  m.impl("sparse_linear", &gat_pyg::sparse_linear);
  m.impl("sparse_linear_backward", &gat_pyg::sparse_linear_backward);
}

TORCH_LIBRARY_IMPL(gat_pyg, AutogradCPU, m) {
  m.impl("sparse_linear", &gat_pyg::sparse_linear_autograd);
}

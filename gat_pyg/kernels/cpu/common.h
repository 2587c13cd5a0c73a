// What the CPU kernels share: the graph's tensors, argument checks and the hash dropout. The
// operators' schemas are defined in Python (gat_pyg/kernels/*.py); each <op>_kernel.cpp here
// implements its operators and registers them as their CPU kernels (TORCH_LIBRARY_IMPL). The
// Python functions check arguments at the public boundary; these cheap checks are the second
// line, for callers of torch.ops.gat_pyg.* directly, and they also verify the graph's index
// contents, since a wrong index would read out of bounds.
#pragma once

#include <ATen/core/Tensor.h>

#include <optional>
#include <tuple>

#include "attend.h"

namespace gat_pyg {

// The graph's tensors. The transposed order (t_ptr, t_col, t_perm) is only read by backward,
// so the forward operators take it as optional (inference need not build it); undefined here
// when absent.
struct GraphTensors {
  at::Tensor ptr, src, t_ptr, t_col, t_perm;
  int64_t num_src;
};

GraphTensors graph_tensors(const at::Tensor& ptr, const at::Tensor& src,
                           const std::optional<at::Tensor>& t_ptr,
                           const std::optional<at::Tensor>& t_col,
                           const std::optional<at::Tensor>& t_perm, int64_t num_src);

// Shapes, dtype, device and contiguity of the graph's tensors, and their contents: ptr (and
// t_ptr) start at 0, end at E and never decrease; src, t_col, t_perm are in range. With
// `backward` the transposed order must be present and is checked against the sorted one
// (src[t_perm[k]] is the row of t_ptr that k belongs to, t_perm[k] lies in row t_col[k]).
void check_graph(const GraphTensors& graph, bool backward);

// A floating tensor of `dtype`, on the CPU, contiguous, whose sizes equal `sizes` (-1: any).
void check_tensor(const char* name, const at::Tensor& t, at::ScalarType dtype,
                  at::IntArrayRef sizes);

// A dropout: p in [0, 1]; a seed (one integer, on the CPU) is needed if p > 0. The names are
// the arguments' in error messages.
HashDropout make_dropout(double p, const std::optional<at::Tensor>& seed,
                         const char* name = "dropout", const char* seed_name = "seed");

// x * keep / (1 - p) elementwise, the mask drawn from `dropout` at x's flat index (`paired`:
// two elements per hash, see HashDropout::apply_paired): a new contiguous tensor, or in place
// on a contiguous x.
at::Tensor hash_dropout(const at::Tensor& x, const HashDropout& dropout, bool paired);
void hash_dropout_(at::Tensor& x, const HashDropout& dropout, bool paired);

// Every entry of the 1-D int64/int32 `index` lies in [0, bound) / never decreases; the error
// names the argument.
void check_index_range(const char* name, const at::Tensor& index, int64_t bound);
void check_index_sorted(const char* name, const at::Tensor& index);

template <typename index_t>
Graph<index_t> graph_view(const GraphTensors& g) {
  auto data = [](const at::Tensor& t) {
    return t.defined() ? t.const_data_ptr<index_t>() : nullptr;
  };
  return Graph<index_t>{data(g.ptr),   data(g.src),   data(g.t_ptr), data(g.t_col),
                        data(g.t_perm), g.ptr.numel() - 1, g.num_src,  g.src.numel()};
}

template <typename T>
T* output_or_null(at::Tensor& t) {
  return t.numel() ? t.data_ptr<T>() : nullptr;
}

template <typename T>
const T* const_data_or_null(const std::optional<at::Tensor>& t) {
  return t.has_value() && t->defined() ? t->const_data_ptr<T>() : nullptr;
}

}  // namespace gat_pyg

// The native operators (schemas in ops.cpp) and the argument checks they share. The Python
// wrappers in gat_pyg/kernels/attention.py check every argument first, with messages naming
// it; these checks are the second line, for callers of torch.ops.gat_pyg.* directly, and they
// also verify the graph's index contents, since a wrong index would read out of bounds.
#pragma once

#include <ATen/core/Tensor.h>

#include <optional>
#include <tuple>

#include "attention.h"

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

std::tuple<at::Tensor, at::Tensor> gat_forward(
    const at::Tensor& ptr, const at::Tensor& src, const std::optional<at::Tensor>& t_ptr,
    const std::optional<at::Tensor>& t_col, const std::optional<at::Tensor>& t_perm,
    const at::Tensor& s_src,
    const std::optional<at::Tensor>& s_dst, const std::optional<at::Tensor>& s_edge,
    const at::Tensor& h_src, double negative_slope, double dropout,
    const std::optional<at::Tensor>& seed, double message_dropout,
    const std::optional<at::Tensor>& message_seed);

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> gat_backward(
    const at::Tensor& grad_out, const std::optional<at::Tensor>& grad_alpha,
    const at::Tensor& ptr, const at::Tensor& src, const at::Tensor& t_ptr,
    const at::Tensor& t_col, const at::Tensor& t_perm, const at::Tensor& s_src,
    const std::optional<at::Tensor>& s_dst, const std::optional<at::Tensor>& s_edge,
    const at::Tensor& h_src, const at::Tensor& alpha, double negative_slope, double dropout,
    const std::optional<at::Tensor>& seed, std::array<bool, 4> output_mask,
    double message_dropout, const std::optional<at::Tensor>& message_seed);

std::tuple<at::Tensor, at::Tensor> gatv2_forward(
    const at::Tensor& ptr, const at::Tensor& src, const std::optional<at::Tensor>& t_ptr,
    const std::optional<at::Tensor>& t_col, const std::optional<at::Tensor>& t_perm,
    const at::Tensor& x_l,
    const at::Tensor& x_r, const at::Tensor& att, const std::optional<at::Tensor>& edge_attr,
    const std::optional<at::Tensor>& w_edge, const at::Tensor& h_src, double negative_slope,
    double dropout, const std::optional<at::Tensor>& seed, double message_dropout,
    const std::optional<at::Tensor>& message_seed);

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor>
gatv2_backward(const at::Tensor& grad_out, const std::optional<at::Tensor>& grad_alpha,
               const at::Tensor& ptr, const at::Tensor& src, const at::Tensor& t_ptr,
               const at::Tensor& t_col, const at::Tensor& t_perm, const at::Tensor& x_l,
               const at::Tensor& x_r, const at::Tensor& att,
               const std::optional<at::Tensor>& edge_attr,
               const std::optional<at::Tensor>& w_edge, const at::Tensor& h_src,
               const at::Tensor& alpha, double negative_slope, double dropout,
               const std::optional<at::Tensor>& seed, std::array<bool, 6> output_mask,
               double message_dropout, const std::optional<at::Tensor>& message_seed,
               bool merge_h_src);

at::Tensor attention_dropout(const at::Tensor& alpha, double dropout,
                             const std::optional<at::Tensor>& seed);

at::Tensor feature_dropout(const at::Tensor& x, double dropout,
                           const std::optional<at::Tensor>& seed);

at::Tensor head_scores(const at::Tensor& x, const at::Tensor& att);

std::tuple<at::Tensor, at::Tensor> head_scores_backward(const at::Tensor& grad,
                                                        const at::Tensor& x,
                                                        const at::Tensor& att,
                                                        std::array<bool, 2> output_mask);

at::Tensor sparse_linear(const at::Tensor& row, const at::Tensor& col, const at::Tensor& values,
                         const at::Tensor& weight, int64_t num_rows);

std::tuple<at::Tensor, at::Tensor> sparse_linear_backward(
    const at::Tensor& grad_out, const at::Tensor& row, const at::Tensor& col,
    const at::Tensor& values, const at::Tensor& weight, std::array<bool, 2> output_mask);

std::tuple<at::Tensor, at::Tensor> sparse_dropout(const at::Tensor& indices,
                                                  const at::Tensor& values, double dropout,
                                                  const std::optional<at::Tensor>& seed);

}  // namespace gat_pyg

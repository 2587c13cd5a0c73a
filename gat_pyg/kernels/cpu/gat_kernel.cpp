// GAT's score (Velickovic et al. 2018, arXiv 1710.10903, eq. 3; PyG's GATConv.edge_update):
//
//   raw[e,h]   = s_src[j,h] + s_dst[i,h] + s_edge[e,h]      (each optional term only if given)
//   score[e,h] = LeakyReLU(raw[e,h], negative_slope)
//
// where s_src = <a_src, W x_j> and s_dst = <a_dst, W x_i> are the per-node halves of
// a^T [W x_i || W x_j] (computed by the layer once per node) and s_edge = <a_edge, W_e e_ij>.
// Backward: grad_raw = grad_score * (raw > 0 ? 1 : negative_slope); grad_s_edge = grad_raw,
// grad_s_dst[i] = sum over row i, grad_s_src[j] = sum over the edges leaving j.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>

#include <torch/library.h>

#include "autograd.h"
#include "common.h"

namespace gat_pyg {
namespace {

template <typename scalar_t, typename index_t>
class GATScore {
 public:
  using acc_t = at::opmath_type<scalar_t>;

  GATScore(const scalar_t* s_src, const scalar_t* s_dst, const scalar_t* s_edge,
           double negative_slope)
      : s_src_(s_src), s_dst_(s_dst), s_edge_(s_edge),
        slope_(static_cast<acc_t>(negative_slope)) {}

  // Backward outputs; null when not wanted.
  scalar_t* grad_s_src = nullptr;
  scalar_t* grad_s_dst = nullptr;
  scalar_t* grad_s_edge = nullptr;

  struct Scratch {
    Buffer<acc_t> acc;   // per-row sums: grad_s_dst, or grad_s_src in the source pass
    void trim(int64_t bytes) { acc.trim(bytes); }
  };

  // w[e, h] = LeakyReLU(raw[e, h]) over the block's edges.
  template <typename D>
  GAT_PYG_INLINE void scores(Scratch&, const D& d, const Graph<index_t>& g,
                             const Block& b, acc_t* w) const {
    if (s_dst_ && s_edge_) return scores_with<true, true>(d, g, b, w);
    if (s_dst_) return scores_with<true, false>(d, g, b, w);
    if (s_edge_) return scores_with<false, true>(d, g, b, w);
    scores_with<false, false>(d, g, b, w);
  }

  bool wants_row_pass() const { return grad_s_src || grad_s_dst || grad_s_edge; }
  bool wants_source_pass() const { return grad_s_src != nullptr; }
  void prepare(int64_t /*num_blocks*/) {}

  // Turns grad_score into grad_raw in place (the source pass reads grad_raw for s_src);
  // grad_s_edge = grad_raw, grad_s_dst = its sum over the row.
  template <typename D>
  GAT_PYG_INLINE void row_backward(Scratch& st, const D& d, const Graph<index_t>& g,
                                   const Block& b, int64_t /*block_index*/,
                                   acc_t* grad) const {
    if (s_dst_ && s_edge_) raw_grad_with<true, true>(d, g, b, grad);
    else if (s_dst_) raw_grad_with<true, false>(d, g, b, grad);
    else if (s_edge_) raw_grad_with<false, true>(d, g, b, grad);
    else raw_grad_with<false, false>(d, g, b, grad);
    const int64_t H = d.H(), n = b.edges() * H;
    if (grad_s_edge) {
      scalar_t* out = grad_s_edge + b.e0 * H;
#pragma omp simd
      for (int64_t k = 0; k < n; ++k) out[k] = static_cast<scalar_t>(grad[k]);
    }
    if (grad_s_dst) {
      acc_t* sum = st.acc.ensure(b.rows() * H);
      fill(sum, b.rows() * H, acc_t(0));
      reduce_rows(b, H, grad, sum, [](acc_t total, acc_t v) { return total + v; });
      scalar_t* out = grad_s_dst + b.r0 * H;
#pragma omp simd
      for (int64_t k = 0; k < b.rows() * H; ++k) out[k] = static_cast<scalar_t>(sum[k]);
    }
  }

  // grad_s_src[j] = the sum of grad_raw over the edges leaving j.
  template <typename D>
  GAT_PYG_INLINE void source_backward(Scratch& st, const D& d,
                                      const Graph<index_t>& g, const Block& b,
                                      const acc_t* grad) const {
    if (!grad_s_src) return;
    const int64_t H = d.H(), edges = b.edges();
    acc_t* sum = st.acc.ensure(b.rows() * H);
    fill(sum, b.rows() * H, acc_t(0));
    const index_t* perm = g.t_perm + b.e0;
    for (int64_t k = 0; k < edges; ++k) {
      acc_t* target = sum + static_cast<int64_t>(b.row_of[k]) * H;
      const acc_t* v = grad + static_cast<int64_t>(perm[k]) * H;
#pragma omp simd
      for (int64_t h = 0; h < H; ++h) target[h] += v[h];
    }
    scalar_t* out = grad_s_src + b.r0 * H;
#pragma omp simd
    for (int64_t k = 0; k < b.rows() * H; ++k) out[k] = static_cast<scalar_t>(sum[k]);
  }

  void finish() {}

 private:
  // (s_src + s_dst) + s_edge, PyG's order of additions, for edge e (its destination-sorted
  // position) from j to i, head h.
  template <bool kDst, bool kEdge, typename D>
  GAT_PYG_INLINE acc_t raw(const D& d, int64_t j, int64_t i, int64_t e,
                           int64_t h) const {
    acc_t v = static_cast<acc_t>(s_src_[j * d.H() + h]);
    if constexpr (kDst) v += static_cast<acc_t>(s_dst_[i * d.H() + h]);
    if constexpr (kEdge) v += static_cast<acc_t>(s_edge_[e * d.H() + h]);
    return v;
  }

  template <bool kDst, bool kEdge, typename D>
  GAT_PYG_INLINE void scores_with(const D& d, const Graph<index_t>& g,
                                  const Block& b, acc_t* w) const {
    const int64_t H = d.H(), edges = b.edges();
    const index_t* src = g.src + b.e0;
    if constexpr (D::kHeads == 1) {
#pragma omp simd
      for (int64_t e = 0; e < edges; ++e)
        w[e] = leaky_relu(raw<kDst, kEdge>(d, src[e], b.r0 + b.row_of[e], b.e0 + e, 0), slope_);
    } else {
      for (int64_t e = 0; e < edges; ++e) {
        if (b.e0 + e + kPrefetchDistance < g.num_edges)
          __builtin_prefetch(s_src_ + static_cast<int64_t>(src[e + kPrefetchDistance]) * H);
        const int64_t j = src[e], i = b.r0 + b.row_of[e];
#pragma omp simd
        for (int64_t h = 0; h < H; ++h)
          w[e * H + h] = leaky_relu(raw<kDst, kEdge>(d, j, i, b.e0 + e, h), slope_);
      }
    }
  }

  template <bool kDst, bool kEdge, typename D>
  GAT_PYG_INLINE void raw_grad_with(const D& d, const Graph<index_t>& g,
                                    const Block& b, acc_t* grad) const {
    const int64_t H = d.H(), edges = b.edges();
    const index_t* src = g.src + b.e0;
    if constexpr (D::kHeads == 1) {
#pragma omp simd
      for (int64_t e = 0; e < edges; ++e)
        grad[e] *= leaky_relu_grad(raw<kDst, kEdge>(d, src[e], b.r0 + b.row_of[e], b.e0 + e, 0),
                                   slope_);
    } else {
      for (int64_t e = 0; e < edges; ++e) {
        const int64_t j = src[e], i = b.r0 + b.row_of[e];
#pragma omp simd
        for (int64_t h = 0; h < H; ++h)
          grad[e * H + h] *= leaky_relu_grad(raw<kDst, kEdge>(d, j, i, b.e0 + e, h), slope_);
      }
    }
  }

  const scalar_t* s_src_;
  const scalar_t* s_dst_;
  const scalar_t* s_edge_;
  acc_t slope_;
};

struct Shapes {
  int64_t num_dst, num_src, edges, heads, channels;
};

Shapes check_gat(const GraphTensors& graph, const at::Tensor& s_src,
                 const std::optional<at::Tensor>& s_dst,
                 const std::optional<at::Tensor>& s_edge, const at::Tensor& h_src,
                 bool backward) {
  TORCH_CHECK(h_src.dim() == 3, "gat_pyg: h_src must be [N_src, H, C], got shape ",
              h_src.sizes());
  const auto dtype = h_src.scalar_type();
  TORCH_CHECK(dtype == at::kFloat || dtype == at::kDouble || dtype == at::kBFloat16,
              "gat_pyg: h_src must be float32, float64 or bfloat16, got ", dtype);
  const Shapes s{graph.ptr.numel() - 1, h_src.size(0), graph.src.numel(), h_src.size(1),
                 h_src.size(2)};
  check_tensor("h_src", h_src, dtype, {s.num_src, s.heads, s.channels});
  check_tensor("s_src", s_src, dtype, {s.num_src, s.heads});
  if (s_dst.has_value()) check_tensor("s_dst", *s_dst, dtype, {s.num_dst, s.heads});
  if (s_edge.has_value()) check_tensor("s_edge", *s_edge, dtype, {s.edges, s.heads});
  check_graph(graph, backward);
  return s;
}

}  // namespace

std::tuple<at::Tensor, at::Tensor> gat_forward(
    const at::Tensor& ptr, const at::Tensor& src, const std::optional<at::Tensor>& t_ptr,
    const std::optional<at::Tensor>& t_col, const std::optional<at::Tensor>& t_perm,
    const at::Tensor& s_src, const std::optional<at::Tensor>& s_dst,
    const std::optional<at::Tensor>& s_edge, const at::Tensor& h_src, double negative_slope,
    double dropout, const std::optional<at::Tensor>& seed, double message_dropout,
    const std::optional<at::Tensor>& message_seed) {
  const auto graph = graph_tensors(ptr, src, t_ptr, t_col, t_perm, h_src.size(0));
  const auto s = check_gat(graph, s_src, s_dst, s_edge, h_src, false);
  const auto mask = make_dropout(dropout, seed);
  // The aggregation reads h_src with message dropout; the scores (s_src) do not see it.
  const auto message = make_dropout(message_dropout, message_seed, "message_dropout",
                                    "message_seed");
  const auto values = message.active() ? hash_dropout(h_src, message, true) : h_src;
  auto out = at::empty({s.num_dst, s.heads, s.channels}, h_src.options());
  auto alpha = at::empty({s.edges, s.heads}, h_src.options());
  AT_DISPATCH_FLOATING_TYPES_AND(at::kBFloat16, h_src.scalar_type(), "gat_forward", [&] {
    AT_DISPATCH_INDEX_TYPES(ptr.scalar_type(), "gat_forward", [&] {
      GATScore<scalar_t, index_t> score(s_src.const_data_ptr<scalar_t>(),
                                        const_data_or_null<scalar_t>(s_dst),
                                        const_data_or_null<scalar_t>(s_edge), negative_slope);
      attention_forward(graph_view<index_t>(graph), score,
                        values.const_data_ptr<scalar_t>(), s.heads, s.channels, mask,
                        out.data_ptr<scalar_t>(), alpha.data_ptr<scalar_t>());
    });
  });
  return {out, alpha};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> gat_backward(
    const at::Tensor& grad_out, const std::optional<at::Tensor>& grad_alpha,
    const at::Tensor& ptr, const at::Tensor& src, const at::Tensor& t_ptr,
    const at::Tensor& t_col, const at::Tensor& t_perm, const at::Tensor& s_src,
    const std::optional<at::Tensor>& s_dst, const std::optional<at::Tensor>& s_edge,
    const at::Tensor& h_src, const at::Tensor& alpha, double negative_slope, double dropout,
    const std::optional<at::Tensor>& seed, std::array<bool, 4> output_mask,
    double message_dropout, const std::optional<at::Tensor>& message_seed) {
  const auto graph = graph_tensors(ptr, src, t_ptr, t_col, t_perm, h_src.size(0));
  const auto s = check_gat(graph, s_src, s_dst, s_edge, h_src, true);
  const auto dtype = h_src.scalar_type();
  check_tensor("grad_out", grad_out, dtype, {s.num_dst, s.heads, s.channels});
  check_tensor("alpha", alpha, dtype, {s.edges, s.heads});
  if (grad_alpha.has_value()) check_tensor("grad_alpha", *grad_alpha, dtype, {s.edges, s.heads});
  const auto mask = make_dropout(dropout, seed);
  const auto options = h_src.options();
  // A gradient that is not wanted (or whose input is absent) is an empty tensor.
  auto wanted = [&](bool want, at::IntArrayRef sizes) {
    return want ? at::empty(sizes, options) : at::empty({0}, options);
  };
  auto grad_s_src = wanted(output_mask[0], {s.num_src, s.heads});
  auto grad_s_dst = wanted(output_mask[1] && s_dst.has_value(), {s.num_dst, s.heads});
  auto grad_s_edge = wanted(output_mask[2] && s_edge.has_value(), {s.edges, s.heads});
  auto grad_h_src = wanted(output_mask[3], {s.num_src, s.heads, s.channels});
  // With message dropout the row pass (the scores' gradients) reads the dropped values, and
  // grad_h_src gets the same mask and scale.
  const auto message = make_dropout(message_dropout, message_seed, "message_dropout",
                                    "message_seed");
  const bool scores = output_mask[0] || output_mask[1] || output_mask[2];
  const auto values = message.active() && scores ? hash_dropout(h_src, message, true) : h_src;
  AT_DISPATCH_FLOATING_TYPES_AND(at::kBFloat16, dtype, "gat_backward", [&] {
    AT_DISPATCH_INDEX_TYPES(ptr.scalar_type(), "gat_backward", [&] {
      GATScore<scalar_t, index_t> score(s_src.const_data_ptr<scalar_t>(),
                                        const_data_or_null<scalar_t>(s_dst),
                                        const_data_or_null<scalar_t>(s_edge), negative_slope);
      // An empty gradient (not wanted, or nothing to write) is a null pointer: its work is
      // skipped.
      score.grad_s_src = output_or_null<scalar_t>(grad_s_src);
      score.grad_s_dst = output_or_null<scalar_t>(grad_s_dst);
      score.grad_s_edge = output_or_null<scalar_t>(grad_s_edge);
      attention_backward(graph_view<index_t>(graph), score,
                         values.const_data_ptr<scalar_t>(), grad_out.const_data_ptr<scalar_t>(),
                         const_data_or_null<scalar_t>(grad_alpha), alpha.const_data_ptr<scalar_t>(),
                         s.heads, s.channels, mask,
                         output_or_null<scalar_t>(grad_h_src));
    });
  });
  if (grad_h_src.numel()) hash_dropout_(grad_h_src, message, true);
  return {grad_s_src, grad_s_dst, grad_s_edge, grad_h_src};
}

// Autograd (autograd.h): backward = gat_backward with the saved inputs, the attention before
// dropout and the seeds (the masks are regenerated, never stored).
namespace {

using Signature = decltype(gat_forward);
using BackwardSignature = decltype(gat_backward);

class GATFunction : public torch::autograd::Function<GATFunction> {
 public:
  static variable_list forward(AutogradContext* ctx, const at::Tensor& ptr,
                               const at::Tensor& src, const OptTensor& t_ptr,
                               const OptTensor& t_col, const OptTensor& t_perm,
                               const at::Tensor& s_src, const OptTensor& s_dst,
                               const OptTensor& s_edge, const at::Tensor& h_src,
                               double negative_slope, double dropout, const OptTensor& seed,
                               double message_dropout, const OptTensor& message_seed) {
    static const auto op = typed_op<Signature>("gat_pyg::gat_forward");
    auto [out, alpha] = below_autograd(op, ptr, src, t_ptr, t_col, t_perm, s_src, s_dst, s_edge,
                                       h_src, negative_slope, dropout, seed, message_dropout,
                                       message_seed);
    ctx->save_for_backward({ptr, src, or_undefined(t_ptr), or_undefined(t_col),
                            or_undefined(t_perm), s_src, or_undefined(s_dst),
                            or_undefined(s_edge), h_src, or_undefined(seed),
                            or_undefined(message_seed), alpha});
    save_settings(ctx, {negative_slope, dropout, message_dropout});
    ctx->saved_data["needs"] =
        needs_grad(ptr, src, t_ptr, t_col, t_perm, s_src, s_dst, s_edge, h_src, negative_slope,
                   dropout, seed, message_dropout, message_seed);
    // An unused alpha gets no gradient rather than an [E, H] tensor of zeros.
    ctx->set_materialize_grads(false);
    return {out, alpha};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    static const auto op = typed_op<BackwardSignature>("gat_pyg::gat_backward");
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &ptr = saved[0], &src = saved[1], &t_ptr = saved[2], &t_col = saved[3],
                     &t_perm = saved[4], &s_src = saved[5], &s_dst = saved[6],
                     &s_edge = saved[7], &h_src = saved[8], &seed = saved[9],
                     &message_seed = saved[10], &alpha = saved[11];
    const auto s = saved_settings(ctx);
    const auto needs = ctx->saved_data["needs"].toBoolList();
    if (at::GradMode::is_enabled())
      return reference_vjp("gat_forward",
                           {ptr, src, argument(t_ptr), argument(t_col), argument(t_perm), s_src,
                            argument(s_dst), argument(s_edge), h_src, s.negative_slope,
                            s.dropout, argument(seed), s.message_dropout,
                            argument(message_seed)},
                           grads, needs);
    check_transposed(t_ptr);
    const std::array<bool, 4> mask{needs[5], needs[6], needs[7], needs[8]};
    return gradients(needs.size(), 5, mask, op.call(
        upstream(grads[0], ptr, h_src), contiguous(grads[1]), ptr, src, t_ptr, t_col, t_perm,
        s_src, present(s_dst), present(s_edge), h_src, alpha, s.negative_slope, s.dropout,
        present(seed), mask, s.message_dropout, present(message_seed)));
  }
};

std::tuple<at::Tensor, at::Tensor> gat_forward_autograd(
    const at::Tensor& ptr, const at::Tensor& src, const OptTensor& t_ptr,
    const OptTensor& t_col, const OptTensor& t_perm, const at::Tensor& s_src,
    const OptTensor& s_dst, const OptTensor& s_edge, const at::Tensor& h_src,
    double negative_slope, double dropout, const OptTensor& seed, double message_dropout,
    const OptTensor& message_seed) {
  if (records(s_src, s_dst, s_edge, h_src)) {
    auto outputs = GATFunction::apply(ptr, src, t_ptr, t_col, t_perm, s_src, s_dst, s_edge,
                                      h_src, negative_slope, dropout, seed, message_dropout,
                                      message_seed);
    return {outputs[0], outputs[1]};
  }
  static const auto op = typed_op<Signature>("gat_pyg::gat_forward");
  return below_autograd(op, ptr, src, t_ptr, t_col, t_perm, s_src, s_dst, s_edge, h_src,
                        negative_slope, dropout, seed, message_dropout, message_seed);
}

}  // namespace
}  // namespace gat_pyg

TORCH_LIBRARY_IMPL(gat_pyg, CPU, m) {
  m.impl("gat_forward", &gat_pyg::gat_forward);
  m.impl("gat_backward", &gat_pyg::gat_backward);
}

TORCH_LIBRARY_IMPL(gat_pyg, AutogradCPU, m) {
  m.impl("gat_forward", &gat_pyg::gat_forward_autograd);
}

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

#include "ops.h"

namespace gat_pyg {
namespace {

template <typename scalar_t>
class GATScore {
 public:
  using acc_t = at::opmath_type<scalar_t>;

  GATScore(const scalar_t* s_src, const scalar_t* s_dst, const scalar_t* s_edge, int64_t heads,
           double negative_slope)
      : s_src_(s_src), s_dst_(s_dst), s_edge_(s_edge), heads_(heads),
        slope_(static_cast<acc_t>(negative_slope)) {}

  // Backward outputs; null when not wanted.
  scalar_t* grad_s_src = nullptr;
  scalar_t* grad_s_dst = nullptr;
  scalar_t* grad_s_edge = nullptr;

  struct Scratch {
    explicit Scratch(const GATScore& s) : target(s.heads_), acc(s.heads_) {}
    std::vector<acc_t> target;   // s_dst[i, :] (0 without s_dst)
    std::vector<acc_t> acc;      // a row's grad_s_dst, or a source's grad_s_src
  };

  void begin_row(Scratch& st, int64_t i) const {
    for (int64_t h = 0; h < heads_; ++h)
      st.target[h] = s_dst_ ? static_cast<acc_t>(s_dst_[i * heads_ + h]) : acc_t(0);
  }

  void prefetch(int64_t j, int64_t /*e*/) const { __builtin_prefetch(s_src_ + j * heads_); }
  void prefetch_target(int64_t /*i*/, int64_t /*e*/) const {}

  // (s_src + s_dst) + s_edge, PyG's order of additions.
  acc_t raw(const Scratch& st, int64_t j, int64_t e, int64_t h) const {
    acc_t v = static_cast<acc_t>(s_src_[j * heads_ + h]);
    if (s_dst_) v += st.target[h];
    if (s_edge_) v += static_cast<acc_t>(s_edge_[e * heads_ + h]);
    return v;
  }

  void forward(Scratch& st, int64_t /*i*/, int64_t j, int64_t e, acc_t* scores) const {
    for (int64_t h = 0; h < heads_; ++h) {
      scores[h] = leaky_relu(raw(st, j, e, h), slope_);
    }
  }

  bool wants_row_pass() const { return grad_s_src || grad_s_dst || grad_s_edge; }
  bool wants_source_pass() const { return grad_s_src != nullptr; }
  void prepare(int64_t /*num_blocks*/) {}

  void begin_row_backward(Scratch& st, int64_t i) const {
    begin_row(st, i);
    std::fill(st.acc.begin(), st.acc.end(), acc_t(0));
  }

  // Turns grad_score into grad_raw in place: the source pass reads grad_raw for s_src.
  void row_backward(Scratch& st, int64_t /*block*/, int64_t /*i*/, int64_t j, int64_t e,
                    acc_t* grad) const {
    for (int64_t h = 0; h < heads_; ++h) {
      grad[h] *= leaky_relu_grad(raw(st, j, e, h), slope_);
      st.acc[h] += grad[h];
      if (grad_s_edge) grad_s_edge[e * heads_ + h] = static_cast<scalar_t>(grad[h]);
    }
  }

  void end_row_backward(Scratch& st, int64_t i) const {
    if (grad_s_dst)
      for (int64_t h = 0; h < heads_; ++h)
        grad_s_dst[i * heads_ + h] = static_cast<scalar_t>(st.acc[h]);
  }

  void begin_source(Scratch& st, int64_t /*j*/) const {
    std::fill(st.acc.begin(), st.acc.end(), acc_t(0));
  }

  void source_backward(Scratch& st, int64_t /*j*/, int64_t /*i*/, int64_t /*e*/,
                       const acc_t* grad) const {
    if (grad_s_src)
      for (int64_t h = 0; h < heads_; ++h) st.acc[h] += grad[h];
  }

  void end_source(Scratch& st, int64_t j) const {
    if (grad_s_src)
      for (int64_t h = 0; h < heads_; ++h)
        grad_s_src[j * heads_ + h] = static_cast<scalar_t>(st.acc[h]);
  }

  void finish() {}

 private:
  const scalar_t* s_src_;
  const scalar_t* s_dst_;
  const scalar_t* s_edge_;
  int64_t heads_;
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
    double dropout, const std::optional<at::Tensor>& seed) {
  const auto graph = graph_tensors(ptr, src, t_ptr, t_col, t_perm, h_src.size(0));
  const auto s = check_gat(graph, s_src, s_dst, s_edge, h_src, false);
  const auto mask = make_dropout(dropout, seed, s.heads);
  auto out = at::empty({s.num_dst, s.heads, s.channels}, h_src.options());
  auto alpha = at::empty({s.edges, s.heads}, h_src.options());
  AT_DISPATCH_FLOATING_TYPES_AND(at::kBFloat16, h_src.scalar_type(), "gat_forward", [&] {
    GATScore<scalar_t> score(s_src.const_data_ptr<scalar_t>(), const_data_or_null<scalar_t>(s_dst),
                             const_data_or_null<scalar_t>(s_edge), s.heads, negative_slope);
    AT_DISPATCH_INDEX_TYPES(ptr.scalar_type(), "gat_forward", [&] {
      attention_forward(graph_view<index_t>(graph), score,
                        h_src.const_data_ptr<scalar_t>(), s.heads, s.channels, mask,
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
    const std::optional<at::Tensor>& seed, std::array<bool, 4> output_mask) {
  const auto graph = graph_tensors(ptr, src, t_ptr, t_col, t_perm, h_src.size(0));
  const auto s = check_gat(graph, s_src, s_dst, s_edge, h_src, true);
  const auto dtype = h_src.scalar_type();
  check_tensor("grad_out", grad_out, dtype, {s.num_dst, s.heads, s.channels});
  check_tensor("alpha", alpha, dtype, {s.edges, s.heads});
  if (grad_alpha.has_value()) check_tensor("grad_alpha", *grad_alpha, dtype, {s.edges, s.heads});
  const auto mask = make_dropout(dropout, seed, s.heads);
  const auto options = h_src.options();
  // A gradient that is not wanted (or whose input is absent) is an empty tensor.
  auto wanted = [&](bool want, at::IntArrayRef sizes) {
    return want ? at::empty(sizes, options) : at::empty({0}, options);
  };
  auto grad_s_src = wanted(output_mask[0], {s.num_src, s.heads});
  auto grad_s_dst = wanted(output_mask[1] && s_dst.has_value(), {s.num_dst, s.heads});
  auto grad_s_edge = wanted(output_mask[2] && s_edge.has_value(), {s.edges, s.heads});
  auto grad_h_src = wanted(output_mask[3], {s.num_src, s.heads, s.channels});
  AT_DISPATCH_FLOATING_TYPES_AND(at::kBFloat16, dtype, "gat_backward", [&] {
    GATScore<scalar_t> score(s_src.const_data_ptr<scalar_t>(), const_data_or_null<scalar_t>(s_dst),
                             const_data_or_null<scalar_t>(s_edge), s.heads, negative_slope);
    // An empty gradient (not wanted, or nothing to write) is a null pointer: its work is skipped.
    score.grad_s_src = output_or_null<scalar_t>(grad_s_src);
    score.grad_s_dst = output_or_null<scalar_t>(grad_s_dst);
    score.grad_s_edge = output_or_null<scalar_t>(grad_s_edge);
    AT_DISPATCH_INDEX_TYPES(ptr.scalar_type(), "gat_backward", [&] {
      attention_backward(graph_view<index_t>(graph), score,
                         h_src.const_data_ptr<scalar_t>(), grad_out.const_data_ptr<scalar_t>(),
                         const_data_or_null<scalar_t>(grad_alpha), alpha.const_data_ptr<scalar_t>(),
                         s.heads, s.channels, mask,
                         output_or_null<scalar_t>(grad_h_src));
    });
  });
  return {grad_s_src, grad_s_dst, grad_s_edge, grad_h_src};
}

}  // namespace gat_pyg

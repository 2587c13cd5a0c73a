// GATv2's score (Brody, Alon, Yahav 2022, arXiv 2105.14491, eq. 7; PyG's GATv2Conv):
//
//   z[e,h,:]   = x_l[j,h,:] + x_r[i,h,:] + (W_e edge_attr[e])[h,:]     (edge term optional)
//   score[e,h] = sum_c att[h,c] * LeakyReLU(z[e,h,c], negative_slope)
//
// z is formed per edge in a per-thread buffer of H*C values, in forward and again in each
// backward pass, so no E x H x C tensor ever exists. Backward, with grad_score from the shared
// softmax backward:
//
//   grad_z[e,h,c]        = grad_score[e,h] * att[h,c] * (z > 0 ? 1 : negative_slope)
//   grad_att[h,c]        = sum_e grad_score[e,h] * LeakyReLU(z[e,h,c])
//   grad_x_r[i]          = sum over row i of grad_z,    grad_x_l[j] = sum over edges leaving j
//   grad_edge_attr[e,:]  = grad_z[e] (flattened to H*C) @ W_e
//   grad_W_e             = sum_e outer(grad_z[e], edge_attr[e])
//
// grad_att and grad_W_e sum over all edges: each block of rows (fixed by the graph, see
// balanced_blocks) keeps its partial sum, and the partials are added in block order.
// The edge term is added to z one feature d at a time, ((x_r + x_l) + w_0 a_0) + w_1 a_1 ...,
// where PyG adds the finished product: the same sum, rounded in another order.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>

#include "ops.h"

namespace gat_pyg {
namespace {

template <typename scalar_t>
class GATv2Score {
 public:
  using acc_t = at::opmath_type<scalar_t>;

  GATv2Score(const scalar_t* x_l, const scalar_t* x_r, const scalar_t* att,
             const scalar_t* edge_attr, const scalar_t* w_edge, int64_t heads,
             int64_t channels, int64_t edge_dim, double negative_slope)
      : x_l_(x_l), x_r_(x_r), edge_attr_(edge_attr), heads_(heads), channels_(channels),
        hc_(heads * channels), edge_dim_(edge_attr ? edge_dim : 0),
        slope_(static_cast<acc_t>(negative_slope)), att_(att, att + hc_),
        w_edge_t_(static_cast<size_t>(hc_ * edge_dim_)) {
    // W_e [H*C, D] is kept transposed, [D, H*C], so that the per-edge loops run along H*C.
    for (int64_t k = 0; k < hc_; ++k)
      for (int64_t d = 0; d < edge_dim_; ++d)
        w_edge_t_[d * hc_ + k] = static_cast<acc_t>(w_edge[k * edge_dim_ + d]);
  }

  // Backward outputs; null when not wanted.
  scalar_t* grad_x_l = nullptr;
  scalar_t* grad_x_r = nullptr;
  scalar_t* grad_att = nullptr;
  scalar_t* grad_edge_attr = nullptr;
  scalar_t* grad_w_edge = nullptr;

  struct Scratch {
    explicit Scratch(const GATv2Score& s) : z(s.hc_), acc(s.hc_) {}
    std::vector<acc_t> z;        // the current edge's z (then, in backward, its grad_z)
    std::vector<acc_t> acc;      // a row's grad_x_r, or a source's grad_x_l
  };

  void begin_row(Scratch& /*st*/, int64_t /*i*/) const {}

  void prefetch(int64_t j, int64_t e) const {
    prefetch_row(x_l_ + j * hc_, hc_ * sizeof(scalar_t));
    if (edge_dim_) __builtin_prefetch(edge_attr_ + e * edge_dim_);
  }

  void prefetch_target(int64_t i, int64_t e) const {
    prefetch_row(x_r_ + i * hc_, hc_ * sizeof(scalar_t));
    if (edge_dim_) __builtin_prefetch(edge_attr_ + e * edge_dim_);
  }

  void forward(Scratch& st, int64_t i, int64_t j, int64_t e, acc_t* scores) const {
    edge_vector(st, i, j, e);
    const acc_t* z = st.z.data();
    const acc_t* a = att_.data();
    for (int64_t h = 0; h < heads_; ++h) {
      acc_t s = 0;
#pragma omp simd reduction(+ : s)
      for (int64_t k = h * channels_; k < (h + 1) * channels_; ++k)
        s += a[k] * leaky_relu(z[k], slope_);
      scores[h] = s;
    }
  }

  bool wants_row_pass() const {
    return grad_x_l || grad_x_r || grad_att || grad_edge_attr || grad_w_edge;
  }
  bool wants_source_pass() const { return grad_x_l != nullptr; }

  void prepare(int64_t num_blocks) {
    if (grad_att) partial_att_.assign(static_cast<size_t>(num_blocks * hc_), acc_t(0));
    if (grad_w_edge && edge_dim_)
      partial_w_t_.assign(static_cast<size_t>(num_blocks * edge_dim_ * hc_), acc_t(0));
  }

  void begin_row_backward(Scratch& st, int64_t /*i*/) const {
    std::fill(st.acc.begin(), st.acc.end(), acc_t(0));
  }

  void row_backward(Scratch& st, int64_t block, int64_t i, int64_t j, int64_t e,
                    acc_t* grad) {
    edge_vector(st, i, j, e);
    acc_t* z = st.z.data();
    acc_t* acc = st.acc.data();
    const acc_t* a = att_.data();
    for (int64_t h = 0; h < heads_; ++h) {
      const acc_t g = grad[h];
      const int64_t k0 = h * channels_, k1 = k0 + channels_;
      if (grad_att) {
        acc_t* pa = partial_att_.data() + block * hc_;
#pragma omp simd
        for (int64_t k = k0; k < k1; ++k) pa[k] += g * leaky_relu(z[k], slope_);
      }
      // z becomes grad_z: the edge's own gradients below read it.
#pragma omp simd
      for (int64_t k = k0; k < k1; ++k) {
        z[k] = g * a[k] * leaky_relu_grad(z[k], slope_);
        acc[k] += z[k];
      }
    }
    if (!edge_dim_) return;
    const scalar_t* attr = edge_attr_ + e * edge_dim_;
    if (grad_edge_attr) {
      for (int64_t d = 0; d < edge_dim_; ++d) {
        const acc_t* w = w_edge_t_.data() + d * hc_;
        acc_t v = 0;
#pragma omp simd reduction(+ : v)
        for (int64_t k = 0; k < hc_; ++k) v += z[k] * w[k];
        grad_edge_attr[e * edge_dim_ + d] = static_cast<scalar_t>(v);
      }
    }
    if (grad_w_edge) {
      acc_t* pw = partial_w_t_.data() + block * edge_dim_ * hc_;
      for (int64_t d = 0; d < edge_dim_; ++d) {
        const acc_t ad = static_cast<acc_t>(attr[d]);
#pragma omp simd
        for (int64_t k = 0; k < hc_; ++k) pw[d * hc_ + k] += z[k] * ad;
      }
    }
  }

  void end_row_backward(Scratch& st, int64_t i) const {
    if (grad_x_r)
      for (int64_t k = 0; k < hc_; ++k) grad_x_r[i * hc_ + k] = static_cast<scalar_t>(st.acc[k]);
  }

  void begin_source(Scratch& st, int64_t /*j*/) const {
    std::fill(st.acc.begin(), st.acc.end(), acc_t(0));
  }

  void source_backward(Scratch& st, int64_t j, int64_t i, int64_t e, const acc_t* grad) const {
    if (!grad_x_l) return;
    edge_vector(st, i, j, e);
    const acc_t* z = st.z.data();
    const acc_t* a = att_.data();
    acc_t* acc = st.acc.data();
    for (int64_t h = 0; h < heads_; ++h) {
      const acc_t g = grad[h];
#pragma omp simd
      for (int64_t k = h * channels_; k < (h + 1) * channels_; ++k)
        acc[k] += g * a[k] * leaky_relu_grad(z[k], slope_);
    }
  }

  void end_source(Scratch& st, int64_t j) const {
    if (grad_x_l)
      for (int64_t k = 0; k < hc_; ++k) grad_x_l[j * hc_ + k] = static_cast<scalar_t>(st.acc[k]);
  }

  void finish() {
    if (grad_att) {
      const auto total = sum_blocks(partial_att_, hc_);
      for (int64_t k = 0; k < hc_; ++k) grad_att[k] = static_cast<scalar_t>(total[k]);
    }
    if (grad_w_edge && edge_dim_) {
      const auto total = sum_blocks(partial_w_t_, edge_dim_ * hc_);   // [D, H*C]
      for (int64_t k = 0; k < hc_; ++k)
        for (int64_t d = 0; d < edge_dim_; ++d)
          grad_w_edge[k * edge_dim_ + d] = static_cast<scalar_t>(total[d * hc_ + k]);
    }
  }

 private:
  // st.z = x_r[i] + x_l[j] (+ W_e edge_attr[e]); PyG adds x_i + x_j, then the edge term.
  void edge_vector(Scratch& st, int64_t i, int64_t j, int64_t e) const {
    const scalar_t* xl = x_l_ + j * hc_;
    const scalar_t* xr = x_r_ + i * hc_;
    acc_t* z = st.z.data();
#pragma omp simd
    for (int64_t k = 0; k < hc_; ++k) z[k] = static_cast<acc_t>(xr[k]) + static_cast<acc_t>(xl[k]);
    const scalar_t* attr = edge_attr_ + e * edge_dim_;
    for (int64_t d = 0; d < edge_dim_; ++d) {
      const acc_t ad = static_cast<acc_t>(attr[d]);
      const acc_t* w = w_edge_t_.data() + d * hc_;
#pragma omp simd
      for (int64_t k = 0; k < hc_; ++k) z[k] += w[k] * ad;
    }
  }

  // The sum over blocks b (in block order) of partial[b * width : (b + 1) * width].
  static std::vector<acc_t> sum_blocks(const std::vector<acc_t>& partial, int64_t width) {
    std::vector<acc_t> total(static_cast<size_t>(width), acc_t(0));
    const int64_t blocks = static_cast<int64_t>(partial.size()) / width;
    for (int64_t b = 0; b < blocks; ++b)
      for (int64_t k = 0; k < width; ++k) total[k] += partial[b * width + k];
    return total;
  }

  const scalar_t* x_l_;
  const scalar_t* x_r_;
  const scalar_t* edge_attr_;
  int64_t heads_, channels_, hc_, edge_dim_;
  acc_t slope_;
  std::vector<acc_t> att_;        // att, and W_e transposed, converted to acc_t once
  std::vector<acc_t> w_edge_t_;
  std::vector<acc_t> partial_att_, partial_w_t_;   // per row block: [H*C], [D, H*C]
};

struct Shapes {
  int64_t num_dst, num_src, edges, heads, channels, edge_dim;
};

Shapes check_gatv2(const GraphTensors& graph, const at::Tensor& x_l, const at::Tensor& x_r,
                   const at::Tensor& att, const std::optional<at::Tensor>& edge_attr,
                   const std::optional<at::Tensor>& w_edge, const at::Tensor& h_src,
                   bool backward) {
  TORCH_CHECK(x_l.dim() == 3, "gat_pyg: x_l must be [N_src, H, C], got shape ", x_l.sizes());
  const auto dtype = x_l.scalar_type();
  TORCH_CHECK(dtype == at::kFloat || dtype == at::kDouble || dtype == at::kBFloat16,
              "gat_pyg: x_l must be float32, float64 or bfloat16, got ", dtype);
  TORCH_CHECK(edge_attr.has_value() == w_edge.has_value(),
              "gat_pyg: edge_attr and w_edge must be given together");
  Shapes s{graph.ptr.numel() - 1, x_l.size(0), graph.src.numel(), x_l.size(1), x_l.size(2),
           0};
  check_tensor("x_l", x_l, dtype, {s.num_src, s.heads, s.channels});
  check_tensor("x_r", x_r, dtype, {s.num_dst, s.heads, s.channels});
  check_tensor("att", att, dtype, {s.heads, s.channels});
  check_tensor("h_src", h_src, dtype, {s.num_src, s.heads, s.channels});
  if (edge_attr.has_value()) {
    check_tensor("edge_attr", *edge_attr, dtype, {s.edges, -1});
    s.edge_dim = edge_attr->size(1);
    check_tensor("w_edge", *w_edge, dtype, {s.heads * s.channels, s.edge_dim});
  }
  check_graph(graph, backward);
  return s;
}

}  // namespace

std::tuple<at::Tensor, at::Tensor> gatv2_forward(
    const at::Tensor& ptr, const at::Tensor& src, const std::optional<at::Tensor>& t_ptr,
    const std::optional<at::Tensor>& t_col, const std::optional<at::Tensor>& t_perm,
    const at::Tensor& x_l, const at::Tensor& x_r, const at::Tensor& att,
    const std::optional<at::Tensor>& edge_attr, const std::optional<at::Tensor>& w_edge,
    const at::Tensor& h_src, double negative_slope, double dropout,
    const std::optional<at::Tensor>& seed) {
  const auto graph = graph_tensors(ptr, src, t_ptr, t_col, t_perm, x_l.size(0));
  const auto s = check_gatv2(graph, x_l, x_r, att, edge_attr, w_edge, h_src, false);
  const auto mask = make_dropout(dropout, seed, s.heads);
  auto out = at::empty({s.num_dst, s.heads, s.channels}, h_src.options());
  auto alpha = at::empty({s.edges, s.heads}, h_src.options());
  AT_DISPATCH_FLOATING_TYPES_AND(at::kBFloat16, x_l.scalar_type(), "gatv2_forward", [&] {
    GATv2Score<scalar_t> score(x_l.const_data_ptr<scalar_t>(), x_r.const_data_ptr<scalar_t>(),
                               att.const_data_ptr<scalar_t>(),
                               const_data_or_null<scalar_t>(edge_attr),
                               const_data_or_null<scalar_t>(w_edge), s.heads, s.channels,
                               s.edge_dim, negative_slope);
    AT_DISPATCH_INDEX_TYPES(ptr.scalar_type(), "gatv2_forward", [&] {
      attention_forward(graph_view<index_t>(graph), score,
                        h_src.const_data_ptr<scalar_t>(), s.heads, s.channels, mask,
                        out.data_ptr<scalar_t>(), alpha.data_ptr<scalar_t>());
    });
  });
  return {out, alpha};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor>
gatv2_backward(const at::Tensor& grad_out, const std::optional<at::Tensor>& grad_alpha,
               const at::Tensor& ptr, const at::Tensor& src, const at::Tensor& t_ptr,
               const at::Tensor& t_col, const at::Tensor& t_perm, const at::Tensor& x_l,
               const at::Tensor& x_r, const at::Tensor& att,
               const std::optional<at::Tensor>& edge_attr,
               const std::optional<at::Tensor>& w_edge, const at::Tensor& h_src,
               const at::Tensor& alpha, double negative_slope, double dropout,
               const std::optional<at::Tensor>& seed, std::array<bool, 6> output_mask) {
  const auto graph = graph_tensors(ptr, src, t_ptr, t_col, t_perm, x_l.size(0));
  const auto s = check_gatv2(graph, x_l, x_r, att, edge_attr, w_edge, h_src, true);
  const auto dtype = x_l.scalar_type();
  check_tensor("grad_out", grad_out, dtype, {s.num_dst, s.heads, s.channels});
  check_tensor("alpha", alpha, dtype, {s.edges, s.heads});
  if (grad_alpha.has_value()) check_tensor("grad_alpha", *grad_alpha, dtype, {s.edges, s.heads});
  const auto mask = make_dropout(dropout, seed, s.heads);
  const auto options = x_l.options();
  auto wanted = [&](bool want, at::IntArrayRef sizes) {
    return want ? at::empty(sizes, options) : at::empty({0}, options);
  };
  const bool edges = edge_attr.has_value();
  auto grad_x_l = wanted(output_mask[0], {s.num_src, s.heads, s.channels});
  auto grad_x_r = wanted(output_mask[1], {s.num_dst, s.heads, s.channels});
  auto grad_att = wanted(output_mask[2], {s.heads, s.channels});
  auto grad_edge_attr = wanted(output_mask[3] && edges, {s.edges, s.edge_dim});
  auto grad_w_edge = wanted(output_mask[4] && edges, {s.heads * s.channels, s.edge_dim});
  auto grad_h_src = wanted(output_mask[5], {s.num_src, s.heads, s.channels});
  // Sums over edges that no edge contributes to (E = 0) must still read 0.
  grad_att.zero_();
  grad_w_edge.zero_();
  AT_DISPATCH_FLOATING_TYPES_AND(at::kBFloat16, dtype, "gatv2_backward", [&] {
    GATv2Score<scalar_t> score(x_l.const_data_ptr<scalar_t>(), x_r.const_data_ptr<scalar_t>(),
                               att.const_data_ptr<scalar_t>(),
                               const_data_or_null<scalar_t>(edge_attr),
                               const_data_or_null<scalar_t>(w_edge), s.heads, s.channels,
                               s.edge_dim, negative_slope);
    // An empty gradient (not wanted, or nothing to write) is a null pointer: its work is skipped.
    score.grad_x_l = output_or_null<scalar_t>(grad_x_l);
    score.grad_x_r = output_or_null<scalar_t>(grad_x_r);
    score.grad_att = output_or_null<scalar_t>(grad_att);
    score.grad_edge_attr = output_or_null<scalar_t>(grad_edge_attr);
    score.grad_w_edge = output_or_null<scalar_t>(grad_w_edge);
    AT_DISPATCH_INDEX_TYPES(ptr.scalar_type(), "gatv2_backward", [&] {
      attention_backward(graph_view<index_t>(graph), score,
                         h_src.const_data_ptr<scalar_t>(), grad_out.const_data_ptr<scalar_t>(),
                         const_data_or_null<scalar_t>(grad_alpha), alpha.const_data_ptr<scalar_t>(),
                         s.heads, s.channels, mask, output_or_null<scalar_t>(grad_h_src));
    });
  });
  return {grad_x_l, grad_x_r, grad_att, grad_edge_attr, grad_w_edge, grad_h_src};
}

}  // namespace gat_pyg

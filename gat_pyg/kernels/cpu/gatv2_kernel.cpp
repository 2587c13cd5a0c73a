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

#include <torch/library.h>

#include "autograd.h"
#include "common.h"

namespace gat_pyg {
namespace {

template <typename scalar_t, typename index_t>
class GATv2Score {
 public:
  using acc_t = at::opmath_type<scalar_t>;

  GATv2Score(const scalar_t* x_l, const scalar_t* x_r, const scalar_t* att,
             const scalar_t* edge_attr, const scalar_t* w_edge, int64_t heads,
             int64_t channels, int64_t edge_dim, double negative_slope)
      : x_l_(x_l), x_r_(x_r), edge_attr_(edge_attr), hc_(heads * channels),
        edge_dim_(edge_attr ? edge_dim : 0), slope_(static_cast<acc_t>(negative_slope)),
        // 8 spare values: a 1x8 row of them may be read as 8 floats.
        att_(static_cast<size_t>(hc_ + 8), acc_t(0)),
        w_edge_t_(static_cast<size_t>(hc_ * edge_dim_ + 8), acc_t(0)) {
    for (int64_t k = 0; k < hc_; ++k) att_[k] = static_cast<acc_t>(att[k]);
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
  // grad_x_l is grad_h_src's buffer (x_l and h_src are one tensor): add to it, do not assign.
  bool add_to_grad_x_l = false;

  struct Scratch {
    Buffer<acc_t> z;     // the current edge's z (then, in backward, its grad_z)
    Buffer<acc_t> acc;   // the block's grad_x_r, or (source pass) grad_x_l, [rows, H * C]
    void trim(int64_t bytes) { z.trim(bytes), acc.trim(bytes); }
  };

  // w[e, h] = sum_c att[h, c] LeakyReLU(z[e, h, c]) over the block's edges.
  template <typename D>
  GAT_PYG_INLINE void scores(Scratch& st, const D& d, const Graph<index_t>& g, const Block& b,
                             acc_t* w) const {
    const int64_t H = d.H(), HC = d.HC(), edges = b.edges();
    acc_t* z = st.z.ensure(HC + 8);
    const index_t* src = g.src + b.e0;
    for (int64_t e = 0; e < edges; ++e) {
      if (b.e0 + e + kPrefetchDistance < g.num_edges)
        prefetch_source(g, b.e0 + e + kPrefetchDistance, HC);
      const int64_t i = b.r0 + b.row_of[e], j = src[e], edge = b.e0 + e;
#if GAT_PYG_VEC8
      if constexpr (kVectors<D, acc_t, scalar_t>) {
        constexpr int n = D::k8x8 ? 8 : 1;
        f32x8 zc[n], p[8];
        edge_chunks(d, g, i, j, edge, zc);
        for (int c = 0; c < n; ++c)
          p[c] = chunk(d, att_.data(), c, true) * leaky_relu8(zc[c], slope_);
        if constexpr (D::k8x8) store8(w + e * H, sums8(p));
        else w[e] = sum8(p[0]);
        continue;
      }
#endif
      edge_vector(d, x_r_ + i * HC, x_l_ + j * HC, edge, z);
#pragma omp simd
      for (int64_t k = 0; k < HC; ++k) z[k] = leaky_relu(z[k], slope_);
      dot_heads(d, att_.data(), true, z, true, w + e * H);
    }
  }

  bool wants_row_pass() const {
    return grad_x_l || grad_x_r || grad_att || grad_edge_attr || grad_w_edge;
  }
  bool wants_source_pass() const { return grad_x_l != nullptr; }

  void prepare(int64_t num_blocks) {
    // Each block's partial grad_att starts on a multiple of 8 values: a 1x8 row's 8-float
    // stores must not reach into the next block's (another thread's) partial sums.
    if (grad_att) partial_att_.assign(static_cast<size_t>(num_blocks * att_stride()), acc_t(0));
    if (grad_w_edge && edge_dim_)
      partial_w_t_.assign(static_cast<size_t>(num_blocks * edge_dim_ * hc_), acc_t(0));
  }

  // grad_score stays in `grad` for the source pass; the rows' own gradients are written here.
  template <typename D>
  GAT_PYG_INLINE void row_backward(Scratch& st, const D& d, const Graph<index_t>& g,
                                   const Block& b, int64_t block_index, const acc_t* grad) {
    const int64_t H = d.H(), HC = d.HC(), D_ = edge_dim_, edges = b.edges();
    acc_t* z = st.z.ensure(HC + 8);
    acc_t* acc = st.acc.ensure(b.rows() * HC + 8);   // grad_x_r of the block's rows
    fill(acc, b.rows() * HC, acc_t(0));
    acc_t* pa = grad_att ? partial_att_.data() + block_index * att_stride() : nullptr;
    acc_t* pw = grad_w_edge && D_ ? partial_w_t_.data() + block_index * D_ * HC : nullptr;
    const index_t* src = g.src + b.e0;
    for (int64_t e = 0; e < edges; ++e) {
      const int64_t edge = b.e0 + e;
      if (edge + kPrefetchDistance < g.num_edges) prefetch_source(g, edge + kPrefetchDistance, HC);
      const int64_t i = b.r0 + b.row_of[e], j = src[e];
      // z becomes grad_z: the edge's own gradients below read it.
      grad_z(d, g, i, j, edge, grad + e * H, z, pa, acc + static_cast<int64_t>(b.row_of[e]) * HC);
      if (!D_) continue;
      if (grad_edge_attr) {
        for (int64_t dd = 0; dd < D_; ++dd) {
          const acc_t* wt = w_edge_t_.data() + dd * HC;
          acc_t v = 0;
#pragma omp simd reduction(+ : v)
          for (int64_t k = 0; k < HC; ++k) v += z[k] * wt[k];
          grad_edge_attr[edge * D_ + dd] = static_cast<scalar_t>(v);
        }
      }
      if (pw) {
        const scalar_t* attr = edge_attr_ + edge * D_;
        for (int64_t dd = 0; dd < D_; ++dd) {
          const acc_t ad = static_cast<acc_t>(attr[dd]);
#pragma omp simd
          for (int64_t k = 0; k < HC; ++k) pw[dd * HC + k] += z[k] * ad;
        }
      }
    }
    if (grad_x_r) {
      scalar_t* out = grad_x_r + b.r0 * HC;
#pragma omp simd
      for (int64_t k = 0; k < b.rows() * HC; ++k) out[k] = static_cast<scalar_t>(acc[k]);
    }
  }

  // grad_x_l[j] = the sum of grad_z over the edges e = (j -> i) leaving j, z recomputed.
  template <typename D>
  GAT_PYG_INLINE void source_backward(Scratch& st, const D& d, const Graph<index_t>& g,
                                      const Block& b, const acc_t* grad) const {
    if (!grad_x_l) return;
    const int64_t H = d.H(), HC = d.HC(), edges = b.edges();
    acc_t* z = st.z.ensure(HC + 8);
    acc_t* acc = st.acc.ensure(b.rows() * HC + 8);
    fill(acc, b.rows() * HC, acc_t(0));
    const index_t* perm = g.t_perm + b.e0;
    const index_t* col = g.t_col + b.e0;
    for (int64_t k = 0; k < edges; ++k) {
      if (b.e0 + k + kPrefetchDistance < g.num_edges) {
        const int64_t ahead = b.e0 + k + kPrefetchDistance;
        prefetch_row(x_r_ + static_cast<int64_t>(g.t_col[ahead]) * HC,
                     HC * static_cast<int64_t>(sizeof(scalar_t)));
        __builtin_prefetch(grad + static_cast<int64_t>(g.t_perm[ahead]) * H);
        if (edge_dim_)
          __builtin_prefetch(edge_attr_ + static_cast<int64_t>(g.t_perm[ahead]) * edge_dim_);
      }
      const int64_t e = perm[k], i = col[k], jl = b.row_of[k];
      grad_z<false>(d, g, i, b.r0 + jl, e, grad + e * H, z, nullptr, acc + jl * HC);
    }
    scalar_t* out = grad_x_l + b.r0 * HC;
    if (add_to_grad_x_l) {   // the source pass wrote this block's grad_h_src rows just before
#pragma omp simd
      for (int64_t k = 0; k < b.rows() * HC; ++k)
        out[k] = static_cast<scalar_t>(static_cast<acc_t>(out[k]) + acc[k]);
      return;
    }
#pragma omp simd
    for (int64_t k = 0; k < b.rows() * HC; ++k) out[k] = static_cast<scalar_t>(acc[k]);
  }

  void finish() {
    if (grad_att) {
      const auto total = sum_blocks(partial_att_, hc_, att_stride());
      for (int64_t k = 0; k < hc_; ++k) grad_att[k] = static_cast<scalar_t>(total[k]);
    }
    if (grad_w_edge && edge_dim_) {
      const auto total = sum_blocks(partial_w_t_, edge_dim_ * hc_, edge_dim_ * hc_);   // [D, H*C]
      for (int64_t k = 0; k < hc_; ++k)
        for (int64_t d = 0; d < edge_dim_; ++d)
          grad_w_edge[k * edge_dim_ + d] = static_cast<scalar_t>(total[d * hc_ + k]);
    }
  }

 private:
  GAT_PYG_INLINE void prefetch_source(const Graph<index_t>& g, int64_t e, int64_t hc) const {
    prefetch_row(x_l_ + static_cast<int64_t>(g.src[e]) * hc,
                 hc * static_cast<int64_t>(sizeof(scalar_t)));
    if (edge_dim_) __builtin_prefetch(edge_attr_ + e * edge_dim_);
  }

  // For edge e = (j -> i), with g = grad_score[e] per head:
  //   partial_att += g * LeakyReLU(z)       (if partial_att)
  //   grad_z = g * att * LeakyReLU'(z),  acc += grad_z,  and (kStore) z_out = grad_z.
  template <bool kStore = true, typename D>
  GAT_PYG_INLINE void grad_z(const D& d, const Graph<index_t>& g, int64_t i, int64_t j,
                             int64_t e, const acc_t* __restrict grad, acc_t* __restrict z_out,
                             acc_t* __restrict partial_att, acc_t* __restrict acc) const {
#if GAT_PYG_VEC8
    if constexpr (kVectors<D, acc_t, scalar_t>) {
      constexpr int n = D::k8x8 ? 8 : 1;
      f32x8 zc[n];
      edge_chunks(d, g, i, j, e, zc);
      for (int c = 0; c < n; ++c) {
        if (partial_att)
          store8(partial_att + 8 * c,
                 load8(partial_att + 8 * c) + grad[c] * leaky_relu8(zc[c], slope_));
        const f32x8 gz =
            grad[c] * chunk(d, att_.data(), c, true) * leaky_relu_grad8(zc[c], slope_);
        store8(acc + 8 * c, load8(acc + 8 * c) + gz);
        if constexpr (kStore) store8(z_out + 8 * c, gz);
      }
      return;
    }
#endif
    const int64_t H = d.H(), C = d.C(), HC = d.HC();
    acc_t* z = z_out;
    edge_vector(d, x_r_ + i * HC, x_l_ + j * HC, e, z);
    const acc_t* a = att_.data();
    for (int64_t h = 0; h < H; ++h) {
      const acc_t gv = grad[h];
      if (partial_att) {
#pragma omp simd
        for (int64_t c = 0; c < C; ++c)
          partial_att[h * C + c] += gv * leaky_relu(z[h * C + c], slope_);
      }
#pragma omp simd
      for (int64_t c = 0; c < C; ++c) {
        const int64_t k = h * C + c;
        const acc_t gz = gv * a[k] * leaky_relu_grad(z[k], slope_);
        acc[k] += gz;
        z[k] = gz;
      }
    }
  }

#if GAT_PYG_VEC8
  // z of edge e = (j -> i) as eight-float chunks (8x8: one per head; 1x8: one).
  template <typename D>
  GAT_PYG_INLINE void edge_chunks(const D& d, const Graph<index_t>& g, int64_t i, int64_t j,
                                  int64_t e, f32x8* z) const {
    constexpr int n = D::k8x8 ? 8 : 1;
    const int64_t HC = d.HC();
    const bool i_whole = d.whole(i, g.num_dst), j_whole = d.whole(j, g.num_src);
    for (int c = 0; c < n; ++c)
      z[c] = chunk(d, x_r_ + i * HC, c, i_whole) + chunk(d, x_l_ + j * HC, c, j_whole);
    const scalar_t* attr = edge_attr_ + e * edge_dim_;
    for (int64_t dd = 0; dd < edge_dim_; ++dd) {
      const acc_t ad = static_cast<acc_t>(attr[dd]);
      for (int c = 0; c < n; ++c) z[c] += chunk(d, w_edge_t_.data() + dd * HC, c, true) * ad;
    }
  }
#endif

  // z = x_r[i] + x_l[j] (+ W_e edge_attr[e]); PyG adds x_i + x_j, then the edge term.
  template <typename D, typename R, typename L>
  GAT_PYG_INLINE void edge_vector(const D& d, const R* xr, const L* xl, int64_t e,
                                  acc_t* z) const {
    const int64_t HC = d.HC();
#pragma omp simd
    for (int64_t k = 0; k < HC; ++k) z[k] = static_cast<acc_t>(xr[k]) + static_cast<acc_t>(xl[k]);
    const scalar_t* attr = edge_attr_ + e * edge_dim_;
    for (int64_t dd = 0; dd < edge_dim_; ++dd) {
      const acc_t ad = static_cast<acc_t>(attr[dd]);
      const acc_t* w = w_edge_t_.data() + dd * HC;
#pragma omp simd
      for (int64_t k = 0; k < HC; ++k) z[k] += w[k] * ad;
    }
  }

  int64_t att_stride() const { return (hc_ + 7) / 8 * 8; }

  // The sum over blocks b (in block order) of partial[b * stride : b * stride + width].
  static std::vector<acc_t> sum_blocks(const std::vector<acc_t>& partial, int64_t width,
                                       int64_t stride) {
    std::vector<acc_t> total(static_cast<size_t>(width), acc_t(0));
    const int64_t blocks = stride ? static_cast<int64_t>(partial.size()) / stride : 0;
    for (int64_t b = 0; b < blocks; ++b)
      for (int64_t k = 0; k < width; ++k) total[k] += partial[b * stride + k];
    return total;
  }

  const scalar_t* x_l_;
  const scalar_t* x_r_;
  const scalar_t* edge_attr_;
  int64_t hc_, edge_dim_;
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
    const std::optional<at::Tensor>& seed, double message_dropout,
    const std::optional<at::Tensor>& message_seed) {
  const auto graph = graph_tensors(ptr, src, t_ptr, t_col, t_perm, x_l.size(0));
  const auto s = check_gatv2(graph, x_l, x_r, att, edge_attr, w_edge, h_src, false);
  const auto mask = make_dropout(dropout, seed);
  // The aggregation reads h_src with message dropout; the scores (x_l, x_r) do not see it.
  const auto message = make_dropout(message_dropout, message_seed, "message_dropout",
                                    "message_seed");
  const auto values = message.active() ? hash_dropout(h_src, message, true) : h_src;
  auto out = at::empty({s.num_dst, s.heads, s.channels}, h_src.options());
  auto alpha = at::empty({s.edges, s.heads}, h_src.options());
  AT_DISPATCH_FLOATING_TYPES_AND(at::kBFloat16, x_l.scalar_type(), "gatv2_forward", [&] {
    AT_DISPATCH_INDEX_TYPES(ptr.scalar_type(), "gatv2_forward", [&] {
      GATv2Score<scalar_t, index_t> score(
          x_l.const_data_ptr<scalar_t>(), x_r.const_data_ptr<scalar_t>(),
          att.const_data_ptr<scalar_t>(), const_data_or_null<scalar_t>(edge_attr),
          const_data_or_null<scalar_t>(w_edge), s.heads, s.channels, s.edge_dim, negative_slope);
      attention_forward(graph_view<index_t>(graph), score,
                        values.const_data_ptr<scalar_t>(), s.heads, s.channels, mask,
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
               const std::optional<at::Tensor>& seed, std::array<bool, 6> output_mask,
               double message_dropout, const std::optional<at::Tensor>& message_seed,
               bool merge_h_src) {
  const auto graph = graph_tensors(ptr, src, t_ptr, t_col, t_perm, x_l.size(0));
  const auto s = check_gatv2(graph, x_l, x_r, att, edge_attr, w_edge, h_src, true);
  const auto dtype = x_l.scalar_type();
  check_tensor("grad_out", grad_out, dtype, {s.num_dst, s.heads, s.channels});
  check_tensor("alpha", alpha, dtype, {s.edges, s.heads});
  if (grad_alpha.has_value()) check_tensor("grad_alpha", *grad_alpha, dtype, {s.edges, s.heads});
  const auto mask = make_dropout(dropout, seed);
  const auto options = x_l.options();
  auto wanted = [&](bool want, at::IntArrayRef sizes) {
    return want ? at::empty(sizes, options) : at::empty({0}, options);
  };
  const bool edges = edge_attr.has_value();
  const auto message = make_dropout(message_dropout, message_seed, "message_dropout",
                                    "message_seed");
  // merge_h_src: x_l and h_src are one tensor (GATv2Conv passes its source projection as
  // both), so the caller wants the sum of their gradients: it goes into one buffer, returned as
  // grad_x_l with an empty grad_h_src, which saves an [N_src, H, C] tensor and the addition.
  // Not with message dropout, which scales grad_h_src's part alone (then both come back).
  const bool merged = merge_h_src && output_mask[0] && output_mask[5] && !message.active();
  TORCH_CHECK(!merged || (x_l.data_ptr() == h_src.data_ptr() && x_l.sizes() == h_src.sizes() &&
                          x_l.strides() == h_src.strides()),
              "gat_pyg: merge_h_src needs h_src to be x_l");
  auto grad_x_l = wanted(output_mask[0] && !merged, {s.num_src, s.heads, s.channels});
  auto grad_x_r = wanted(output_mask[1], {s.num_dst, s.heads, s.channels});
  auto grad_att = wanted(output_mask[2], {s.heads, s.channels});
  auto grad_edge_attr = wanted(output_mask[3] && edges, {s.edges, s.edge_dim});
  auto grad_w_edge = wanted(output_mask[4] && edges, {s.heads * s.channels, s.edge_dim});
  auto grad_h_src = wanted(output_mask[5], {s.num_src, s.heads, s.channels});
  // Sums over edges that no edge contributes to (E = 0) must still read 0.
  grad_att.zero_();
  grad_w_edge.zero_();
  // With message dropout the row pass (the scores' gradients) reads the dropped values, and
  // grad_h_src gets the same mask and scale.
  const bool scores = output_mask[0] || output_mask[1] || output_mask[2] || output_mask[3] ||
                      output_mask[4];
  const auto values = message.active() && scores ? hash_dropout(h_src, message, true) : h_src;
  AT_DISPATCH_FLOATING_TYPES_AND(at::kBFloat16, dtype, "gatv2_backward", [&] {
    AT_DISPATCH_INDEX_TYPES(ptr.scalar_type(), "gatv2_backward", [&] {
      GATv2Score<scalar_t, index_t> score(
          x_l.const_data_ptr<scalar_t>(), x_r.const_data_ptr<scalar_t>(),
          att.const_data_ptr<scalar_t>(), const_data_or_null<scalar_t>(edge_attr),
          const_data_or_null<scalar_t>(w_edge), s.heads, s.channels, s.edge_dim, negative_slope);
      // An empty gradient (not wanted, or nothing to write) is a null pointer: its work is
      // skipped.
      score.grad_x_l = output_or_null<scalar_t>(merged ? grad_h_src : grad_x_l);
      score.add_to_grad_x_l = merged;
      score.grad_x_r = output_or_null<scalar_t>(grad_x_r);
      score.grad_att = output_or_null<scalar_t>(grad_att);
      score.grad_edge_attr = output_or_null<scalar_t>(grad_edge_attr);
      score.grad_w_edge = output_or_null<scalar_t>(grad_w_edge);
      attention_backward(graph_view<index_t>(graph), score,
                         values.const_data_ptr<scalar_t>(), grad_out.const_data_ptr<scalar_t>(),
                         const_data_or_null<scalar_t>(grad_alpha), alpha.const_data_ptr<scalar_t>(),
                         s.heads, s.channels, mask, output_or_null<scalar_t>(grad_h_src));
    });
  });
  if (merged) return {grad_h_src, grad_x_r, grad_att, grad_edge_attr, grad_w_edge, grad_x_l};
  if (grad_h_src.numel()) hash_dropout_(grad_h_src, message, true);
  return {grad_x_l, grad_x_r, grad_att, grad_edge_attr, grad_w_edge, grad_h_src};
}

// Autograd (autograd.h): backward = gatv2_backward with the saved inputs, the attention
// before dropout and the seeds.
namespace {

using Signature = decltype(gatv2_forward);
using BackwardSignature = decltype(gatv2_backward);

class GATv2Function : public torch::autograd::Function<GATv2Function> {
 public:
  static variable_list forward(AutogradContext* ctx, const at::Tensor& ptr,
                               const at::Tensor& src, const OptTensor& t_ptr,
                               const OptTensor& t_col, const OptTensor& t_perm,
                               const at::Tensor& x_l, const at::Tensor& x_r,
                               const at::Tensor& att, const OptTensor& edge_attr,
                               const OptTensor& w_edge, const at::Tensor& h_src,
                               double negative_slope, double dropout, const OptTensor& seed,
                               double message_dropout, const OptTensor& message_seed) {
    static const auto op = typed_op<Signature>("gat_pyg::gatv2_forward");
    auto [out, alpha] = below_autograd(op, ptr, src, t_ptr, t_col, t_perm, x_l, x_r, att,
                                       edge_attr, w_edge, h_src, negative_slope, dropout, seed,
                                       message_dropout, message_seed);
    ctx->save_for_backward({ptr, src, or_undefined(t_ptr), or_undefined(t_col),
                            or_undefined(t_perm), x_l, x_r, att, or_undefined(edge_attr),
                            or_undefined(w_edge), h_src, or_undefined(seed),
                            or_undefined(message_seed), alpha});
    save_settings(ctx, {negative_slope, dropout, message_dropout});
    ctx->saved_data["needs"] =
        needs_grad(ptr, src, t_ptr, t_col, t_perm, x_l, x_r, att, edge_attr, w_edge, h_src,
                   negative_slope, dropout, seed, message_dropout, message_seed);
    // GATv2Conv passes its source projection as both x_l and h_src (PyG's x_j is lin_l(x)):
    // then gatv2_backward may sum both gradients in one buffer.
    ctx->saved_data["shared"] = x_l.is_same(h_src);
    ctx->set_materialize_grads(false);
    return {out, alpha};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    static const auto op = typed_op<BackwardSignature>("gat_pyg::gatv2_backward");
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &ptr = saved[0], &src = saved[1], &t_ptr = saved[2], &t_col = saved[3],
                     &t_perm = saved[4], &x_l = saved[5], &x_r = saved[6], &att = saved[7],
                     &edge_attr = saved[8], &w_edge = saved[9], &h_src = saved[10],
                     &seed = saved[11], &message_seed = saved[12], &alpha = saved[13];
    const auto s = saved_settings(ctx);
    const auto needs = ctx->saved_data["needs"].toBoolList();
    if (at::GradMode::is_enabled())
      return reference_vjp("gatv2_forward",
                           {ptr, src, argument(t_ptr), argument(t_col), argument(t_perm), x_l,
                            x_r, att, argument(edge_attr), argument(w_edge), h_src,
                            s.negative_slope, s.dropout, argument(seed), s.message_dropout,
                            argument(message_seed)},
                           grads, needs);
    check_transposed(t_ptr);
    // Still one tensor once unpacked: saved-tensor hooks that copy (offloading) unpack two.
    const bool shared = ctx->saved_data["shared"].toBool() && x_l.is_same(h_src);
    const bool edges = edge_attr.defined();
    const std::array<bool, 6> mask{needs[5], needs[6], needs[7], needs[8] && edges,
                                   needs[9] && edges, needs[10]};
    auto out = gradients(needs.size(), 5, mask, op.call(
        upstream(grads[0], ptr, h_src), contiguous(grads[1]), ptr, src, t_ptr, t_col, t_perm,
        x_l, x_r, att, present(edge_attr), present(w_edge), h_src, alpha, s.negative_slope,
        s.dropout, present(seed), mask, s.message_dropout, present(message_seed), shared));
    // gatv2_backward decides whether it merged the two (merges_h_src in attend.py says when);
    // an empty grad_h_src says it did: grad_x_l holds the sum, one gradient to pass on.
    if (out[10].defined() && out[10].sizes() != h_src.sizes()) out[10] = at::Tensor();
    return out;
  }
};

std::tuple<at::Tensor, at::Tensor> gatv2_forward_autograd(
    const at::Tensor& ptr, const at::Tensor& src, const OptTensor& t_ptr,
    const OptTensor& t_col, const OptTensor& t_perm, const at::Tensor& x_l,
    const at::Tensor& x_r, const at::Tensor& att, const OptTensor& edge_attr,
    const OptTensor& w_edge, const at::Tensor& h_src, double negative_slope, double dropout,
    const OptTensor& seed, double message_dropout, const OptTensor& message_seed) {
  if (records(x_l, x_r, att, edge_attr, w_edge, h_src)) {
    auto outputs = GATv2Function::apply(ptr, src, t_ptr, t_col, t_perm, x_l, x_r, att,
                                        edge_attr, w_edge, h_src, negative_slope, dropout, seed,
                                        message_dropout, message_seed);
    return {outputs[0], outputs[1]};
  }
  static const auto op = typed_op<Signature>("gat_pyg::gatv2_forward");
  return below_autograd(op, ptr, src, t_ptr, t_col, t_perm, x_l, x_r, att, edge_attr, w_edge,
                        h_src, negative_slope, dropout, seed, message_dropout, message_seed);
}

}  // namespace
}  // namespace gat_pyg

TORCH_LIBRARY_IMPL(gat_pyg, CPU, m) {
  m.impl("gatv2_forward", &gat_pyg::gatv2_forward);
  m.impl("gatv2_backward", &gat_pyg::gatv2_backward);
}

TORCH_LIBRARY_IMPL(gat_pyg, AutogradCPU, m) {
  m.impl("gatv2_forward", &gat_pyg::gatv2_forward_autograd);
}

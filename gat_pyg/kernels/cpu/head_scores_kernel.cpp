// GAT's per-node, per-head scores and their backward (Velickovic et al. 2018, the
// a_s^T W x_j and a_t^T W x_i halves of e_ij, PyG's (x * att_src).sum(-1)):
//
//   forward    s[n, h]       = sum_c x[n, h, c] * att[h, c]
//   backward   grad_x[n,h,c] = grad[n, h] * att[h, c]
//              grad_att[h,c] = sum_n grad[n, h] * x[n, h, c]
//
// One pass each instead of the broadcast product and reduction (or a block-diagonal matrix
// product) and their backward in ATen, ~10 small operations. The sum over nodes runs over fixed
// blocks of kNodes nodes whose partial sums are added in block order, so results do not depend
// on the thread count. The common shape, 8 heads x 8 channels of float32, takes eight-float
// vectors (simd.h); any other shape, plain loops.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <vector>

#include <torch/library.h>

#include "autograd.h"
#include "common.h"

namespace gat_pyg {
namespace {

constexpr int64_t kNodes = 1024;

void check_scores_inputs(const at::Tensor& x, const at::Tensor& att) {
  const auto dtype = x.scalar_type();
  TORCH_CHECK(dtype == at::kFloat || dtype == at::kDouble || dtype == at::kBFloat16,
              "gat_pyg: x must be float32, float64 or bfloat16, got ", dtype);
  check_tensor("x", x, dtype, {-1, -1, -1});
  check_tensor("att", att, dtype, {x.size(1), x.size(2)});
}

struct Scores {   // s[n, :] for n in [begin, end)
  template <Isa isa, typename scalar_t>
  static GAT_PYG_INLINE void run(const scalar_t*& x, const scalar_t*& att, scalar_t*& s,
                                 const int64_t& heads, const int64_t& channels,
                                 const int64_t& begin, const int64_t& end) {
    using acc_t = at::opmath_type<scalar_t>;
#if GAT_PYG_VEC8
    if constexpr (std::is_same_v<scalar_t, float>) {
      if (heads == 8 && channels == 8) {
        f32x8 a[8];
        for (int h = 0; h < 8; ++h) a[h] = load8(att + 8 * h);
        for (int64_t n = begin; n < end; ++n) {
          f32x8 p[8];
          for (int h = 0; h < 8; ++h) p[h] = load8(x + n * 64 + 8 * h) * a[h];
          store8(s + n * 8, sums8(p));
        }
        return;
      }
    }
#endif
    for (int64_t n = begin; n < end; ++n)
      for (int64_t h = 0; h < heads; ++h) {
        const scalar_t* row = x + (n * heads + h) * channels;
        const scalar_t* a = att + h * channels;
        acc_t sum = 0;
        for (int64_t c = 0; c < channels; ++c)
          sum += static_cast<acc_t>(row[c]) * static_cast<acc_t>(a[c]);
        s[n * heads + h] = static_cast<scalar_t>(sum);
      }
  }
};

struct InputGrad {   // grad_x[n, h, :] = grad[n, h] * att[h, :] for n in [begin, end)
  template <Isa isa, typename scalar_t>
  static GAT_PYG_INLINE void run(const scalar_t*& grad, const scalar_t*& att, scalar_t*& gx,
                                 const int64_t& heads, const int64_t& channels,
                                 const int64_t& begin, const int64_t& end) {
    using acc_t = at::opmath_type<scalar_t>;
#if GAT_PYG_VEC8
    if constexpr (std::is_same_v<scalar_t, float>) {
      if (heads == 8 && channels == 8) {
        f32x8 a[8];
        for (int h = 0; h < 8; ++h) a[h] = load8(att + 8 * h);
        for (int64_t n = begin; n < end; ++n)
          for (int h = 0; h < 8; ++h) store8(gx + n * 64 + 8 * h, splat8(grad[n * 8 + h]) * a[h]);
        return;
      }
    }
#endif
    for (int64_t n = begin; n < end; ++n)
      for (int64_t h = 0; h < heads; ++h) {
        const acc_t g = static_cast<acc_t>(grad[n * heads + h]);
        const scalar_t* a = att + h * channels;
        scalar_t* out = gx + (n * heads + h) * channels;
#pragma omp simd
        for (int64_t c = 0; c < channels; ++c)
          out[c] = static_cast<scalar_t>(g * static_cast<acc_t>(a[c]));
      }
  }
};

struct AttGrad {   // partial[h, c] = sum over n in [begin, end) of grad[n, h] * x[n, h, c]
  template <Isa isa, typename scalar_t, typename acc_t>
  static GAT_PYG_INLINE void run(const scalar_t*& grad, const scalar_t*& x, acc_t*& partial,
                                 const int64_t& heads, const int64_t& channels,
                                 const int64_t& begin, const int64_t& end) {
    const int64_t width = heads * channels;
#if GAT_PYG_VEC8
    if constexpr (std::is_same_v<scalar_t, float>) {
      if (heads == 8 && channels == 8) {
        f32x8 sum[8] = {};
        for (int64_t n = begin; n < end; ++n)
          for (int h = 0; h < 8; ++h) sum[h] += splat8(grad[n * 8 + h]) * load8(x + n * 64 + 8 * h);
        for (int h = 0; h < 8; ++h) store8(partial + 8 * h, sum[h]);
        return;
      }
    }
#endif
    std::fill(partial, partial + width, acc_t(0));
    for (int64_t n = begin; n < end; ++n)
      for (int64_t h = 0; h < heads; ++h) {
        const acc_t g = static_cast<acc_t>(grad[n * heads + h]);
        const scalar_t* row = x + (n * heads + h) * channels;
        acc_t* out = partial + h * channels;
#pragma omp simd
        for (int64_t c = 0; c < channels; ++c) out[c] += g * static_cast<acc_t>(row[c]);
      }
  }
};

}  // namespace

at::Tensor head_scores(const at::Tensor& x, const at::Tensor& att) {
  check_scores_inputs(x, att);
  const int64_t nodes = x.size(0), heads = x.size(1), channels = x.size(2);
  at::Tensor s = at::empty({nodes, heads}, x.options());
  if (nodes == 0 || heads == 0) return s;
  const Isa isa = active_isa();
  AT_DISPATCH_FLOATING_TYPES_AND(at::kBFloat16, x.scalar_type(), "head_scores", [&] {
    constexpr bool wide = !std::is_same_v<scalar_t, double>;
    const scalar_t* xp = x.const_data_ptr<scalar_t>();
    const scalar_t* ap = att.const_data_ptr<scalar_t>();
    scalar_t* sp = s.data_ptr<scalar_t>();
    const int64_t grain =
        std::max<int64_t>(1, (1 << 14) / std::max<int64_t>(1, heads * channels));
    at::parallel_for(0, nodes, grain, [&](int64_t begin, int64_t end) {
      dispatch_isa<Scores, wide>(isa, xp, ap, sp, heads, channels, begin, end);
    });
  });
  return s;
}

std::tuple<at::Tensor, at::Tensor> head_scores_backward(const at::Tensor& grad,
                                                        const at::Tensor& x,
                                                        const at::Tensor& att,
                                                        std::array<bool, 2> output_mask) {
  check_scores_inputs(x, att);
  check_tensor("grad", grad, x.scalar_type(), {x.size(0), x.size(1)});
  const int64_t nodes = x.size(0), heads = x.size(1), channels = x.size(2);
  at::Tensor grad_x = output_mask[0] ? at::empty_like(x) : x.new_empty({0});
  at::Tensor grad_att = output_mask[1] ? at::zeros_like(att) : att.new_empty({0});
  if (nodes == 0 || heads == 0 || channels == 0) return {grad_x, grad_att};
  const Isa isa = active_isa();
  AT_DISPATCH_FLOATING_TYPES_AND(at::kBFloat16, x.scalar_type(), "head_scores_backward", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    constexpr bool wide = !std::is_same_v<scalar_t, double>;
    const scalar_t* g = grad.const_data_ptr<scalar_t>();
    const scalar_t* xp = x.const_data_ptr<scalar_t>();
    const scalar_t* ap = att.const_data_ptr<scalar_t>();
    if (output_mask[0]) {
      scalar_t* gx = grad_x.data_ptr<scalar_t>();
      at::parallel_for(0, nodes, std::max<int64_t>(1, (1 << 14) / (heads * channels)),
                       [&](int64_t begin, int64_t end) {
        dispatch_isa<InputGrad, wide>(isa, g, ap, gx, heads, channels, begin, end);
      });
    }
    if (output_mask[1]) {
      const int64_t width = heads * channels, blocks = (nodes + kNodes - 1) / kNodes;
      std::vector<acc_t> partials(static_cast<size_t>(blocks * width));
      at::parallel_for(0, blocks, 1, [&](int64_t first, int64_t last) {
        for (int64_t b = first; b < last; ++b) {
          acc_t* partial = partials.data() + b * width;
          const int64_t begin = b * kNodes, end = std::min(nodes, begin + kNodes);
          dispatch_isa<AttGrad, wide>(isa, g, xp, partial, heads, channels, begin, end);
        }
      });
      scalar_t* ga = grad_att.data_ptr<scalar_t>();
      for (int64_t k = 0; k < width; ++k) {
        acc_t sum = 0;
        for (int64_t b = 0; b < blocks; ++b) sum += partials[b * width + k];
        ga[k] = static_cast<scalar_t>(sum);
      }
    }
  });
  return {grad_x, grad_att};
}

// Autograd (autograd.h): backward = head_scores_backward with the saved inputs.
namespace {

using Signature = decltype(head_scores);
using BackwardSignature = decltype(head_scores_backward);

class HeadScoresFunction : public torch::autograd::Function<HeadScoresFunction> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& att) {
    static const auto op = typed_op<Signature>("gat_pyg::head_scores");
    ctx->save_for_backward({x, att});
    ctx->saved_data["needs"] = needs_grad(x, att);
    ctx->set_materialize_grads(false);
    return below_autograd(op, x, att);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    static const auto op = typed_op<BackwardSignature>("gat_pyg::head_scores_backward");
    if (!grads[0].defined()) return {at::Tensor(), at::Tensor()};
    const auto saved = ctx->get_saved_variables();
    const auto needs = ctx->saved_data["needs"].toBoolList();
    if (at::GradMode::is_enabled()) return reference_vjp("head_scores", {saved[0], saved[1]},
                                                         grads, needs);
    const std::array<bool, 2> mask{needs[0], needs[1]};
    return gradients(2, 0, mask, op.call(grads[0].contiguous(), saved[0], saved[1], mask));
  }
};

at::Tensor head_scores_autograd(const at::Tensor& x, const at::Tensor& att) {
  if (records(x, att)) return HeadScoresFunction::apply(x, att);
  static const auto op = typed_op<Signature>("gat_pyg::head_scores");
  return below_autograd(op, x, att);
}

}  // namespace
}  // namespace gat_pyg

TORCH_LIBRARY_IMPL(gat_pyg, CPU, m) {
  m.impl("head_scores", &gat_pyg::head_scores);
  m.impl("head_scores_backward", &gat_pyg::head_scores_backward);
}

TORCH_LIBRARY_IMPL(gat_pyg, AutogradCPU, m) {
  m.impl("head_scores", &gat_pyg::head_scores_autograd);
}

// Autograd for the forward operators, in C++ (the Autograd dispatch key), so that a call that
// needs gradients costs a few microseconds more than one that does not; the same rules
// registered from Python (torch.library.register_autograd) cost about 70 us per call.
//
//   gat_forward / gatv2_forward:  backward = gat_backward / gatv2_backward with the saved inputs,
//                                 the (pre-dropout) attention and the dropout seeds;
//   attention_dropout, feature_dropout: linear in their input, so their own backward;
//   sparse_linear, head_scores:   backward = sparse_linear_backward / head_scores_backward with
//                                 the saved inputs.
//
// Every operator called here goes through the dispatcher below autograd, so fake tensors
// (torch.compile) and tracing see the same operators as eager calls. First derivatives only.
// torch.func transforms do not support C++ autograd functions; the Python wrappers switch to
// torch.autograd.Function twins while one is active (gat_pyg/kernels/library.py), which call
// these operators with gradients disabled (then no autograd function is created here).
#include <array>
#include <tuple>

#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/library.h>

#include "ops.h"

namespace gat_pyg {
namespace {

using at::Tensor;
using OptTensor = std::optional<Tensor>;
using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

template <typename Signature>
c10::TypedOperatorHandle<Signature> handle(const char* name) {
  return c10::Dispatcher::singleton().findSchemaOrThrow(name, "").typed<Signature>();
}

const auto& gat_forward_op() {
  static const auto op = handle<decltype(gat_forward)>("gat_pyg::gat_forward");
  return op;
}
const auto& gat_backward_op() {
  static const auto op = handle<decltype(gat_backward)>("gat_pyg::gat_backward");
  return op;
}
const auto& gatv2_forward_op() {
  static const auto op = handle<decltype(gatv2_forward)>("gat_pyg::gatv2_forward");
  return op;
}
const auto& gatv2_backward_op() {
  static const auto op = handle<decltype(gatv2_backward)>("gat_pyg::gatv2_backward");
  return op;
}
using DropoutOp = c10::TypedOperatorHandle<Tensor(const Tensor&, double, const OptTensor&)>;
const DropoutOp& attention_dropout_op() {
  static const auto op = handle<decltype(attention_dropout)>("gat_pyg::attention_dropout");
  return op;
}
const DropoutOp& feature_dropout_op() {
  static const auto op = handle<decltype(feature_dropout)>("gat_pyg::feature_dropout");
  return op;
}

const auto& sparse_linear_op() {
  static const auto op = handle<decltype(sparse_linear)>("gat_pyg::sparse_linear");
  return op;
}
const auto& sparse_linear_backward_op() {
  static const auto op =
      handle<decltype(sparse_linear_backward)>("gat_pyg::sparse_linear_backward");
  return op;
}

const auto& head_scores_op() {
  static const auto op = handle<decltype(head_scores)>("gat_pyg::head_scores");
  return op;
}
const auto& head_scores_backward_op() {
  static const auto op = handle<decltype(head_scores_backward)>("gat_pyg::head_scores_backward");
  return op;
}

bool requires_grad(const Tensor& t) { return t.defined() && t.requires_grad(); }
bool requires_grad(const OptTensor& t) { return t.has_value() && requires_grad(*t); }
Tensor or_undefined(const OptTensor& t) { return t.value_or(Tensor()); }
OptTensor present(const Tensor& t) { return t.defined() ? OptTensor(t) : std::nullopt; }
OptTensor contiguous(const Tensor& t) {
  return t.defined() ? OptTensor(t.contiguous()) : std::nullopt;
}

// The graph saved by forward: (ptr, src, t_ptr, t_col, t_perm); backward needs the transposed
// order, which a caller may leave out when it asks for no gradient.
void check_transposed(const Tensor& t_ptr) {
  TORCH_CHECK(t_ptr.defined(), "gat_pyg: backward needs the transposed order (t_ptr, t_col, "
              "t_perm); pass it to the forward call when gradients are needed");
}

// grad_out, or zeros when only alpha was used (materialised grads are off).
Tensor upstream(const Tensor& grad_out, const Tensor& ptr, const Tensor& h_src) {
  if (grad_out.defined()) return grad_out.contiguous();
  return at::zeros({ptr.size(0) - 1, h_src.size(1), h_src.size(2)}, h_src.options());
}

// The scalar settings that both backward passes read back.
void save_settings(AutogradContext* ctx, double negative_slope, double dropout,
                   double message_dropout) {
  ctx->saved_data["negative_slope"] = negative_slope;
  ctx->saved_data["dropout"] = dropout;
  ctx->saved_data["message_dropout"] = message_dropout;
}
double setting(AutogradContext* ctx, const char* name) {
  return ctx->saved_data[name].toDouble();
}

// What backward returns for (graph: 5 tensors, the N feature inputs, `trailing` settings and
// seeds): a gradient for each feature input that wants one, none for everything else.
template <typename... Grads>
variable_list input_grads(const std::tuple<Grads...>& grads,
                          const std::array<bool, sizeof...(Grads)>& wanted, size_t trailing) {
  variable_list out(5);
  size_t i = 0;
  std::apply([&](const auto&... g) { ((out.push_back(wanted[i++] ? g : Tensor())), ...); },
             grads);
  out.resize(out.size() + trailing);
  return out;
}

class GATFunction : public torch::autograd::Function<GATFunction> {
 public:
  static variable_list forward(AutogradContext* ctx, const Tensor& ptr, const Tensor& src,
                               const OptTensor& t_ptr, const OptTensor& t_col,
                               const OptTensor& t_perm, const Tensor& s_src,
                               const OptTensor& s_dst, const OptTensor& s_edge,
                               const Tensor& h_src, double negative_slope, double dropout,
                               const OptTensor& seed, double message_dropout,
                               const OptTensor& message_seed) {
    at::AutoDispatchBelowADInplaceOrView guard;
    auto [out, alpha] =
        gat_forward_op().call(ptr, src, t_ptr, t_col, t_perm, s_src, s_dst, s_edge, h_src,
                              negative_slope, dropout, seed, message_dropout, message_seed);
    ctx->save_for_backward({ptr, src, or_undefined(t_ptr), or_undefined(t_col),
                            or_undefined(t_perm), s_src, or_undefined(s_dst),
                            or_undefined(s_edge), h_src, alpha, or_undefined(seed),
                            or_undefined(message_seed)});
    save_settings(ctx, negative_slope, dropout, message_dropout);
    ctx->saved_data["mask"] = c10::List<bool>({requires_grad(s_src), requires_grad(s_dst),
                                               requires_grad(s_edge), requires_grad(h_src)});
    // An unused alpha would otherwise get an [E, H] tensor of zeros as its gradient.
    ctx->set_materialize_grads(false);
    return {out, alpha};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const Tensor &ptr = saved[0], &src = saved[1], &t_ptr = saved[2], &t_col = saved[3],
                 &t_perm = saved[4], &s_src = saved[5], &s_dst = saved[6], &s_edge = saved[7],
                 &h_src = saved[8], &alpha = saved[9], &seed = saved[10],
                 &message_seed = saved[11];
    check_transposed(t_ptr);
    const auto mask = ctx->saved_data["mask"].toBoolList();
    const std::array<bool, 4> wanted{mask[0], mask[1], mask[2], mask[3]};
    const auto grads_in = gat_backward_op().call(
        upstream(grads[0], ptr, h_src), contiguous(grads[1]), ptr, src, t_ptr, t_col, t_perm,
        s_src, present(s_dst), present(s_edge), h_src, alpha, setting(ctx, "negative_slope"),
        setting(ctx, "dropout"), present(seed), wanted, setting(ctx, "message_dropout"),
        present(message_seed));
    // After the features: negative_slope, dropout, seed, message_dropout, message_seed.
    return input_grads(grads_in, wanted, 5);
  }
};

class GATv2Function : public torch::autograd::Function<GATv2Function> {
 public:
  static variable_list forward(AutogradContext* ctx, const Tensor& ptr, const Tensor& src,
                               const OptTensor& t_ptr, const OptTensor& t_col,
                               const OptTensor& t_perm, const Tensor& x_l, const Tensor& x_r,
                               const Tensor& att, const OptTensor& edge_attr,
                               const OptTensor& w_edge, const Tensor& h_src,
                               double negative_slope, double dropout, const OptTensor& seed,
                               double message_dropout, const OptTensor& message_seed) {
    at::AutoDispatchBelowADInplaceOrView guard;
    auto [out, alpha] = gatv2_forward_op().call(ptr, src, t_ptr, t_col, t_perm, x_l, x_r, att,
                                                edge_attr, w_edge, h_src, negative_slope, dropout,
                                                seed, message_dropout, message_seed);
    ctx->save_for_backward({ptr, src, or_undefined(t_ptr), or_undefined(t_col),
                            or_undefined(t_perm), x_l, x_r, att, or_undefined(edge_attr),
                            or_undefined(w_edge), h_src, alpha, or_undefined(seed),
                            or_undefined(message_seed)});
    save_settings(ctx, negative_slope, dropout, message_dropout);
    ctx->saved_data["mask"] = c10::List<bool>(
        {requires_grad(x_l), requires_grad(x_r), requires_grad(att), requires_grad(edge_attr),
         requires_grad(w_edge), requires_grad(h_src)});
    // GATv2Conv passes its source projection as both x_l and h_src (PyG's x_j is lin_l(x)).
    ctx->saved_data["shared"] = x_l.is_same(h_src);
    ctx->set_materialize_grads(false);
    return {out, alpha};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const Tensor &ptr = saved[0], &src = saved[1], &t_ptr = saved[2], &t_col = saved[3],
                 &t_perm = saved[4], &x_l = saved[5], &x_r = saved[6], &att = saved[7],
                 &edge_attr = saved[8], &w_edge = saved[9], &h_src = saved[10],
                 &alpha = saved[11], &seed = saved[12], &message_seed = saved[13];
    check_transposed(t_ptr);
    const auto mask = ctx->saved_data["mask"].toBoolList();
    const bool edges = edge_attr.defined();
    const std::array<bool, 6> wanted{mask[0], mask[1], mask[2], mask[3] && edges,
                                     mask[4] && edges, mask[5]};
    const bool shared = ctx->saved_data["shared"].toBool();
    const auto grads_in = gatv2_backward_op().call(
        upstream(grads[0], ptr, h_src), contiguous(grads[1]), ptr, src, t_ptr, t_col, t_perm,
        x_l, x_r, att, present(edge_attr), present(w_edge), h_src, alpha,
        setting(ctx, "negative_slope"), setting(ctx, "dropout"), present(seed), wanted,
        setting(ctx, "message_dropout"), present(message_seed), shared);
    auto [g_x_l, g_x_r, g_att, g_edge_attr, g_w_edge, g_h_src] = grads_in;
    if (wanted[5] && g_h_src.sizes() != h_src.sizes()) {
      // gatv2_backward merged the two (it decides when; an empty grad_h_src says it did):
      // g_x_l holds the sum, so autograd has one gradient to pass on, not two to add.
      g_h_src = Tensor();
    }
    return input_grads(std::make_tuple(g_x_l, g_x_r, g_att, g_edge_attr, g_w_edge, g_h_src),
                       wanted, 5);
  }
};

// attention_dropout and feature_dropout: x * keep / (1 - p), linear, so its own backward.
template <const DropoutOp& (*op)()>
class DropoutFunction : public torch::autograd::Function<DropoutFunction<op>> {
 public:
  static Tensor forward(AutogradContext* ctx, const Tensor& x, double dropout,
                        const OptTensor& seed) {
    at::AutoDispatchBelowADInplaceOrView guard;
    ctx->save_for_backward({or_undefined(seed)});
    ctx->saved_data["dropout"] = dropout;
    return op().call(x, dropout, seed);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const Tensor seed = ctx->get_saved_variables()[0];
    return {op().call(grads[0].contiguous(), ctx->saved_data["dropout"].toDouble(),
                      present(seed)),
            Tensor(), Tensor()};
  }
};

class SparseLinearFunction : public torch::autograd::Function<SparseLinearFunction> {
 public:
  static Tensor forward(AutogradContext* ctx, const Tensor& row, const Tensor& col,
                        const Tensor& values, const Tensor& weight, int64_t num_rows) {
    at::AutoDispatchBelowADInplaceOrView guard;
    ctx->save_for_backward({row, col, values, weight});
    ctx->saved_data["mask"] = c10::List<bool>({values.requires_grad(), weight.requires_grad()});
    return sparse_linear_op().call(row, col, values, weight, num_rows);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto mask = ctx->saved_data["mask"].toBoolList();
    const std::array<bool, 2> wanted{mask[0], mask[1]};
    const auto grads_in = sparse_linear_backward_op().call(grads[0].contiguous(), saved[0],
                                                           saved[1], saved[2], saved[3], wanted);
    return {Tensor(), Tensor(), wanted[0] ? std::get<0>(grads_in) : Tensor(),
            wanted[1] ? std::get<1>(grads_in) : Tensor(), Tensor()};
  }
};

class HeadScoresFunction : public torch::autograd::Function<HeadScoresFunction> {
 public:
  static Tensor forward(AutogradContext* ctx, const Tensor& x, const Tensor& att) {
    at::AutoDispatchBelowADInplaceOrView guard;
    ctx->save_for_backward({x, att});
    ctx->saved_data["mask"] = c10::List<bool>({x.requires_grad(), att.requires_grad()});
    return head_scores_op().call(x, att);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto mask = ctx->saved_data["mask"].toBoolList();
    const std::array<bool, 2> wanted{mask[0], mask[1]};
    const auto grads_in =
        head_scores_backward_op().call(grads[0].contiguous(), saved[0], saved[1], wanted);
    return {wanted[0] ? std::get<0>(grads_in) : Tensor(),
            wanted[1] ? std::get<1>(grads_in) : Tensor()};
  }
};

// The Autograd kernels: without gradients to record, straight to the kernels below autograd.
std::tuple<Tensor, Tensor> gat_forward_autograd(
    const Tensor& ptr, const Tensor& src, const OptTensor& t_ptr, const OptTensor& t_col,
    const OptTensor& t_perm, const Tensor& s_src, const OptTensor& s_dst,
    const OptTensor& s_edge, const Tensor& h_src, double negative_slope, double dropout,
    const OptTensor& seed, double message_dropout, const OptTensor& message_seed) {
  if (!at::GradMode::is_enabled() || !(requires_grad(s_src) || requires_grad(s_dst) ||
                                       requires_grad(s_edge) || requires_grad(h_src))) {
    at::AutoDispatchBelowADInplaceOrView guard;
    return gat_forward_op().call(ptr, src, t_ptr, t_col, t_perm, s_src, s_dst, s_edge, h_src,
                                 negative_slope, dropout, seed, message_dropout, message_seed);
  }
  auto outputs = GATFunction::apply(ptr, src, t_ptr, t_col, t_perm, s_src, s_dst, s_edge, h_src,
                                    negative_slope, dropout, seed, message_dropout,
                                    message_seed);
  return {outputs[0], outputs[1]};
}

std::tuple<Tensor, Tensor> gatv2_forward_autograd(
    const Tensor& ptr, const Tensor& src, const OptTensor& t_ptr, const OptTensor& t_col,
    const OptTensor& t_perm, const Tensor& x_l, const Tensor& x_r, const Tensor& att,
    const OptTensor& edge_attr, const OptTensor& w_edge, const Tensor& h_src,
    double negative_slope, double dropout, const OptTensor& seed, double message_dropout,
    const OptTensor& message_seed) {
  if (!at::GradMode::is_enabled() ||
      !(requires_grad(x_l) || requires_grad(x_r) || requires_grad(att) ||
        requires_grad(edge_attr) || requires_grad(w_edge) || requires_grad(h_src))) {
    at::AutoDispatchBelowADInplaceOrView guard;
    return gatv2_forward_op().call(ptr, src, t_ptr, t_col, t_perm, x_l, x_r, att, edge_attr,
                                   w_edge, h_src, negative_slope, dropout, seed, message_dropout,
                                   message_seed);
  }
  auto outputs = GATv2Function::apply(ptr, src, t_ptr, t_col, t_perm, x_l, x_r, att, edge_attr,
                                      w_edge, h_src, negative_slope, dropout, seed,
                                      message_dropout, message_seed);
  return {outputs[0], outputs[1]};
}

template <const DropoutOp& (*op)()>
Tensor dropout_autograd(const Tensor& x, double dropout, const OptTensor& seed) {
  if (!at::GradMode::is_enabled() || !x.requires_grad()) {
    at::AutoDispatchBelowADInplaceOrView guard;
    return op().call(x, dropout, seed);
  }
  return DropoutFunction<op>::apply(x, dropout, seed);
}

Tensor head_scores_autograd(const Tensor& x, const Tensor& att) {
  if (!at::GradMode::is_enabled() || !(x.requires_grad() || att.requires_grad())) {
    at::AutoDispatchBelowADInplaceOrView guard;
    return head_scores_op().call(x, att);
  }
  return HeadScoresFunction::apply(x, att);
}

Tensor sparse_linear_autograd(const Tensor& row, const Tensor& col, const Tensor& values,
                              const Tensor& weight, int64_t num_rows) {
  if (!at::GradMode::is_enabled() || !(values.requires_grad() || weight.requires_grad())) {
    at::AutoDispatchBelowADInplaceOrView guard;
    return sparse_linear_op().call(row, col, values, weight, num_rows);
  }
  return SparseLinearFunction::apply(row, col, values, weight, num_rows);
}

}  // namespace
}  // namespace gat_pyg

TORCH_LIBRARY_IMPL(gat_pyg, Autograd, m) {
  m.impl("sparse_linear", &gat_pyg::sparse_linear_autograd);
  m.impl("head_scores", &gat_pyg::head_scores_autograd);
  m.impl("gat_forward", &gat_pyg::gat_forward_autograd);
  m.impl("gatv2_forward", &gat_pyg::gatv2_forward_autograd);
  m.impl("attention_dropout", &gat_pyg::dropout_autograd<&gat_pyg::attention_dropout_op>);
  m.impl("feature_dropout", &gat_pyg::dropout_autograd<&gat_pyg::feature_dropout_op>);
}

// What the operators' CPU autograd shares. Each <op>_kernel.cpp registers, next to its CPU
// kernels, the autograd of its forward operator for CPU tensors (TORCH_LIBRARY_IMPL(gat_pyg,
// AutogradCPU, ...)): a torch::autograd::Function in C++ whose backward calls the operator's
// *_backward operator through the dispatcher. The same rule written in Python (a
// torch.autograd.Function, gat_pyg/kernels/dispatch.py, which the other backends use) costs
// ~40 us per call each way, about a tenth of a small graph's training step per operator; here
// it costs a few.
//
// First derivatives come from the kernels. When the backward is itself recorded
// (create_graph=True) it calls gat_pyg::<op>_vjp instead: the vector-Jacobian product of the
// operator's pure-torch reference, defined in Python from differentiable torch operations,
// so that autograd records it and every higher derivative is right (reference_vjp below).
//
// The Python wrapper (Operator.__call__) calls these only in eager code; torch.compile and the
// torch.func transforms take the Python autograd function or the reference (dispatch.py).
#pragma once

#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/csrc/autograd/custom_function.h>

#include <array>
#include <optional>
#include <tuple>
#include <utility>
#include <string>
#include <vector>

namespace gat_pyg {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;
using OptTensor = std::optional<at::Tensor>;

// The typed handle of operator gat_pyg::`name`, looked up once per call site.
template <typename Signature>
c10::TypedOperatorHandle<Signature> typed_op(const char* name) {
  return c10::Dispatcher::singleton().findSchemaOrThrow(name, "").typed<Signature>();
}

inline bool requires_grad(const at::Tensor& t) { return t.defined() && t.requires_grad(); }
inline bool requires_grad(const OptTensor& t) { return t.has_value() && requires_grad(*t); }
template <typename T>
bool requires_grad(const T&) { return false; }   // settings, seeds' absence, sizes

// Whether autograd has anything to record for a call with these arguments.
template <typename... Args>
bool records(const Args&... args) {
  return at::GradMode::is_enabled() && (requires_grad(args) || ...);
}

// Which of the arguments want a gradient, one flag per argument (saved by forward: backward's
// output_mask, and the `needs` of the differentiable backward).
template <typename... Args>
c10::List<bool> needs_grad(const Args&... args) {
  return c10::List<bool>({requires_grad(args)...});
}

// Calls `op` below autograd: the kernel of the tensors' device, nothing recorded.
template <typename Signature, typename... Args>
auto below_autograd(const c10::TypedOperatorHandle<Signature>& op, Args&&... args) {
  at::AutoDispatchBelowADInplaceOrView guard;
  return op.call(std::forward<Args>(args)...);
}

// backward's result, one entry per forward argument: the backward kernel's gradients `grads`
// (a tuple) for the arguments `first`, `first + 1`, ..., each where `mask` wants it; undefined
// elsewhere (settings, seeds, the graph, unwanted inputs).
template <size_t N, typename... Grads>
variable_list gradients(size_t num_args, size_t first, const std::array<bool, N>& mask,
                        const std::tuple<Grads...>& grads) {
  static_assert(N == sizeof...(Grads), "one mask entry per gradient");
  variable_list out(num_args);
  size_t i = 0;
  std::apply([&](const auto&... g) { ((out[first + i] = mask[i] ? g : at::Tensor(), ++i), ...); },
             grads);
  return out;
}

// The attention operators' settings, saved by forward for backward.
struct AttentionSettings {
  double negative_slope, dropout, message_dropout;
};
inline void save_settings(AutogradContext* ctx, const AttentionSettings& s) {
  ctx->saved_data["settings"] = c10::List<double>({s.negative_slope, s.dropout,
                                                   s.message_dropout});
}
inline AttentionSettings saved_settings(AutogradContext* ctx) {
  const auto s = ctx->saved_data["settings"].toDoubleList();
  return {s[0], s[1], s[2]};
}

inline at::Tensor or_undefined(const OptTensor& t) { return t.value_or(at::Tensor()); }
inline OptTensor present(const at::Tensor& t) {
  return t.defined() ? OptTensor(t) : std::nullopt;
}
inline OptTensor contiguous(const at::Tensor& t) {
  return t.defined() ? OptTensor(t.contiguous()) : std::nullopt;
}
// A saved tensor as an argument of a boxed call: None where it was absent.
inline c10::IValue argument(const at::Tensor& t) {
  return t.defined() ? c10::IValue(t) : c10::IValue();
}

// The attention operators' backward reads the graph's transposed order, which a forward call
// that needs no gradient may leave out (the message is Python's, dispatch.py's other backends).
inline void check_transposed(const at::Tensor& t_ptr) {
  TORCH_CHECK_VALUE(t_ptr.defined(), "t_ptr, t_col, t_perm: the kernels' backward reads the "
                    "transposed order; pass it to the forward call when an input requires grad");
}

// The attention operators' grad_out, contiguous; zeros when only alpha was used.
inline at::Tensor upstream(const at::Tensor& grad_out, const at::Tensor& ptr,
                           const at::Tensor& h_src) {
  if (grad_out.defined()) return grad_out.contiguous();
  return at::zeros({ptr.size(0) - 1, h_src.size(1), h_src.size(2)}, h_src.options());
}

// The differentiable backward of forward operator `name` (create_graph=True): calls
// gat_pyg::<name>_vjp(grads, needs, *args), which returns the gradients of the wanted
// arguments in order; here spread back to one entry per argument (undefined where not wanted).
variable_list reference_vjp(const std::string& name, std::vector<c10::IValue> args,
                            const variable_list& grads, const c10::List<bool>& needs);

}  // namespace gat_pyg

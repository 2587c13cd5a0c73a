// The differentiable backward of the CPU autograd (see autograd.h).
#include "autograd.h"

#include <ATen/core/stack.h>

#include <mutex>
#include <unordered_map>

namespace gat_pyg {

variable_list reference_vjp(const std::string& name, std::vector<c10::IValue> args,
                            const variable_list& grads, const c10::List<bool>& needs) {
  // Defined by Python (dispatch.Operator) before this library is loaded; one lookup per name.
  static std::mutex lock;
  static std::unordered_map<std::string, c10::OperatorHandle> handles;
  std::optional<c10::OperatorHandle> op;
  {
    std::lock_guard<std::mutex> guard(lock);
    auto found = handles.find(name);
    if (found == handles.end())
      found = handles.emplace(name, c10::Dispatcher::singleton().findSchemaOrThrow(
                                        ("gat_pyg::" + name + "_vjp").c_str(), "")).first;
    op = found->second;
  }
  c10::List<std::optional<at::Tensor>> upstream;
  for (const auto& g : grads) upstream.push_back(present(g));
  torch::jit::Stack stack;
  stack.reserve(args.size() + 2);
  stack.emplace_back(std::move(upstream));
  stack.emplace_back(needs);
  for (auto& a : args) stack.push_back(std::move(a));
  op->callBoxed(stack);
  const auto wanted = stack.at(0).toTensorVector();
  variable_list out(needs.size());
  size_t k = 0;
  for (size_t i = 0; i < needs.size(); ++i)
    if (needs[i]) out[i] = wanted.at(k++);
  TORCH_INTERNAL_ASSERT(k == wanted.size(), "gat_pyg::", name, "_vjp returned ", wanted.size(),
                        " gradients for ", k, " wanted arguments");
  return out;
}

}  // namespace gat_pyg

#include "model/detail/checkpoint.h"

#include <torch/torch.h>

#include <memory>

namespace coca::model::detail {
namespace {

struct Closure : torch::CustomClassHolder {
  explicit Closure(CheckpointFn f) : fn(std::move(f)) {}
  CheckpointFn fn;
};

struct CheckpointFunction : torch::autograd::Function<CheckpointFunction> {
  // Argument 0 is the closure (not a variable), then one entry per input tensor.
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx,
                               c10::intrusive_ptr<Closure> closure, torch::TensorList inputs) {
    ctx->saved_data["fn"] = c10::IValue::make_capsule(closure);
    ctx->save_for_backward(inputs.vec());
    // Function::apply already runs forward with grad mode off: no graph is kept.
    return closure->fn(inputs.vec());
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_outputs) {
    auto closure = c10::static_intrusive_pointer_cast<Closure>(ctx->saved_data["fn"].toCapsule());
    const auto saved = ctx->get_saved_variables();
    std::vector<torch::Tensor> inputs;
    inputs.reserve(saved.size());
    for (const auto& t : saved) inputs.push_back(t.detach().requires_grad_(t.requires_grad()));
    torch::Tensor out;
    {
      torch::AutoGradMode enable(true);
      out = closure->fn(inputs);
    }
    if (out.requires_grad()) torch::autograd::backward({out}, {grad_outputs[0]});
    torch::autograd::variable_list grads;
    grads.reserve(inputs.size() + 1);
    grads.emplace_back();  // the closure
    for (const auto& t : inputs) {
      grads.push_back(t.requires_grad() ? t.grad() : torch::Tensor());
    }
    return grads;
  }
};

}  // namespace

torch::Tensor checkpoint(CheckpointFn fn, const std::vector<torch::Tensor>& inputs) {
  // Only defined tensors become inputs of the autograd node; the closure puts the
  // undefined ones back in their places.
  std::vector<torch::Tensor> args;
  std::vector<bool> defined;
  args.reserve(inputs.size() + 1);
  bool any_requires_grad = false;
  for (const auto& t : inputs) {
    defined.push_back(t.defined());
    if (!t.defined()) continue;
    args.push_back(t);
    any_requires_grad = any_requires_grad || t.requires_grad();
  }
  TORCH_CHECK(!args.empty(), "checkpoint: needs at least one defined input tensor");
  // Parameters used inside fn are not inputs of the node. When no input requires grad,
  // a dummy one makes the output require grad so backward still reaches them.
  if (!any_requires_grad) {
    args.push_back(torch::empty({0}, args.front().options()).requires_grad_(true));
  }
  auto closure = c10::make_intrusive<Closure>(
      [fn = std::move(fn), defined](const std::vector<torch::Tensor>& xs) {
        std::vector<torch::Tensor> full;
        full.reserve(defined.size());
        size_t next = 0;
        for (const bool d : defined) full.push_back(d ? xs[next++] : torch::Tensor());
        return fn(full);
      });
  return CheckpointFunction::apply(closure, torch::TensorList(args));
}

}  // namespace coca::model::detail

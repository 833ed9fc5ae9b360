#include "coca/io/state_dict.h"

#include <torch/torch.h>

#include <set>
#include <stdexcept>

#include "coca/common/error.h"

namespace coca::io {
namespace {

std::string shape_str(torch::IntArrayRef sizes) {
  std::string out = "[";
  for (size_t i = 0; i < sizes.size(); ++i) out += (i ? ", " : "") + std::to_string(sizes[i]);
  return out + "]";
}

std::string join(const std::vector<std::string>& lines) {
  std::string out;
  for (const auto& l : lines) out += (out.empty() ? "" : "\n") + l;
  return out;
}

}  // namespace

NamedTensors state_dict(const torch::nn::Module& module) {
  NamedTensors out;
  for (const auto& item : module.named_parameters(/*recurse=*/true))
    if (item.value().defined()) out.emplace_back(item.key(), item.value().detach());
  for (const auto& item : module.named_buffers(/*recurse=*/true))
    if (item.value().defined()) out.emplace_back(item.key(), item.value().detach());
  return out;
}

LoadReport load_state_dict(torch::nn::Module& module,
                           const std::map<std::string, torch::Tensor>& source,
                           const LoadOptions& options) {
  LoadReport report;
  std::vector<std::string> errors;
  std::vector<std::pair<torch::Tensor, torch::Tensor>> copies;  // (target, source)
  std::set<std::string> known;
  for (auto& [name, target] : state_dict(module)) {
    known.insert(name);
    const auto it = source.find(name);
    if (it == source.end() || !it->second.defined()) {
      report.missing.push_back(name);
      report.problems.push_back("missing key '" + name + "' (expected shape " +
                                shape_str(target.sizes()) + ")");
      continue;
    }
    const torch::Tensor& src = it->second;
    if (src.sizes() != target.sizes()) {
      errors.push_back("shape mismatch for '" + name + "': expected " +
                       shape_str(target.sizes()) + ", found " + shape_str(src.sizes()));
      continue;
    }
    if (src.scalar_type() != target.scalar_type()) {
      if (!options.allow_dtype_cast) {
        errors.push_back("dtype mismatch for '" + name + "': expected " +
                         std::string(c10::toString(target.scalar_type())) + ", found " +
                         c10::toString(src.scalar_type()) + " (dtype casts are not allowed)");
        continue;
      }
      report.cast.push_back(name);
    }
    report.loaded.push_back(name);
    copies.emplace_back(target, src);
  }
  for (const auto& [name, tensor] : source) {
    if (known.count(name)) continue;
    report.unexpected.push_back(name);
    report.problems.push_back("unexpected key '" + name + "' (shape " +
                              (tensor.defined() ? shape_str(tensor.sizes()) : "undefined") + ")");
  }
  if (options.strict) errors.insert(errors.end(), report.problems.begin(), report.problems.end());
  if (!errors.empty()) {
    const std::string what = "cannot load state dict: " + std::to_string(errors.size()) +
                             " problem(s)\n" + join(errors);
    if (!options.source.empty()) throw IoError(options.source, what);
    throw std::invalid_argument(what);
  }
  torch::NoGradGuard no_grad;
  for (auto& [target, src] : copies) target.copy_(src);
  return report;
}

}  // namespace coca::io

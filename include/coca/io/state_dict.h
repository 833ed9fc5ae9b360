// The flat name -> tensor view of a module tree (LibTorch's counterpart of PyTorch's
// Module.state_dict / load_state_dict), shared by checkpoints, safetensors export and
// open_clip import. Names are dotted paths as named_parameters() gives them, e.g.
// "visual.transformer.resblocks.0.ln_1.weight".
#pragma once

#include <torch/nn/module.h>
#include <torch/types.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

namespace coca::io {

using NamedTensors = std::vector<std::pair<std::string, torch::Tensor>>;

/// Every parameter, then every buffer, of `module` and its descendants, each group in
/// registration order (pre-order over the module tree: a module's own tensors before its
/// children's). Undefined tensors (e.g. a bias registered as absent) are skipped. The
/// tensors are detached aliases of the module's storage, not copies.
/// Note: PyTorch's state_dict() interleaves parameters and buffers per module; the set
/// of names is the same.
NamedTensors state_dict(const torch::nn::Module& module);

struct LoadOptions {
  /// Missing and unexpected names are errors; otherwise they are only reported.
  bool strict = true;
  /// A source tensor of another dtype is converted (F16 file into an F32 module);
  /// otherwise a dtype difference is an error.
  bool allow_dtype_cast = true;
  /// Where the tensors come from (a file path). When set, errors are coca::IoError
  /// naming it; when empty, std::invalid_argument.
  std::string source;
};

/// What load_state_dict did, name by name (each list in the module's state_dict order,
/// `unexpected` in source-name order).
struct LoadReport {
  std::vector<std::string> loaded;      ///< copied into the module
  std::vector<std::string> cast;        ///< subset of `loaded` that needed a dtype conversion
  std::vector<std::string> missing;     ///< in the module but not in the source: left unchanged
  std::vector<std::string> unexpected;  ///< in the source but not in the module: ignored
  /// One line per missing or unexpected name, e.g. "missing key 'visual.proj' (expected
  /// shape [64, 64])"; empty when every name matched.
  std::vector<std::string> problems;
};

/// Copies `source` into the parameters and buffers of `module` (under NoGradGuard, on the
/// module's device, converting dtype when allowed). Everything is checked before anything
/// is copied, so on error the module is unchanged. The error message has one line per
/// problem, each naming the tensor: shape mismatches ("shape mismatch for 'a.weight':
/// expected [4, 3], found [3, 4]") and disallowed dtype casts always; missing and
/// unexpected keys when `options.strict`.
LoadReport load_state_dict(torch::nn::Module& module,
                           const std::map<std::string, torch::Tensor>& source,
                           const LoadOptions& options = {});

}  // namespace coca::io

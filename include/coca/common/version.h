// Build information: version, git sha, LibTorch version, CUDA/NCCL availability.
#pragma once

#include <string>

namespace coca {

struct BuildInfo {
  std::string version;        ///< project version (CMake)
  std::string git_sha;        ///< commit the build was configured from
  std::string build_type;     ///< Release, Debug, ...
  std::string torch_version;  ///< LibTorch version compiled against
  bool cuda_compiled = false; ///< LibTorch build has CUDA
  bool nccl_compiled = false; ///< NCCL backend compiled in
  bool gloo_compiled = false; ///< Gloo backend compiled in
};

const BuildInfo& build_info();
/// Multi-line `coca --version` text, including run-time CUDA availability.
std::string version_text();

}  // namespace coca

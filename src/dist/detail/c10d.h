// Private: the c10d pieces coca::dist builds on, and the small 1.13-vs-2.x differences
// in creating a group. The Gloo/NCCL headers are only compiled when the backend exists
// (their contents are guarded by USE_C10D_GLOO / USE_C10D_NCCL, which LibTorch's CMake
// does not export).
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include "coca/common/compat.h"
#include "coca/dist/context.h"

#if defined(COCA_HAVE_GLOO)
#ifndef USE_C10D_GLOO
#define USE_C10D_GLOO 1
#endif
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#endif

#if defined(COCA_HAVE_NCCL)
#ifndef USE_C10D_NCCL
#define USE_C10D_NCCL 1
#endif
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

namespace coca::dist::detail {

#if defined(COCA_HAVE_GLOO)
/// A Gloo group. `loopback`: bind to 127.0.0.1 (single-machine jobs); otherwise the
/// interface in GLOO_SOCKET_IFNAME, else the address this host's name resolves to.
inline c10::intrusive_ptr<ProcessGroup> make_gloo_group(
    const c10::intrusive_ptr<c10d::Store>& store, int rank, int world_size,
    std::chrono::milliseconds timeout, bool loopback, const char* ifname) {
  // Options::create(timeout) and the devices/threads fields are identical in 1.13 and
  // 2.x; only the base class differs (ProcessGroup::Options vs Backend::Options).
  auto options = c10d::ProcessGroupGloo::Options::create(timeout);
  if (ifname != nullptr && *ifname != '\0') {
    options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
  } else if (loopback) {
    options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
  } else {
    options->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
  }
  options->threads = 2;
  return c10::make_intrusive<c10d::ProcessGroupGloo>(store, rank, world_size, options);
}
#endif

#if defined(COCA_HAVE_NCCL)
inline c10::intrusive_ptr<ProcessGroup> make_nccl_group(
    const c10::intrusive_ptr<c10d::Store>& store, int rank, int world_size,
    std::chrono::milliseconds timeout) {
  // Options::create(bool is_high_priority_stream = false) and the `timeout` field (of
  // ProcessGroup::Options in 1.13, Backend::Options in 2.x) exist in both.
  auto options = c10d::ProcessGroupNCCL::Options::create();
  options->timeout = timeout;
  return c10::make_intrusive<c10d::ProcessGroupNCCL>(store, rank, world_size, options);
}
#endif

}  // namespace coca::dist::detail

// Private: waits for a c10d Work and turns a failure into an error naming the
// operation, this rank and the timeout.
#pragma once

#include <fmt/format.h>

#include <stdexcept>
#include <string>

#include "coca/dist/context.h"

namespace coca::dist::detail {

inline void wait_or_throw(const Context& ctx, const c10::intrusive_ptr<c10d::Work>& work,
                          const char* op) {
  try {
    work->wait();
  } catch (const std::exception& e) {
    throw std::runtime_error(fmt::format(
        "dist: {} failed on rank {} of {} (backend {}, dist.timeout_s = {}): {} -- another "
        "rank died, stopped participating or issued a different collective",
        op, ctx.rank, ctx.world_size, ctx.backend,
        std::chrono::duration_cast<std::chrono::seconds>(ctx.timeout).count(), e.what()));
  }
}

}  // namespace coca::dist::detail

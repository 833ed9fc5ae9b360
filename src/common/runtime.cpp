#include "coca/common/runtime.h"

#include <ATen/Parallel.h>
#include <fmt/format.h>
#include <sched.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

#include "coca/common/logging.h"

namespace coca::runtime {
namespace {

constexpr const char* kMarker = "COCA_THREAD_ENV";

const char* get(const char* name) {
  const char* v = std::getenv(name);
  return (v && *v) ? v : nullptr;
}

}  // namespace

int64_t available_cores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    const int n = CPU_COUNT(&set);
    if (n > 0) return n;
  }
  const unsigned n = std::thread::hardware_concurrency();
  return n > 0 ? n : 1;
}

void ensure_thread_environment(char** argv, int64_t threads) {
  if (const char* marker = get(kMarker)) {
    // "off": the user asked us not to touch the environment; anything else: we already
    // re-executed with it set.
    (void)marker;
    return;
  }
  const std::string n = std::to_string(threads > 0 ? threads : available_cores());
  bool changed = false;
  auto set_default = [&](const char* name, const std::string& value) {
    if (get(name)) return;
    ::setenv(name, value.c_str(), 1);
    changed = true;
  };
  set_default("OMP_WAIT_POLICY", "PASSIVE");
  set_default("OMP_NUM_THREADS", n);
  set_default("OPENBLAS_NUM_THREADS", get("OMP_NUM_THREADS"));
  ::setenv(kMarker, "set", 1);
  if (!changed) return;
  ::execv("/proc/self/exe", argv);
  // Only reached when exec failed: run on, slower, and say why.
  log::warn("[runtime] could not re-execute with OMP_WAIT_POLICY=PASSIVE ({}); set it, "
            "OMP_NUM_THREADS and OPENBLAS_NUM_THREADS before starting for full speed",
            std::strerror(errno));
}

void apply_thread_settings() {
  if (const char* omp = get("OMP_NUM_THREADS")) {
    const int n = std::atoi(omp);
    if (n > 0 && at::get_num_threads() != n) at::set_num_threads(n);
  }
}

std::string thread_summary() {
  auto show = [](const char* name) {
    const char* v = get(name);
    return v ? std::string(v) : std::string("unset");
  };
  return fmt::format("{} intra-op threads, OMP_WAIT_POLICY={}, OMP_NUM_THREADS={}, "
                     "OPENBLAS_NUM_THREADS={}, {} cores available",
                     at::get_num_threads(), show("OMP_WAIT_POLICY"), show("OMP_NUM_THREADS"),
                     show("OPENBLAS_NUM_THREADS"), available_cores());
}

}  // namespace coca::runtime

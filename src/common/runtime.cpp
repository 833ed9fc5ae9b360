#include "coca/common/runtime.h"

#include <ATen/Parallel.h>
#include <fmt/format.h>
#include <dlfcn.h>
#include <sched.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "coca/common/logging.h"

namespace coca::runtime {
namespace {

constexpr const char* kMarker = "COCA_THREAD_ENV";

const char* get(const char* name) {
  const char* v = std::getenv(name);
  return (v && *v) ? v : nullptr;
}

/// The allocator library COCA_ALLOCATOR asks for, as a path to preload, or "" for glibc's
/// malloc (COCA_ALLOCATOR=system, an unknown name, or the library is not installed).
std::string allocator_library() {
  const char* want = get("COCA_ALLOCATOR");
  const std::string name = want ? want : "tcmalloc";
  if (name == "system") return "";
  const char* file = nullptr;
  if (name == "jemalloc") file = "libjemalloc.so.2";
  else if (name == "tcmalloc") file = "libtcmalloc_minimal.so.4";
  else {
    log::warn("[runtime] COCA_ALLOCATOR={} is not one of jemalloc | tcmalloc | system; using "
              "glibc's malloc", name);
    return "";
  }
  for (const char* dir : {"/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu",
                          "/usr/lib64", "/usr/lib", "/usr/local/lib"}) {
    const std::string path = std::string(dir) + "/" + file;
    if (::access(path.c_str(), R_OK) == 0) return path;
  }
  // Only an explicit request is worth a warning; the default falls back silently.
  if (want) log::warn("[runtime] COCA_ALLOCATOR={}: {} not found; using glibc's malloc", name, file);
  return "";
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

void ignore_broken_pipes() { ::signal(SIGPIPE, SIG_IGN); }

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
  // A caching allocator: glibc's malloc maps and unmaps every block over 32 MiB (its largest
  // mmap threshold), so large activations, gradients and optimizer temporaries cost page
  // faults on every step (README, Performance: tcmalloc measured fastest, jemalloc slower
  // than glibc on the small config).
  const std::string lib = allocator_library();
  if (!lib.empty()) {
    const char* preload = get("LD_PRELOAD");
    const std::string current = preload ? preload : "";
    if (current.find(lib) == std::string::npos) {
      ::setenv("LD_PRELOAD", (current.empty() ? lib : lib + ":" + current).c_str(), 1);
      changed = true;
    }
  }
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

namespace {

template <class Fn>
Fn find_symbol(const char* name) {
  return reinterpret_cast<Fn>(::dlsym(RTLD_DEFAULT, name));
}

}  // namespace

void set_thread_local_intra_op_threads(int64_t threads) {
  // at::get_num_threads() first: ATen initialises a thread's OpenMP setting lazily from the
  // process-wide value on its first call, which would undo ours if it came later.
  (void)at::get_num_threads();
  using SetFn = void (*)(int);
  static const SetFn omp_set = find_symbol<SetFn>("omp_set_num_threads");
  if (omp_set) omp_set(static_cast<int>(threads));
  else at::set_num_threads(static_cast<int>(threads));  // not OpenMP: ATen's own pool
}

ScopedBlasThreads::ScopedBlasThreads(int threads) {
  using GetFn = int (*)();
  using SetFn = void (*)(int);
  static const GetFn get_fn = find_symbol<GetFn>("openblas_get_num_threads");
  static const SetFn set_fn = find_symbol<SetFn>("openblas_set_num_threads");
  if (!get_fn || !set_fn) return;
  previous_ = get_fn();
  if (previous_ != threads) set_fn(threads);
  else previous_ = 0;
}

ScopedBlasThreads::~ScopedBlasThreads() {
  using SetFn = void (*)(int);
  static const SetFn set_fn = find_symbol<SetFn>("openblas_set_num_threads");
  if (previous_ > 0 && set_fn) set_fn(previous_);
}

std::string thread_summary() {
  auto show = [](const char* name) {
    const char* v = get(name);
    return v ? std::string(v) : std::string("unset");
  };
  const char* preload = get("LD_PRELOAD");
  const std::string pre = preload ? preload : "";
  const std::string allocator = pre.find("jemalloc") != std::string::npos   ? "jemalloc"
                                : pre.find("tcmalloc") != std::string::npos ? "tcmalloc"
                                                                            : "glibc";
  return fmt::format("{} intra-op threads, OMP_WAIT_POLICY={}, OMP_NUM_THREADS={}, "
                     "OPENBLAS_NUM_THREADS={}, {} cores available, allocator {}",
                     at::get_num_threads(), show("OMP_WAIT_POLICY"), show("OMP_NUM_THREADS"),
                     show("OPENBLAS_NUM_THREADS"), available_cores(), allocator);
}

}  // namespace coca::runtime

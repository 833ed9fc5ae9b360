// Process set-up that must happen before LibTorch's thread pools start.
//
// Debian's LibTorch runs a GNU OpenMP pool and OpenBLAS runs its own. Both read their
// environment once, when the libraries load, so setting it from inside main() is too
// late: unless OMP_WAIT_POLICY=PASSIVE and matching OMP_NUM_THREADS/OPENBLAS_NUM_THREADS
// are in force at start, the pools spin against each other and a training step on two
// cores is 2-4x slower. ensure_thread_environment() fixes the environment and
// re-executes the binary once; variables the user set are kept.
#pragma once

#include <cstdint>
#include <string>

namespace coca::runtime {

/// Cores this process may run on (affinity mask), at least 1.
int64_t available_cores();

/// Makes sure OMP_WAIT_POLICY, OMP_NUM_THREADS and OPENBLAS_NUM_THREADS are in force,
/// re-executing `argv` once with them set if they were not (`threads` 0 = all cores).
/// The same re-exec preloads a caching malloc: COCA_ALLOCATOR = tcmalloc (default, Debian's
/// libtcmalloc-minimal4 when installed) | jemalloc (libjemalloc2) | system (glibc).
/// Setting COCA_THREAD_ENV=off skips this (to measure the difference). Returns when the
/// environment is in force (or could not be changed: then it logs a warning).
void ensure_thread_environment(char** argv, int64_t threads);

/// Sets LibTorch's intra-op threads to what the environment says (after the re-exec).
void apply_thread_settings();

/// Ignores SIGPIPE for the process: a write to a socket whose peer died (c10d's TCPStore or
/// Gloo when another rank exits) then fails with EPIPE and surfaces as the library's error,
/// instead of killing this rank silently with exit code 141.
void ignore_broken_pipes();

/// Intra-op threads of the calling thread only (OpenMP's per-thread setting): for worker
/// threads that each run a share of a step. Other threads keep theirs.
void set_thread_local_intra_op_threads(int64_t threads);

/// Sets OpenBLAS's thread count (one process-wide setting) for its lifetime and restores
/// the previous one; does nothing when the BLAS in use is not OpenBLAS. Concurrent callers
/// of a multi-threaded OpenBLAS queue for its one thread pool, so threads that each run
/// their own GEMMs want it at 1.
class ScopedBlasThreads {
 public:
  explicit ScopedBlasThreads(int threads);
  ~ScopedBlasThreads();
  ScopedBlasThreads(const ScopedBlasThreads&) = delete;
  ScopedBlasThreads& operator=(const ScopedBlasThreads&) = delete;

 private:
  int previous_ = 0;
};

/// One line describing the thread settings in force, for logs.
std::string thread_summary();

}  // namespace coca::runtime

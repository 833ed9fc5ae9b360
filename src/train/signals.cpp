#include "coca/train/signals.h"

#include <unistd.h>

#include <atomic>
#include <csignal>

namespace coca::train {
namespace {

std::atomic<int> g_signal{0};

extern "C" void on_stop_signal(int sig) {
  if (g_signal.exchange(sig) != 0) {
    // Second signal: leave now. Only async-signal-safe calls here.
    static const char msg[] = "\n[train] second signal: exiting without a checkpoint\n";
    (void)!::write(2, msg, sizeof(msg) - 1);
    ::_exit(128 + sig);
  }
  static const char msg[] = "\n[train] stop requested: finishing this step, then checkpointing\n";
  (void)!::write(2, msg, sizeof(msg) - 1);
}

}  // namespace

void install_stop_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

int stop_requested() { return g_signal.load(); }
void reset_stop_request() { g_signal = 0; }

}  // namespace coca::train

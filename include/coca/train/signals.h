// SIGINT/SIGTERM handling for training: the first signal asks the loop to finish the
// current step, write a checkpoint and exit (with 128 + signal); a second one exits at
// once.
#pragma once

namespace coca::train {

/// Installs the handlers (idempotent).
void install_stop_handlers();
/// The signal number received, or 0.
int stop_requested();
/// Clears the flag (tests).
void reset_stop_request();

}  // namespace coca::train

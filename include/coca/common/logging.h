// Logging behind one header (spdlog stays in src/common/logging.cpp).
// Messages start with an [area] tag: log::info("[data] {} shards, {} samples", n, m).
// Only rank 0 logs unless a *_all_ranks variant is used. Level comes from
// `log.level`, overridden by the COCA_LOG_LEVEL environment variable.
#pragma once

#include <fmt/format.h>

#include <string>
#include <string_view>

namespace coca::log {

enum class Level { trace, debug, info, warn, error, off };

/// Parses "trace|debug|info|warn|error|off"; throws std::invalid_argument otherwise.
Level parse_level(std::string_view name);
/// Sets the level; COCA_LOG_LEVEL, when set, wins over `level`.
void set_level(Level level);
Level level();
/// Rank of this process: only rank 0 writes unless *_all_ranks is used.
void set_rank(int rank);
int rank();

void write(Level level, bool all_ranks, const std::string& message);

template <typename... Args>
void trace(fmt::format_string<Args...> f, Args&&... args) {
  if (level() <= Level::trace) write(Level::trace, false, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void debug(fmt::format_string<Args...> f, Args&&... args) {
  if (level() <= Level::debug) write(Level::debug, false, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void info(fmt::format_string<Args...> f, Args&&... args) {
  if (level() <= Level::info) write(Level::info, false, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void warn(fmt::format_string<Args...> f, Args&&... args) {
  if (level() <= Level::warn) write(Level::warn, false, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void error(fmt::format_string<Args...> f, Args&&... args) {
  if (level() <= Level::error) write(Level::error, false, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void info_all_ranks(fmt::format_string<Args...> f, Args&&... args) {
  if (level() <= Level::info) write(Level::info, true, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void warn_all_ranks(fmt::format_string<Args...> f, Args&&... args) {
  if (level() <= Level::warn) write(Level::warn, true, fmt::format(f, std::forward<Args>(args)...));
}

/// Logs `message` at warn level the first time `key` is seen in this process.
void warn_once(const std::string& key, const std::string& message);

}  // namespace coca::log

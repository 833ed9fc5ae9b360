#include "coca/common/logging.h"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <cstdlib>
#include <mutex>
#include <stdexcept>
#include <unordered_set>

namespace coca::log {
namespace {

std::atomic<int> g_rank{0};

Level initial_level() {
  if (const char* env = std::getenv("COCA_LOG_LEVEL")) {
    try {
      return parse_level(env);
    } catch (const std::invalid_argument&) {
    }
  }
  return Level::info;
}

std::atomic<Level> g_level{initial_level()};

spdlog::logger& logger() {
  static std::shared_ptr<spdlog::logger> instance = [] {
    auto sink = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
    auto l = std::make_shared<spdlog::logger>("coca", sink);
    l->set_pattern("%^[%Y-%m-%d %H:%M:%S.%e] %L%$ %v");
    l->set_level(spdlog::level::trace);
    return l;
  }();
  return *instance;
}

spdlog::level::level_enum to_spdlog(Level level) {
  switch (level) {
    case Level::trace: return spdlog::level::trace;
    case Level::debug: return spdlog::level::debug;
    case Level::info: return spdlog::level::info;
    case Level::warn: return spdlog::level::warn;
    case Level::error: return spdlog::level::err;
    case Level::off: return spdlog::level::off;
  }
  return spdlog::level::info;
}

}  // namespace

Level parse_level(std::string_view name) {
  if (name == "trace") return Level::trace;
  if (name == "debug") return Level::debug;
  if (name == "info") return Level::info;
  if (name == "warn" || name == "warning") return Level::warn;
  if (name == "error") return Level::error;
  if (name == "off") return Level::off;
  throw std::invalid_argument("unknown log level '" + std::string(name) +
                              "' (expected trace, debug, info, warn, error or off)");
}

void set_level(Level level) {
  if (const char* env = std::getenv("COCA_LOG_LEVEL")) {
    try {
      level = parse_level(env);
    } catch (const std::invalid_argument&) {
    }
  }
  g_level = level;
}

Level level() { return g_level; }
void set_rank(int rank) { g_rank = rank; }
int rank() { return g_rank; }

void write(Level level, bool all_ranks, const std::string& message) {
  if (level < g_level.load()) return;
  const int r = g_rank.load();
  if (r != 0 && !all_ranks) return;
  if (all_ranks && r != 0) {
    logger().log(to_spdlog(level), "(rank {}) {}", r, message);
  } else {
    logger().log(to_spdlog(level), "{}", message);
  }
}

void warn_once(const std::string& key, const std::string& message) {
  static std::mutex mutex;
  static std::unordered_set<std::string> seen;
  {
    std::lock_guard<std::mutex> lock(mutex);
    if (!seen.insert(key).second) return;
  }
  write(Level::warn, false, message);
}

}  // namespace coca::log

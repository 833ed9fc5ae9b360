// Training metrics: a console progress line and one JSON object per logged step in
// <run_dir>/metrics.jsonl. Only rank 0 writes.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

namespace coca::train {

/// Running mean over a window of the last values (loss smoothing, step times).
class AverageMeter {
 public:
  void add(double value, double weight = 1.0);
  double mean() const { return weight_ > 0 ? sum_ / weight_ : 0.0; }
  double count() const { return weight_; }
  void reset();

 private:
  double sum_ = 0;
  double weight_ = 0;
};

/// Wall-clock stopwatch.
class TimeMeter {
 public:
  TimeMeter() { reset(); }
  void reset() { start_ = std::chrono::steady_clock::now(); }
  double seconds() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }

 private:
  std::chrono::steady_clock::time_point start_;
};

/// One logged record: named numbers (losses, lr, throughput, eval metrics).
using Record = std::vector<std::pair<std::string, double>>;

class MetricsLogger {
 public:
  /// `path`: the JSONL file (appended to, so a resumed run continues it); `enabled`
  /// false on ranks other than 0.
  MetricsLogger(std::filesystem::path path, bool enabled);

  /// Appends {"step": step, "kind": kind, ...record} as one JSON line and flushes.
  void write(int64_t step, const std::string& kind, const Record& record);

  /// Drops lines with step > `step` (a resumed run continues from its checkpoint: the
  /// log then matches an uninterrupted run exactly).
  void truncate_after(int64_t step);

  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
  bool enabled_;
  std::ofstream out_;
};

/// "1h02m", "3m05s", "12s".
std::string format_duration(double seconds);

}  // namespace coca::train

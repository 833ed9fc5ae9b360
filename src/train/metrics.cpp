#include "coca/train/metrics.h"

#include <fmt/format.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <sstream>

#include "coca/common/error.h"

namespace coca::train {

void AverageMeter::add(double value, double weight) {
  sum_ += value * weight;
  weight_ += weight;
}

void AverageMeter::reset() {
  sum_ = 0;
  weight_ = 0;
}

MetricsLogger::MetricsLogger(std::filesystem::path path, bool enabled)
    : path_(std::move(path)), enabled_(enabled) {
  if (!enabled_) return;
  if (path_.has_parent_path()) std::filesystem::create_directories(path_.parent_path());
  out_.open(path_, std::ios::app);
  if (!out_) throw IoError(path_.string(), "cannot open the metrics file for appending");
}

void MetricsLogger::write(int64_t step, const std::string& kind, const Record& record) {
  if (!enabled_) return;
  nlohmann::ordered_json j;
  j["step"] = step;
  j["kind"] = kind;
  for (const auto& [name, value] : record) {
    if (std::isfinite(value)) {
      j[name] = value;
    } else {
      j[name] = nullptr;  // JSON has no NaN/Inf
    }
  }
  out_ << j.dump() << "\n";
  out_.flush();
}

void MetricsLogger::truncate_after(int64_t step) {
  if (!enabled_) return;
  out_.close();
  std::ifstream in(path_);
  std::ostringstream kept;
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    try {
      const auto j = nlohmann::json::parse(line);
      if (j.value("step", int64_t{0}) > step) continue;
    } catch (const nlohmann::json::exception&) {
      continue;  // a line cut by a kill
    }
    kept << line << "\n";
  }
  in.close();
  {
    std::ofstream rewrite(path_, std::ios::trunc);
    rewrite << kept.str();
  }
  out_.open(path_, std::ios::app);
}

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const auto s = static_cast<int64_t>(std::llround(seconds));
  if (s >= 3600) return fmt::format("{}h{:02d}m", s / 3600, (s % 3600) / 60);
  if (s >= 60) return fmt::format("{}m{:02d}s", s / 60, s % 60);
  return fmt::format("{}s", s);
}

}  // namespace coca::train

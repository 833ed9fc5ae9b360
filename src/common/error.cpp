#include "coca/common/error.h"

namespace coca {
namespace {

std::string join_lines(const std::vector<std::string>& lines) {
  std::string out;
  for (const auto& line : lines) {
    if (!out.empty()) out += '\n';
    out += line;
  }
  return out;
}

}  // namespace

ConfigError::ConfigError(std::vector<std::string> lines)
    : std::runtime_error(join_lines(lines)), lines_(std::move(lines)) {}

DataError::DataError(const std::string& file, const std::string& sample, const std::string& what)
    : std::runtime_error(file + (sample.empty() ? "" : " [" + sample + "]") + ": " + what),
      file_(file),
      sample_(sample) {}

IoError::IoError(const std::string& file, const std::string& what)
    : std::runtime_error(file + ": " + what), file_(file) {}

}  // namespace coca

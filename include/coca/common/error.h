// Error types thrown by library code. Only `main` turns them into exit codes:
// UsageError and ConfigError exit with 2, everything else with 1.
#pragma once

#include <stdexcept>
#include <string>
#include <vector>

namespace coca {

/// A command-line mistake (unknown flag, missing argument). Exit code 2.
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// One or more configuration problems. Each line names file:line and the full
/// dotted key path, e.g. `configs/x.yaml:14: unknown key 'optim.peak_lrr'
/// (did you mean 'optim.peak_lr'?)`. Exit code 2.
class ConfigError : public std::runtime_error {
 public:
  explicit ConfigError(std::vector<std::string> lines);
  explicit ConfigError(const std::string& line)
      : ConfigError(std::vector<std::string>{line}) {}
  const std::vector<std::string>& lines() const { return lines_; }

 private:
  std::vector<std::string> lines_;
};

/// Bad data from the outside world: names the file and the sample key.
class DataError : public std::runtime_error {
 public:
  DataError(const std::string& file, const std::string& sample, const std::string& what);
  const std::string& file() const { return file_; }
  const std::string& sample() const { return sample_; }

 private:
  std::string file_;
  std::string sample_;
};

/// A file that cannot be read or written, or whose format is wrong.
class IoError : public std::runtime_error {
 public:
  IoError(const std::string& file, const std::string& what);
  const std::string& file() const { return file_; }

 private:
  std::string file_;
};

}  // namespace coca

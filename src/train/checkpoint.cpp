#include "coca/train/checkpoint.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <regex>
#include <sstream>

#include "coca/common/error.h"

namespace coca::train {
namespace {

namespace fs = std::filesystem;

constexpr const char* kFormatFile = "format";
constexpr const char* kTempPrefix = ".tmp-";

std::optional<int64_t> parse_step(const std::string& name) {
  static const std::regex pattern("step_([0-9]+)");
  std::smatch m;
  if (!std::regex_match(name, m, pattern)) return std::nullopt;
  return std::stoll(m[1].str());
}

/// Fault injection for crash tests: COCA_FAULT_INJECT=checkpoint_write:N kills this
/// process with SIGKILL during its N-th checkpoint save, after the files are written and
/// before the folder is renamed into place (the worst moment for a crash).
void maybe_inject_fault() {
  static int saves = 0;  // counts saves made while the variable is set
  const char* spec = std::getenv("COCA_FAULT_INJECT");
  if (!spec) return;
  ++saves;
  const std::string s(spec);
  const std::string prefix = "checkpoint_write:";
  if (s.rfind(prefix, 0) != 0) return;
  if (std::atoi(s.c_str() + prefix.size()) == saves) std::raise(SIGKILL);
}

void sync_path(const fs::path& p, bool directory) {
  const int fd = ::open(p.c_str(), directory ? O_RDONLY | O_DIRECTORY : O_RDONLY);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

void sync_tree(const fs::path& dir) {
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    sync_path(entry.path(), entry.is_directory());
  }
  sync_path(dir, true);
}

}  // namespace

Checkpointer::Checkpointer(fs::path root, int64_t keep) : root_(std::move(root)), keep_(keep) {
  if (keep_ < 1) throw std::invalid_argument("Checkpointer: keep must be >= 1");
}

fs::path Checkpointer::save(int64_t step, const std::function<void(const fs::path&)>& write) {
  fs::create_directories(root_);
  remove_stale_temporaries();
  const std::string name = fmt::format("step_{:08d}", step);
  const fs::path tmp = root_ / fmt::format("{}{}-{}", kTempPrefix, name, ::getpid());
  fs::remove_all(tmp);
  fs::create_directories(tmp);
  write(tmp);
  {
    std::ofstream out(tmp / kFormatFile);
    out << kCheckpointFormat << " " << kCheckpointVersion << "\n";
    if (!out.flush()) throw IoError((tmp / kFormatFile).string(), "cannot write");
  }
  sync_tree(tmp);
  maybe_inject_fault();
  const fs::path final_dir = root_ / name;
  if (fs::exists(final_dir)) {
    // Same step saved again (e.g. a resumed run stopped at once): replace atomically
    // enough: move the old one aside first so a crash leaves one of them complete.
    const fs::path old = root_ / fmt::format("{}old-{}-{}", kTempPrefix, name, ::getpid());
    fs::rename(final_dir, old);
    fs::rename(tmp, final_dir);
    fs::remove_all(old);
  } else {
    fs::rename(tmp, final_dir);
  }
  sync_path(root_, true);
  auto all = list();
  while (static_cast<int64_t>(all.size()) > keep_) {
    fs::remove_all(all.front().dir);
    all.erase(all.begin());
  }
  return final_dir;
}

std::vector<CheckpointInfo> Checkpointer::list() const {
  std::vector<CheckpointInfo> out;
  std::error_code ec;
  if (!fs::is_directory(root_, ec)) return out;
  for (const auto& entry : fs::directory_iterator(root_)) {
    if (!entry.is_directory()) continue;
    const auto step = parse_step(entry.path().filename().string());
    if (!step || !fs::exists(entry.path() / kFormatFile)) continue;
    out.push_back({entry.path(), *step});
  }
  std::sort(out.begin(), out.end(),
            [](const CheckpointInfo& a, const CheckpointInfo& b) { return a.step < b.step; });
  return out;
}

std::optional<CheckpointInfo> Checkpointer::latest() const {
  auto all = list();
  if (all.empty()) return std::nullopt;
  return all.back();
}

void Checkpointer::remove_stale_temporaries() const {
  std::error_code ec;
  if (!fs::is_directory(root_, ec)) return;
  for (const auto& entry : fs::directory_iterator(root_)) {
    if (entry.path().filename().string().rfind(kTempPrefix, 0) == 0) {
      fs::remove_all(entry.path(), ec);
    }
  }
}

void check_checkpoint_format(const fs::path& dir) {
  std::ifstream in(dir / kFormatFile);
  if (!in) {
    throw IoError(dir.string(), "not a complete coca checkpoint (no 'format' file)");
  }
  std::string name;
  int version = 0;
  in >> name >> version;
  if (name != kCheckpointFormat) {
    throw IoError(dir.string(), "not a coca checkpoint (format '" + name + "')");
  }
  if (version < 1 || version > kCheckpointVersion) {
    throw IoError(dir.string(), fmt::format("checkpoint format version {} is not supported by "
                                            "this build (supports 1..{})",
                                            version, kCheckpointVersion));
  }
}

fs::path resolve_checkpoint(const fs::path& spec) {
  std::error_code ec;
  if (fs::exists(spec / kFormatFile, ec)) {
    check_checkpoint_format(spec);
    return spec;
  }
  for (const fs::path& root : {spec, spec / "checkpoints"}) {
    Checkpointer probe(root, 1);
    if (auto latest = probe.latest()) {
      check_checkpoint_format(latest->dir);
      return latest->dir;
    }
  }
  throw IoError(spec.string(), "no complete checkpoint here (expected a step_* folder with a "
                               "'format' file, or a folder holding such folders)");
}

}  // namespace coca::train

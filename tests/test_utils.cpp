#include "test_utils.h"

#include <torch/torch.h>

#include "coca/common/error.h"
#include "coca/config/config_io.h"
#include "coca/data/text_corpus.h"
#include "coca/data/tokenizer.h"
#include <unistd.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <random>
#include <sstream>
#include <sys/wait.h>

namespace coca::testing {

std::vector<std::string> error_lines(const std::vector<std::string>& files,
                                     const std::vector<std::string>& overrides) {
  try {
    config::load_run_config(files, overrides);
  } catch (const ConfigError& e) {
    return e.lines();
  }
  return {};
}

void SeededTest::SetUp() { torch::manual_seed(0); }

::testing::AssertionResult tensor_near(const torch::Tensor& got, const torch::Tensor& want,
                                       double atol, double rtol) {
  if (!got.defined() || !want.defined()) {
    return ::testing::AssertionFailure() << "undefined tensor";
  }
  if (got.sizes() != want.sizes()) {
    return ::testing::AssertionFailure() << "shape " << got.sizes() << " != " << want.sizes();
  }
  const auto g = got.detach().to(torch::kCPU, torch::kDouble);
  const auto w = want.detach().to(torch::kCPU, torch::kDouble);
  if (g.numel() == 0) return ::testing::AssertionSuccess();
  const auto diff = (g - w).abs();
  const auto allowed = atol + rtol * w.abs();
  const auto bad = (diff > allowed).logical_or(g.isnan() != w.isnan());
  if (!bad.any().item<bool>()) return ::testing::AssertionSuccess();
  const auto flat_index = bad.flatten().nonzero()[0].item<int64_t>();
  std::ostringstream index;
  int64_t rest = flat_index;
  std::vector<int64_t> idx(g.dim());
  for (int64_t d = g.dim() - 1; d >= 0; --d) {
    idx[d] = rest % g.size(d);
    rest /= g.size(d);
  }
  index << "[";
  for (size_t i = 0; i < idx.size(); ++i) index << (i ? ", " : "") << idx[i];
  index << "]";
  return ::testing::AssertionFailure()
         << "max |diff| " << diff.max().item<double>() << " (atol " << atol << ", rtol " << rtol
         << "), " << bad.sum().item<int64_t>() << " of " << g.numel()
         << " elements off; first at " << index.str() << ": got "
         << g.flatten()[flat_index].item<double>() << ", want " << w.flatten()[flat_index].item<double>();
}

TempDir::TempDir() {
  std::random_device rd;
  for (int attempt = 0; attempt < 100; ++attempt) {
    auto p = std::filesystem::temp_directory_path() /
             ("coca_test_" + std::to_string(::getpid()) + "_" + std::to_string(rd()));
    if (std::filesystem::create_directory(p)) {
      path_ = p;
      return;
    }
  }
  throw std::runtime_error("cannot create a temporary folder");
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

void write_file(const std::filesystem::path& path, const std::string& text) {
  if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary);
  out << text;
}

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

CommandResult run_coca(const std::string& args) {
  TempDir tmp;
  const auto out_path = tmp / "stdout";
  const auto err_path = tmp / "stderr";
  const std::string cmd = std::string("'") + COCA_EXECUTABLE + "' " + args + " >'" +
                          out_path.string() + "' 2>'" + err_path.string() + "' </dev/null";
  const int status = std::system(cmd.c_str());
  CommandResult r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = read_file(out_path);
  r.err = read_file(err_path);
  return r;
}

std::filesystem::path reference_dir() {
  std::filesystem::path p;
  if (const char* env = std::getenv("COCA_REFERENCE_DIR"); env && *env) {
    p = env;
  } else {
    p = std::filesystem::path(COCA_SOURCE_DIR) / ".." / "shared" / "reference";
  }
  std::error_code ec;
  if (!std::filesystem::is_directory(p, ec)) return {};
  return std::filesystem::weakly_canonical(p);
}

std::filesystem::path train_synthetic_tokenizer(const std::filesystem::path& dir, int64_t samples,
                                                uint64_t seed) {
  data::SourceConfig captions;
  captions.type = "synthetic";
  captions.samples = samples;
  captions.seed = seed;
  captions.image_size = 16;  // only the text is used
  data::SourceConfig labels = captions;
  labels.text = "label";
  const auto corpus = dir / "text.txt";
  data::write_text_corpus({captions, labels}, data::LabelTextConfig{}, seed, 0, corpus.string());
  data::SentencePieceTrainOptions opt;
  opt.input_files = {corpus.string()};
  opt.model_prefix = (dir / "spm").string();
  opt.vocab_size = 48;
  data::train_sentencepiece(opt);
  return dir / "spm.model";
}

std::filesystem::path source_dir() { return COCA_SOURCE_DIR; }

}  // namespace coca::testing

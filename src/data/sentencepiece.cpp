// SentencePiece through libcoca_spm.so (dlopen, RTLD_LOCAL | RTLD_DEEPBIND): the shim is
// the only binary linking libsentencepiece, whose exported protobuf-lite would otherwise
// clash with LibTorch's libprotobuf in one process image.
#include <dlfcn.h>
#include <unistd.h>

#include <array>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <sstream>

#include "coca/common/error.h"
#include "coca/data/tokenizer.h"
#include "data/detail/sentencepiece.h"
#include "data/detail/spm_shim_api.h"

namespace coca::data {
namespace {

namespace fs = std::filesystem;
constexpr const char* kShimName = "libcoca_spm.so";

std::vector<std::string> shim_candidates() {
  std::vector<std::string> out;
  if (const char* env = std::getenv("COCA_SPM_SHIM"); env != nullptr && *env != '\0') {
    out.emplace_back(env);
  }
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) out.push_back((exe.parent_path() / kShimName).string());
#ifdef COCA_SPM_SHIM_PATH
  out.emplace_back(COCA_SPM_SHIM_PATH);
#endif
  return out;
}

// The shim's entry points, resolved once per process; the library is never unloaded.
struct Shim {
  std::string path;
  decltype(&coca_spm_load) load = nullptr;
  decltype(&coca_spm_free) free = nullptr;
  decltype(&coca_spm_vocab_size) vocab_size = nullptr;
  decltype(&coca_spm_bos_id) bos_id = nullptr;
  decltype(&coca_spm_eos_id) eos_id = nullptr;
  decltype(&coca_spm_pad_id) pad_id = nullptr;
  decltype(&coca_spm_unk_id) unk_id = nullptr;
  decltype(&coca_spm_encode) encode = nullptr;
  decltype(&coca_spm_decode) decode = nullptr;
  decltype(&coca_spm_id_to_piece) id_to_piece = nullptr;
  decltype(&coca_spm_piece_to_id) piece_to_id = nullptr;
  decltype(&coca_spm_is_control) is_control = nullptr;
  decltype(&coca_spm_train) train = nullptr;
};

template <class F>
void resolve(void* handle, const std::string& path, const char* name, F& fn) {
  fn = reinterpret_cast<F>(dlsym(handle, name));
  if (fn == nullptr) throw IoError(path, std::string("SentencePiece shim lacks symbol ") + name);
}

Shim open_shim(const std::string& why) {
  if (const char* env = std::getenv("COCA_SPM_SHIM"); env != nullptr && *env != '\0') {
    std::error_code ec;
    if (!fs::is_regular_file(env, ec)) {
      throw IoError(env, "COCA_SPM_SHIM names no file (SentencePiece shim " + why + ")");
    }
  }
  std::string searched;
  for (const auto& candidate : shim_candidates()) {
    searched += (searched.empty() ? "" : ", ") + candidate;
    std::error_code ec;
    if (!fs::is_regular_file(candidate, ec)) continue;
    void* handle = dlopen(candidate.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
    if (handle == nullptr) {
      const char* err = dlerror();
      throw IoError(candidate, "cannot load the SentencePiece shim (" + why +
                                   "): " + (err != nullptr ? err : "unknown dlopen error"));
    }
    Shim shim;
    shim.path = candidate;
    decltype(&coca_spm_abi_version) abi = nullptr;
    resolve(handle, candidate, "coca_spm_abi_version", abi);
    if (abi() != COCA_SPM_SHIM_ABI) {
      throw IoError(candidate, "SentencePiece shim ABI " + std::to_string(abi()) +
                                   ", this build expects " + std::to_string(COCA_SPM_SHIM_ABI) +
                                   " (a stale libcoca_spm.so?)");
    }
    resolve(handle, candidate, "coca_spm_load", shim.load);
    resolve(handle, candidate, "coca_spm_free", shim.free);
    resolve(handle, candidate, "coca_spm_vocab_size", shim.vocab_size);
    resolve(handle, candidate, "coca_spm_bos_id", shim.bos_id);
    resolve(handle, candidate, "coca_spm_eos_id", shim.eos_id);
    resolve(handle, candidate, "coca_spm_pad_id", shim.pad_id);
    resolve(handle, candidate, "coca_spm_unk_id", shim.unk_id);
    resolve(handle, candidate, "coca_spm_encode", shim.encode);
    resolve(handle, candidate, "coca_spm_decode", shim.decode);
    resolve(handle, candidate, "coca_spm_id_to_piece", shim.id_to_piece);
    resolve(handle, candidate, "coca_spm_piece_to_id", shim.piece_to_id);
    resolve(handle, candidate, "coca_spm_is_control", shim.is_control);
    resolve(handle, candidate, "coca_spm_train", shim.train);
    return shim;
  }
  throw IoError(kShimName, "SentencePiece shim not found (" + why + "); searched: " + searched +
                               "; set COCA_SPM_SHIM to its path");
}

const Shim& shim(const std::string& why) {
  static std::mutex mutex;
  static std::unique_ptr<Shim> loaded;
  std::lock_guard<std::mutex> lock(mutex);
  if (!loaded) loaded = std::make_unique<Shim>(open_shim(why));
  return *loaded;
}

class SentencePieceTokenizer final : public Tokenizer {
 public:
  SentencePieceTokenizer(const std::string& path, bool add_bos, bool add_eos,
                         const std::string& key)
      : shim_(shim("needed by " + key + " '" + path + "'")) {
    add_bos_ = add_bos;
    add_eos_ = add_eos;
    std::array<char, 1024> err{};
    model_ = shim_.load(path.c_str(), err.data(), err.size());
    if (model_ == nullptr) {
      throw ConfigError(key + ": cannot load SentencePiece model '" + path + "': " + err.data());
    }
    vocab_size_ = shim_.vocab_size(model_);
    bos_ = shim_.bos_id(model_);
    eos_ = shim_.eos_id(model_);
    pad_ = shim_.pad_id(model_);
    if ((add_bos && bos_ < 0) || (add_eos && eos_ < 0)) {
      shim_.free(model_);
      throw ConfigError(key + ": SentencePiece model '" + path + "' has no " +
                        (add_bos && bos_ < 0 ? "BOS" : "EOS") +
                        " id; train it with bos_id/eos_id set or turn off add_bos/add_eos");
    }
  }
  ~SentencePieceTokenizer() override { shim_.free(model_); }
  SentencePieceTokenizer(const SentencePieceTokenizer&) = delete;
  SentencePieceTokenizer& operator=(const SentencePieceTokenizer&) = delete;

  std::vector<int64_t> encode(const std::string& text) const override {
    std::vector<int> ids(text.size() + 16);
    int64_t n = shim_.encode(model_, text.data(), text.size(), ids.data(),
                             static_cast<int64_t>(ids.size()));
    if (n > static_cast<int64_t>(ids.size())) {
      ids.resize(static_cast<size_t>(n));
      n = shim_.encode(model_, text.data(), text.size(), ids.data(), n);
    }
    if (n < 0) throw std::invalid_argument("sentencepiece: cannot encode text '" + text + "'");
    return {ids.begin(), ids.begin() + n};
  }

  std::string decode(const std::vector<int64_t>& ids) const override {
    std::vector<int> kept;
    kept.reserve(ids.size());
    for (const int64_t id : ids) {
      if (id == bos_ || id == eos_) continue;
      if (id < 0 || id >= vocab_size_) {
        throw std::invalid_argument("sentencepiece: decode: id " + std::to_string(id) +
                                    " outside [0, " + std::to_string(vocab_size_) + ")");
      }
      kept.push_back(static_cast<int>(id));
    }
    std::string text(kept.size() * 8 + 16, '\0');
    const auto count = static_cast<int64_t>(kept.size());
    int64_t n = shim_.decode(model_, kept.data(), count, text.data(),
                             static_cast<int64_t>(text.size()));
    if (n > static_cast<int64_t>(text.size())) {
      text.resize(static_cast<size_t>(n));
      n = shim_.decode(model_, kept.data(), count, text.data(), n);
    }
    if (n < 0) throw std::invalid_argument("sentencepiece: cannot decode ids");
    text.resize(static_cast<size_t>(n));
    return text;
  }

  int64_t vocab_size() const override { return vocab_size_; }
  int64_t bos_id() const override { return bos_; }
  int64_t eos_id() const override { return eos_; }
  // A model without a pad piece pads with 0 (then also a real piece: cut by position).
  int64_t pad_id() const override { return pad_ >= 0 ? pad_ : 0; }

 private:
  const Shim& shim_;
  coca_spm_model* model_ = nullptr;
  int64_t vocab_size_ = 0;
  int64_t bos_ = -1;
  int64_t eos_ = -1;
  int64_t pad_ = -1;
};

std::string format_double(double v) {
  std::ostringstream s;
  s.precision(17);
  s << v;
  return s.str();
}

}  // namespace

namespace detail {

std::unique_ptr<Tokenizer> make_sentencepiece_tokenizer(const std::string& model_path,
                                                        bool add_bos, bool add_eos,
                                                        const std::string& key) {
  std::error_code ec;
  if (!fs::is_regular_file(model_path, ec)) {
    throw ConfigError(key + ": SentencePiece model '" + model_path + "' not found");
  }
  return std::make_unique<SentencePieceTokenizer>(model_path, add_bos, add_eos, key);
}

}  // namespace detail

std::unique_ptr<Tokenizer> make_sentencepiece_tokenizer(const std::string& model_path,
                                                        bool add_bos, bool add_eos) {
  return detail::make_sentencepiece_tokenizer(model_path, add_bos, add_eos,
                                              "data.tokenizer.path");
}

std::string find_spm_shim() {
  for (const auto& candidate : shim_candidates()) {
    std::error_code ec;
    if (fs::is_regular_file(candidate, ec)) return candidate;
  }
  return {};
}

int64_t train_sentencepiece(const SentencePieceTrainOptions& options) {
  if (options.input_files.empty()) {
    throw std::invalid_argument("tokenizer train: no input text files");
  }
  std::string inputs;
  for (const auto& file : options.input_files) {
    std::error_code ec;
    if (!fs::is_regular_file(file, ec)) {
      throw std::invalid_argument("tokenizer train: input text file '" + file + "' not found");
    }
    if (file.find(',') != std::string::npos) {
      throw std::invalid_argument("tokenizer train: input path '" + file +
                                  "' contains ',' (SentencePiece separates inputs with ',')");
    }
    inputs += (inputs.empty() ? "" : ",") + file;
  }
  if (options.model_prefix.empty()) {
    throw std::invalid_argument("tokenizer train: empty output prefix");
  }
  if (options.vocab_size < 5) {
    throw std::invalid_argument("tokenizer train: vocab size " +
                                std::to_string(options.vocab_size) +
                                " must be at least 5 (4 special ids + 1 piece)");
  }
  if (options.model_type != "unigram" && options.model_type != "bpe") {
    throw std::invalid_argument("tokenizer train: model type must be unigram or bpe, got '" +
                                options.model_type + "'");
  }
  if (!(options.character_coverage > 0.0 && options.character_coverage <= 1.0)) {
    throw std::invalid_argument("tokenizer train: character coverage must be in (0, 1], got " +
                                format_double(options.character_coverage));
  }
  const fs::path parent = fs::path(options.model_prefix).parent_path();
  if (!parent.empty()) fs::create_directories(parent);

  const std::vector<std::pair<std::string, std::string>> kwargs = {
      {"input", inputs},
      {"model_prefix", options.model_prefix},
      {"vocab_size", std::to_string(options.vocab_size)},
      {"model_type", options.model_type},
      {"character_coverage", format_double(options.character_coverage)},
      {"input_sentence_size", std::to_string(options.input_sentence_size)},
      {"shuffle_input_sentence", "true"},
      {"num_threads", std::to_string(std::max<int64_t>(1, options.threads))},
      {"pad_id", "0"},
      {"unk_id", "1"},
      {"bos_id", "2"},
      {"eos_id", "3"},
      {"minloglevel", options.quiet ? "2" : "0"},
  };
  std::vector<const char*> keys;
  std::vector<const char*> values;
  for (const auto& [k, v] : kwargs) {
    keys.push_back(k.c_str());
    values.push_back(v.c_str());
  }
  const Shim& s = shim("needed by tokenizer training");
  std::array<char, 2048> err{};
  if (s.train(keys.data(), values.data(), static_cast<int>(keys.size()), err.data(),
              err.size()) != 0) {
    throw IoError(options.model_prefix + ".model",
                  std::string("SentencePiece training failed: ") + err.data());
  }
  const auto tokenizer = make_sentencepiece_tokenizer(options.model_prefix + ".model");
  return tokenizer->vocab_size();
}

}  // namespace coca::data

// CLIP's byte-level BPE tokenizer, written to give the ids of open_clip's SimpleTokenizer
// (v2.32.0) from the same vocabulary file (bpe_simple_vocab_16e6.txt.gz).
#include <zlib.h>

#include <array>
#include <cctype>
#include <unordered_map>

#include "coca/common/error.h"
#include "coca/data/tokenizer.h"
#include "data/detail/clip_text.h"

namespace coca::data {
namespace {

// open_clip keeps merges[1 : 49152 - 256 - 2 + 1] of the file (line 0 is a header).
constexpr int64_t kMergeCount = 49152 - 256 - 2;
constexpr const char* kStartOfText = "<start_of_text>";
constexpr const char* kEndOfText = "<end_of_text>";

std::string read_gzip(const std::string& path) {
  gzFile file = gzopen(path.c_str(), "rb");
  if (file == nullptr) throw IoError(path, "cannot open CLIP BPE vocabulary");
  std::string out;
  std::array<char, 1 << 16> buffer{};
  while (true) {
    const int n = gzread(file, buffer.data(), static_cast<unsigned>(buffer.size()));
    if (n < 0) {
      int code = 0;
      const std::string what = gzerror(file, &code);
      gzclose(file);
      throw IoError(path, "cannot decompress CLIP BPE vocabulary: " + what);
    }
    if (n == 0) break;
    out.append(buffer.data(), static_cast<size_t>(n));
  }
  gzclose(file);
  return out;
}

std::vector<std::string> split_whitespace(const std::string& line) {
  std::vector<std::string> parts;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && std::isspace(static_cast<unsigned char>(line[i]))) ++i;
    size_t j = i;
    while (j < line.size() && !std::isspace(static_cast<unsigned char>(line[j]))) ++j;
    if (j > i) parts.push_back(line.substr(i, j - i));
    i = j;
  }
  return parts;
}

class ClipBpeTokenizer final : public Tokenizer {
 public:
  ClipBpeTokenizer(const std::string& path, bool add_bos, bool add_eos) {
    add_bos_ = add_bos;
    add_eos_ = add_eos;
    build_byte_tables();
    load(path);
  }

  std::vector<int64_t> encode(const std::string& text) const override {
    std::vector<int64_t> ids;
    const std::u32string clean = detail::clip_clean(detail::utf8_to_code_points(text));
    for (const auto& piece : detail::clip_pre_tokenize(clean)) {
      if (piece == U"<start_of_text>") {
        ids.push_back(sot_);
        continue;
      }
      if (piece == U"<end_of_text>") {
        ids.push_back(eot_);
        continue;
      }
      bpe(detail::code_points_to_utf8(piece), ids);
    }
    return ids;
  }

  std::string decode(const std::vector<int64_t>& ids) const override {
    std::string bytes;
    for (const int64_t id : ids) {
      if (id == sot_ || id == eot_) continue;
      if (id < 0 || id >= vocab_size()) {
        throw std::invalid_argument("clip_bpe: decode: id " + std::to_string(id) +
                                    " outside [0, " + std::to_string(vocab_size()) + ")");
      }
      bytes += id_bytes_[static_cast<size_t>(id)];
    }
    // Invalid UTF-8 (a cut multi-byte character) becomes U+FFFD, like Python's
    // errors="replace"; then every end-of-word marker becomes a space.
    std::string text = detail::code_points_to_utf8(detail::utf8_to_code_points(bytes));
    std::string out;
    out.reserve(text.size());
    for (size_t i = 0; i < text.size();) {
      if (text.compare(i, 4, "</w>") == 0) {
        out += ' ';
        i += 4;
      } else {
        out += text[i++];
      }
    }
    if (!out.empty() && out.back() == ' ') out.pop_back();
    return out;
  }

  int64_t vocab_size() const override { return static_cast<int64_t>(id_bytes_.size()); }
  int64_t bos_id() const override { return sot_; }
  int64_t eos_id() const override { return eot_; }
  int64_t pad_id() const override { return 0; }

 private:
  // bytes_to_unicode(): printable Latin-1 bytes map to themselves, the other 68 bytes to
  // U+0100.. in byte order; vocabulary ids 0..255 follow the printable ones first.
  void build_byte_tables() {
    std::vector<int> order;
    for (int b = '!'; b <= '~'; ++b) order.push_back(b);
    for (int b = 0xA1; b <= 0xAC; ++b) order.push_back(b);
    for (int b = 0xAE; b <= 0xFF; ++b) order.push_back(b);
    std::array<bool, 256> printable{};
    for (int b : order) printable[static_cast<size_t>(b)] = true;
    std::array<char32_t, 256> code{};
    for (int b : order) code[static_cast<size_t>(b)] = static_cast<char32_t>(b);
    int extra = 0;
    for (int b = 0; b < 256; ++b) {
      if (!printable[static_cast<size_t>(b)]) {
        order.push_back(b);
        code[static_cast<size_t>(b)] = static_cast<char32_t>(256 + extra++);
      }
    }
    byte_order_ = order;
    for (int b = 0; b < 256; ++b) {
      byte_char_[static_cast<size_t>(b)] =
          detail::code_points_to_utf8(std::u32string(1, code[static_cast<size_t>(b)]));
      char_byte_[code[static_cast<size_t>(b)]] = static_cast<uint8_t>(b);
    }
  }

  void add_token(const std::string& token) {
    const auto id = static_cast<int64_t>(vocab_.size());
    vocab_.push_back(token);
    encoder_[token] = id;  // a repeated string keeps its last id, as in Python's dict
  }

  int64_t id_of(const std::string& token, const std::string& path, size_t line) const {
    const auto it = encoder_.find(token);
    if (it == encoder_.end()) {
      throw IoError(path, "line " + std::to_string(line + 1) + ": merge part '" + token +
                              "' is not a known token");
    }
    return it->second;
  }

  void load(const std::string& path) {
    const std::string text = read_gzip(path);
    std::vector<std::string> lines;
    size_t start = 0;
    while (start <= text.size()) {
      size_t end = text.find('\n', start);
      if (end == std::string::npos) end = text.size();
      lines.push_back(text.substr(start, end - start));
      start = end + 1;
    }
    if (static_cast<int64_t>(lines.size()) < kMergeCount + 1) {
      throw IoError(path, "expected at least " + std::to_string(kMergeCount + 1) +
                              " lines in CLIP BPE vocabulary, found " +
                              std::to_string(lines.size()));
    }
    for (int b : byte_order_) add_token(byte_char_[static_cast<size_t>(b)]);
    for (int b : byte_order_) add_token(byte_char_[static_cast<size_t>(b)] + "</w>");
    std::vector<std::pair<std::string, std::string>> merges;
    merges.reserve(kMergeCount);
    for (size_t i = 1; i <= static_cast<size_t>(kMergeCount); ++i) {
      auto parts = split_whitespace(lines[i]);
      if (parts.size() != 2) {
        throw IoError(path, "line " + std::to_string(i + 1) + ": expected two merge parts, got " +
                                std::to_string(parts.size()));
      }
      merges.emplace_back(std::move(parts[0]), std::move(parts[1]));
    }
    for (const auto& m : merges) add_token(m.first + m.second);
    add_token(kStartOfText);
    add_token(kEndOfText);
    sot_ = encoder_.at(kStartOfText);
    eot_ = encoder_.at(kEndOfText);
    for (size_t rank = 0; rank < merges.size(); ++rank) {
      const int64_t a = id_of(merges[rank].first, path, rank + 1);
      const int64_t b = id_of(merges[rank].second, path, rank + 1);
      merge_[pair_key(a, b)] = {static_cast<int64_t>(rank),
                                encoder_.at(merges[rank].first + merges[rank].second)};
    }
    id_bytes_.reserve(vocab_.size());
    for (const auto& token : vocab_) {
      std::string raw;
      for (const char32_t c : detail::utf8_to_code_points(token)) {
        const auto it = char_byte_.find(c);
        if (it == char_byte_.end()) {
          throw IoError(path, "token '" + token + "' has a character outside the byte alphabet");
        }
        raw += static_cast<char>(it->second);
      }
      id_bytes_.push_back(std::move(raw));
    }
  }

  static uint64_t pair_key(int64_t a, int64_t b) {
    return (static_cast<uint64_t>(a) << 32) | static_cast<uint64_t>(b);
  }

  // Merges the lowest-ranked adjacent pair (every non-overlapping occurrence, left to
  // right) until no pair is a merge: open_clip's SimpleTokenizer.bpe on ids.
  void bpe(const std::string& piece, std::vector<int64_t>& out) const {
    std::vector<int64_t> word;
    word.reserve(piece.size());
    for (size_t i = 0; i < piece.size(); ++i) {
      const auto b = static_cast<uint8_t>(piece[i]);
      const std::string ch = byte_char_[b] + (i + 1 == piece.size() ? "</w>" : "");
      word.push_back(encoder_.at(ch));
    }
    while (word.size() > 1) {
      int64_t best_rank = -1;
      int64_t first = 0;
      int64_t second = 0;
      int64_t merged = 0;
      for (size_t i = 0; i + 1 < word.size(); ++i) {
        const auto it = merge_.find(pair_key(word[i], word[i + 1]));
        if (it != merge_.end() && (best_rank < 0 || it->second.first < best_rank)) {
          best_rank = it->second.first;
          first = word[i];
          second = word[i + 1];
          merged = it->second.second;
        }
      }
      if (best_rank < 0) break;
      std::vector<int64_t> next;
      next.reserve(word.size());
      for (size_t i = 0; i < word.size();) {
        if (i + 1 < word.size() && word[i] == first && word[i + 1] == second) {
          next.push_back(merged);
          i += 2;
        } else {
          next.push_back(word[i++]);
        }
      }
      word.swap(next);
    }
    out.insert(out.end(), word.begin(), word.end());
  }

  std::vector<int> byte_order_;
  std::array<std::string, 256> byte_char_;
  std::unordered_map<char32_t, uint8_t> char_byte_;
  std::vector<std::string> vocab_;
  std::unordered_map<std::string, int64_t> encoder_;
  std::unordered_map<uint64_t, std::pair<int64_t, int64_t>> merge_;  // -> (rank, merged id)
  std::vector<std::string> id_bytes_;
  int64_t sot_ = 0;
  int64_t eot_ = 0;
};

}  // namespace

std::unique_ptr<Tokenizer> make_clip_bpe_tokenizer(const std::string& vocab_gz_path,
                                                   bool add_bos, bool add_eos) {
  return std::make_unique<ClipBpeTokenizer>(vocab_gz_path, add_bos, add_eos);
}

}  // namespace coca::data

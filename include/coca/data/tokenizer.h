// Text tokenizers: SentencePiece (the paper's 64k vocabulary, arXiv 2205.01917 §4.1) and
// CLIP's byte-level BPE (the open_clip layout: 49,408 tokens, start 49406, end 49407, pad 0).
//
// SentencePiece is reached through a small shared library, libcoca_spm.so, that is
// dlopen'ed with RTLD_DEEPBIND on first use: libsentencepiece exports its bundled
// protobuf-lite, which clashes with LibTorch's libprotobuf when both are linked into one
// process image. coca_core therefore never links SentencePiece itself.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "coca/data/data_config.h"

namespace coca::data {

/// Turns text into token ids and back. Implementations are immutable after construction,
/// so one instance may be shared by loader threads.
class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  /// Token ids of `text`, without start/end tokens.
  virtual std::vector<int64_t> encode(const std::string& text) const = 0;
  /// Text of `ids`. Start and end tokens are dropped (cut a generated sequence at its
  /// end token first); SentencePiece also drops its other control pieces (pad). CLIP BPE
  /// decodes like open_clip (each word ends with a space) minus the final space; its pad
  /// id 0 is also the byte "!", so callers cut padding by position.
  virtual std::string decode(const std::vector<int64_t>& ids) const = 0;

  /// Number of token ids (the model's vocabulary size V).
  virtual int64_t vocab_size() const = 0;
  virtual int64_t bos_id() const = 0;  ///< start token
  virtual int64_t eos_id() const = 0;  ///< end token
  virtual int64_t pad_id() const = 0;  ///< fills positions after the end token

  /// Start/end tokens added by encode_batch (from TokenizerConfig::add_bos/add_eos).
  bool add_bos() const { return add_bos_; }
  bool add_eos() const { return add_eos_; }

  /// texts (B strings) -> [B, context_length] int64: [BOS] + encode(text) + [EOS], cut to
  /// context_length with the end token kept as the last id (open_clip's rule), then padded
  /// with pad_id(). BOS/EOS are present only when add_bos()/add_eos().
  torch::Tensor encode_batch(const std::vector<std::string>& texts,
                             int64_t context_length) const;
  /// One row of encode_batch, as ids (length == context_length).
  std::vector<int64_t> encode_padded(const std::string& text, int64_t context_length) const;

 protected:
  bool add_bos_ = true;
  bool add_eos_ = true;
};

/// Builds the tokenizer of `cfg`. `key_path` (e.g. "data.tokenizer") names the config
/// section in errors: a missing or unreadable file throws ConfigError naming
/// `<key_path>.path` and the file; a missing SentencePiece shim throws IoError listing
/// the places searched.
std::unique_ptr<Tokenizer> make_tokenizer(const TokenizerConfig& cfg,
                                          const std::string& key_path);

/// CLIP's byte-level BPE, as open_clip's SimpleTokenizer (v2.32.0): ftfy.fix_text's
/// deterministic fixes (curly quotes, ligatures, widths, controls, NFC; not its mojibake
/// repair), then text is HTML-unescaped twice, whitespace-collapsed, stripped and
/// lower-cased, split with CLIP's pattern
/// ('s|'t|'re|'ve|'m|'ll|'d|\p{L}+|\p{N}|[^\s\p{L}\p{N}]+, Unicode 14 classes), then
/// each piece is byte-encoded and merged with the first 48,894 merges of
/// bpe_simple_vocab_16e6.txt.gz. Ids: 0..255 bytes, 256..511 bytes + "</w>",
/// 512.. merges, 49406 `<start_of_text>`, 49407 `<end_of_text>`; pad is 0.
std::unique_ptr<Tokenizer> make_clip_bpe_tokenizer(const std::string& vocab_gz_path,
                                                   bool add_bos = true,
                                                   bool add_eos = true);

/// A SentencePiece model (.model file) loaded through libcoca_spm.so. BOS/EOS/pad ids
/// are the model's; a model without a pad id pads with 0. A model without BOS or EOS
/// ids cannot add them: asking for add_bos/add_eos then throws ConfigError.
std::unique_ptr<Tokenizer> make_sentencepiece_tokenizer(const std::string& model_path,
                                                        bool add_bos = true,
                                                        bool add_eos = true);

/// SentencePiece training (`coca tokenizer train`).
struct SentencePieceTrainOptions {
  std::vector<std::string> input_files;  ///< text files, one sentence per line
  std::string model_prefix;              ///< writes <prefix>.model and <prefix>.vocab
  int64_t vocab_size = 64000;            ///< pieces including the 4 special ids
  std::string model_type = "unigram";    ///< unigram | bpe
  double character_coverage = 1.0;       ///< share of characters covered by single pieces
  int64_t input_sentence_size = 0;       ///< sentences sampled for training; 0 = all
  int64_t threads = 1;                   ///< trainer threads
  bool quiet = true;                     ///< silence SentencePiece's own progress log
};

/// Trains a SentencePiece model with ids pad=0, unk=1, bos=2, eos=3 (a fixed convention so
/// padding is 0 as in open_clip). Returns the vocabulary size of the written model.
/// Throws std::invalid_argument on bad options and IoError when training fails.
int64_t train_sentencepiece(const SentencePieceTrainOptions& options);

/// Path of the SentencePiece shim library that would be loaded, searched in order: env
/// COCA_SPM_SHIM, the running executable's folder, the build tree's path compiled in.
/// Empty if none exists.
std::string find_spm_shim();

}  // namespace coca::data

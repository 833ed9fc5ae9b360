// Tokenizers: CLIP BPE against open_clip's golden tokenizations, the batch layout
// (BOS + ids + EOS, truncation keeping EOS, padding), and SentencePiece through the
// dlopen'ed shim with a model trained at test time.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdlib>
#include <fstream>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "coca/common/error.h"
#include "coca/data/tokenizer.h"
#include "data/detail/clip_text.h"
#include "test_utils.h"

namespace coca::data {
namespace {

using coca::testing::TempDir;

std::filesystem::path clip_vocab_path() {
  return coca::testing::reference_dir() / "clip_bpe" / "bpe_simple_vocab_16e6.txt.gz";
}

// One CLIP BPE tokenizer for the whole suite: loading 48,894 merges takes a moment.
const Tokenizer& clip() {
  static const std::unique_ptr<Tokenizer> tok = [] {
    TokenizerConfig cfg;
    cfg.type = "clip_bpe";
    cfg.path = clip_vocab_path().string();
    return make_tokenizer(cfg, "data.tokenizer");
  }();
  return *tok;
}

// The golden file escapes tab, newline and backslash in its text column.
std::string unescape(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size()) {
      const char c = s[++i];
      out += c == 't' ? '\t' : c == 'n' ? '\n' : c;
    } else {
      out += s[i];
    }
  }
  return out;
}

std::string str(const std::u32string& s) { return detail::code_points_to_utf8(s); }

TEST(ClipBpeTest, ReproducesEveryGoldenTokenization) {
  COCA_REQUIRE_REFERENCE();
  const auto golden = coca::testing::reference_dir() / "clip_bpe" / "golden_tokenizations.tsv";
  std::ifstream in(golden);
  ASSERT_TRUE(in) << golden;
  std::vector<std::string> texts;
  std::vector<std::vector<int64_t>> want;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    const auto tab = line.find('\t');
    ASSERT_NE(tab, std::string::npos) << line;
    texts.push_back(unescape(line.substr(0, tab)));
    std::istringstream ids(line.substr(tab + 1));
    std::vector<int64_t> row;
    for (int64_t id = 0; ids >> id;) row.push_back(id);
    want.push_back(row);
  }
  ASSERT_GE(texts.size(), 19u);
  const auto context = static_cast<int64_t>(want[0].size());
  EXPECT_EQ(context, 76);  // CoCa: 76 text positions + CLS
  const torch::Tensor got = clip().encode_batch(texts, context);
  ASSERT_EQ(got.sizes(), (std::vector<int64_t>{static_cast<int64_t>(texts.size()), context}));
  for (size_t i = 0; i < texts.size(); ++i) {
    ASSERT_EQ(static_cast<int64_t>(want[i].size()), context) << "line of '" << texts[i] << "'";
    const auto* row = got[static_cast<int64_t>(i)].data_ptr<int64_t>();
    EXPECT_EQ(std::vector<int64_t>(row, row + context), want[i]) << "text: '" << texts[i] << "'";
  }
}

// Non-Latin scripts, emoji, superscript numbers, final sigma, HTML entities: ids from an
// independent Python tokenizer (tools/make_clip_bpe_golden.py).
TEST(ClipBpeTest, MatchesPythonOnNonLatinText) {
  COCA_REQUIRE_REFERENCE();
  std::ifstream in(coca::testing::source_dir() / "tests" / "data" / "golden" /
                   "clip_bpe_unicode.tsv");
  ASSERT_TRUE(in);
  int lines = 0;
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#') continue;
    const auto tab = line.find('\t');
    ASSERT_NE(tab, std::string::npos) << line;
    const std::string text = unescape(line.substr(0, tab));
    std::istringstream ids(line.substr(tab + 1));
    std::vector<int64_t> want;
    for (int64_t id = 0; ids >> id;) want.push_back(id);
    EXPECT_EQ(clip().encode(text), want) << "text: '" << text << "'";
    ++lines;
  }
  EXPECT_EQ(lines, 12);
}

TEST(ClipBpeTest, SpecialIdsAndVocabularySize) {
  COCA_REQUIRE_REFERENCE();
  EXPECT_EQ(clip().vocab_size(), 49408);
  EXPECT_EQ(clip().bos_id(), 49406);
  EXPECT_EQ(clip().eos_id(), 49407);
  EXPECT_EQ(clip().pad_id(), 0);
  // The special token strings in text map to their ids, as in open_clip's pattern.
  EXPECT_EQ(clip().encode("<start_of_text>x<end_of_text>"),
            (std::vector<int64_t>{49406, clip().encode("x")[0], 49407}));
}

TEST(ClipBpeTest, EncodeBatchTruncatesKeepingEndTokenAndPads) {
  COCA_REQUIRE_REFERENCE();
  const std::string long_text = "one two three four five six seven eight nine ten";
  const std::vector<int64_t> body = clip().encode(long_text);
  ASSERT_EQ(body.size(), 10u);
  const torch::Tensor batch = clip().encode_batch({long_text, "cat", ""}, 6);
  ASSERT_EQ(batch.sizes(), (std::vector<int64_t>{3, 6}));
  ASSERT_EQ(batch.scalar_type(), torch::kLong);
  // Truncated: BOS, the first 4 body ids, EOS last.
  const std::vector<int64_t> row0(batch[0].data_ptr<int64_t>(), batch[0].data_ptr<int64_t>() + 6);
  EXPECT_EQ(row0, (std::vector<int64_t>{49406, body[0], body[1], body[2], body[3], 49407}));
  // Short: BOS, id, EOS, then pad 0.
  const std::vector<int64_t> row1(batch[1].data_ptr<int64_t>(), batch[1].data_ptr<int64_t>() + 6);
  EXPECT_EQ(row1, (std::vector<int64_t>{49406, clip().encode("cat")[0], 49407, 0, 0, 0}));
  const std::vector<int64_t> row2(batch[2].data_ptr<int64_t>(), batch[2].data_ptr<int64_t>() + 6);
  EXPECT_EQ(row2, (std::vector<int64_t>{49406, 49407, 0, 0, 0, 0}));
  EXPECT_THROW(clip().encode_batch({"x"}, 1), std::invalid_argument);
}

TEST(ClipBpeTest, WithoutStartTokenTruncationStillEndsWithEndToken) {
  COCA_REQUIRE_REFERENCE();
  TokenizerConfig cfg;
  cfg.type = "clip_bpe";
  cfg.path = clip_vocab_path().string();
  cfg.add_bos = false;
  const auto tok = make_tokenizer(cfg, "data.tokenizer");
  const auto row = tok->encode_padded("one two three four", 3);
  const auto body = tok->encode("one two");
  EXPECT_EQ(row, (std::vector<int64_t>{body[0], body[1], 49407}));
}

TEST(ClipBpeTest, DecodeInvertsEncodeOnLowercaseText) {
  COCA_REQUIRE_REFERENCE();
  for (const std::string text :
       {"a photo of a cat", "two dogs playing in the snow", "supercalifragilisticexpialidocious",
        "the quick brown fox jumps over the lazy dog", "zebra"}) {
    EXPECT_EQ(clip().decode(clip().encode(text)), text);
  }
  // Start/end tokens are dropped.
  EXPECT_EQ(clip().decode(clip().encode_padded("a cat", 4)), "a cat");
  EXPECT_THROW(clip().decode({49408}), std::invalid_argument);
}

TEST(ClipBpeTest, CleaningFollowsHtmlUnescapeWhitespaceAndLowercase) {
  COCA_REQUIRE_REFERENCE();
  // Python: html.unescape twice, \s+ -> ' ', strip, lower.
  EXPECT_EQ(clip().encode("Tom &amp;amp; Jerry"), clip().encode("tom & jerry"));
  EXPECT_EQ(clip().encode("a&nbsp;b"), clip().encode("a b"));
  EXPECT_EQ(clip().encode("&#65;&#x42;"), clip().encode("ab"));
  EXPECT_EQ(clip().encode("  \n RED\tcar \u3000"), clip().encode("red car"));
  EXPECT_EQ(clip().encode("\xc3\x89T\xc3\x89"), clip().encode("\xc3\xa9t\xc3\xa9"));  // ÉTÉ
}

TEST(ClipTextTest, PreTokenizerSplitsLikeClipsPattern) {
  auto split = [](const std::string& text) {
    std::vector<std::string> out;
    for (const auto& p : detail::clip_pre_tokenize(detail::utf8_to_code_points(text))) {
      out.push_back(str(p));
    }
    return out;
  };
  // Hand-worked from 's|'t|'re|'ve|'m|'ll|'d|\p{L}+|\p{N}|[^\s\p{L}\p{N}]+
  EXPECT_EQ(split("don't stop: it's 3:45pm"),
            (std::vector<std::string>{"don", "'t", "stop", ":", "it", "'s", "3", ":", "4", "5",
                                      "pm"}));
  EXPECT_EQ(split("c++ (beta) #x ''s"),
            (std::vector<std::string>{"c", "++", "(", "beta", ")", "#", "x", "''", "s"}));
  EXPECT_EQ(split("na\xc3\xafve \xce\xb1\xce\xb2\xce\xb3 \xe4\xb8\xad\xe6\x96\x87 \xd9\xa3"),
            (std::vector<std::string>{"na\xc3\xafve", "\xce\xb1\xce\xb2\xce\xb3",
                                      "\xe4\xb8\xad\xe6\x96\x87", "\xd9\xa3"}));
  EXPECT_EQ(split("x<end_of_text>y"), (std::vector<std::string>{"x", "<end_of_text>", "y"}));
}

TEST(ClipTextTest, LowercaseAndUnescapeFollowPython) {
  using detail::html_unescape;
  using detail::to_lower;
  using detail::utf8_to_code_points;
  // str.lower: full mapping of U+0130 and the final sigma.
  EXPECT_EQ(str(to_lower(utf8_to_code_points("\xc4\xb0"))), "i\xcc\x87");
  EXPECT_EQ(str(to_lower(utf8_to_code_points("\xce\x9f\xce\xa3 \xce\xa3\xce\x91"))),
            "\xce\xbf\xcf\x82 \xcf\x83\xce\xb1");
  // html.unescape: names without ';', the longest-prefix rule, cp1252 numeric refs, junk.
  EXPECT_EQ(str(html_unescape(utf8_to_code_points("&amp &ampx &lt;b&gt; &#128; &#0; &zz; &#"))),
            "& &x <b> \xe2\x82\xac \xef\xbf\xbd &zz; &#");
  // Invalid UTF-8 becomes one U+FFFD per maximal invalid prefix.
  EXPECT_EQ(str(utf8_to_code_points("a\xe2\x82z\xff")), "a\xef\xbf\xbdz\xef\xbf\xbd");
}

TEST(ClipTextTest, FtfyStepsBeforeCleaning) {
  auto fix = [](const std::string& s) {
    return str(detail::ftfy_lite(detail::utf8_to_code_points(s)));
  };
  // ftfy: curly quotes straightened, Latin ligatures split, fullwidth forms narrowed,
  // terminal escapes and stray controls removed, C1 controls read as Windows-1252, NFC.
  EXPECT_EQ(fix("don\xe2\x80\x99t \xe2\x80\x9cok\xe2\x80\x9d"), "don't \"ok\"");
  EXPECT_EQ(fix("\xef\xac\x81ne \xef\xbc\xa1\xef\xbc\x91\xe3\x80\x80x"), "fine A1 x");
  EXPECT_EQ(fix("\x1b[36;44mblue\x1b[0m a\x01" "b\xef\xbb\xbf"), "blue ab");
  EXPECT_EQ(fix("\xc2\x93q\xc2\x94"), "\"q\"");  // U+0093/U+0094 -> cp1252 quotes -> uncurled
  EXPECT_EQ(fix("cafe\xcc\x81 \xe2\x84\xab \xe1\x84\x80\xe1\x85\xa1"),
            "caf\xc3\xa9 \xc3\x85 \xea\xb0\x80");  // NFC: e+acute, Angstrom, Hangul L+V
  EXPECT_EQ(fix("caf\xc3\xa9 na\xc3\xafve"), "caf\xc3\xa9 na\xc3\xafve");  // already NFC
}

TEST(ClipBpeTest, CurlyApostropheTokenizesLikeStraightOne) {
  COCA_REQUIRE_REFERENCE();
  EXPECT_EQ(clip().encode("don\xe2\x80\x99t stop"), clip().encode("don't stop"));
  EXPECT_EQ(clip().encode("cafe\xcc\x81"), clip().encode("caf\xc3\xa9"));
}

TEST(ClipBpeTest, MissingVocabularyNamesTheKey) {
  TokenizerConfig cfg;
  cfg.type = "clip_bpe";
  cfg.path = "/nonexistent/bpe.txt.gz";
  try {
    make_tokenizer(cfg, "data.tokenizer");
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("data.tokenizer.path"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("/nonexistent/bpe.txt.gz"), std::string::npos);
  }
}

// ---- SentencePiece (through libcoca_spm.so) ----

// Sentences from a small fixed vocabulary (seeded), one per line.
std::vector<std::string> make_sentences(int n, uint64_t seed) {
  const std::vector<std::string> words = {
      "a",     "the",   "photo", "of",    "red",    "blue",   "green", "circle", "square",
      "two",   "three", "small", "large", "dog",    "cat",    "on",    "with",   "and",
      "grass", "snow",  "near",  "tree",  "bright", "dark",   "car",   "house",  "water"};
  std::mt19937_64 rng(seed);
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i) {
    const int len = 3 + static_cast<int>(rng() % 8);
    std::string s;
    for (int k = 0; k < len; ++k) s += (k ? " " : "") + words[rng() % words.size()];
    out.push_back(s);
  }
  return out;
}

class SentencePieceTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    std::string text;
    for (const auto& s : make_sentences(400, 7)) text += s + "\n";
    coca::testing::write_file(*dir_ / "text.txt", text);
    SentencePieceTrainOptions opts;
    opts.input_files = {(*dir_ / "text.txt").string()};
    opts.model_prefix = (*dir_ / "spm").string();
    opts.vocab_size = 40;
    vocab_ = train_sentencepiece(opts);
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  static std::unique_ptr<Tokenizer> load(bool add_bos = true, bool add_eos = true) {
    TokenizerConfig cfg;
    cfg.type = "sentencepiece";
    cfg.path = (*dir_ / "spm.model").string();
    cfg.add_bos = add_bos;
    cfg.add_eos = add_eos;
    return make_tokenizer(cfg, "data.tokenizer");
  }
  static TempDir* dir_;
  static int64_t vocab_;
};
TempDir* SentencePieceTest::dir_ = nullptr;
int64_t SentencePieceTest::vocab_ = 0;

TEST_F(SentencePieceTest, ShimIsFound) { EXPECT_FALSE(find_spm_shim().empty()); }

TEST_F(SentencePieceTest, TrainedModelHasRequestedSizeAndSpecialIds) {
  EXPECT_EQ(vocab_, 40);
  EXPECT_TRUE(std::filesystem::exists(*dir_ / "spm.vocab"));
  const auto tok = load();
  EXPECT_EQ(tok->vocab_size(), 40);
  EXPECT_EQ(tok->pad_id(), 0);
  EXPECT_EQ(tok->bos_id(), 2);
  EXPECT_EQ(tok->eos_id(), 3);
  // The .vocab file lists pieces in id order: pad, unk, bos, eos first.
  std::ifstream vocab(*dir_ / "spm.vocab");
  std::vector<std::string> pieces;
  for (std::string line; std::getline(vocab, line);) pieces.push_back(line.substr(0, line.find('\t')));
  ASSERT_EQ(pieces.size(), 40u);
  EXPECT_EQ(std::vector<std::string>(pieces.begin(), pieces.begin() + 4),
            (std::vector<std::string>{"<pad>", "<unk>", "<s>", "</s>"}));
}

TEST_F(SentencePieceTest, DecodeInvertsEncode) {
  const auto tok = load();
  for (const auto& s : make_sentences(20, 99)) {  // unseen sentences, same words
    const auto ids = tok->encode(s);
    ASSERT_FALSE(ids.empty());
    for (const int64_t id : ids) {
      EXPECT_GE(id, 4);  // no special id inside the text
      EXPECT_LT(id, tok->vocab_size());
    }
    EXPECT_EQ(tok->decode(ids), s);
  }
}

TEST_F(SentencePieceTest, BatchAddsStartEndAndPads) {
  const auto tok = load();
  const std::string s = "a photo of two red circles";
  const auto body = tok->encode(s);
  const int64_t context = static_cast<int64_t>(body.size()) + 5;
  const torch::Tensor batch = tok->encode_batch({s}, context);
  std::vector<int64_t> want = {2};
  want.insert(want.end(), body.begin(), body.end());
  want.push_back(3);
  want.resize(static_cast<size_t>(context), 0);
  EXPECT_EQ(std::vector<int64_t>(batch.data_ptr<int64_t>(), batch.data_ptr<int64_t>() + context),
            want);
  EXPECT_EQ(tok->decode(want), s);  // start, end and pad are dropped
  // Truncation keeps the end token; without BOS/EOS only the body is written.
  const auto cut = tok->encode_padded(s, 3);
  EXPECT_EQ(cut, (std::vector<int64_t>{2, body[0], 3}));
  const auto plain = load(false, false)->encode_padded(s, 2);
  EXPECT_EQ(plain, (std::vector<int64_t>{body[0], body[1]}));
}

TEST_F(SentencePieceTest, ConcurrentEncodingMatchesSerial) {
  const auto tok = load();
  const auto texts = make_sentences(64, 5);
  const torch::Tensor serial = tok->encode_batch(texts, 24);
  std::vector<torch::Tensor> results(4);
  std::vector<std::thread> threads;
  for (size_t t = 0; t < results.size(); ++t) {
    threads.emplace_back([&, t] { results[t] = tok->encode_batch(texts, 24); });
  }
  for (auto& th : threads) th.join();
  for (const auto& r : results) EXPECT_TRUE(torch::equal(r, serial));
}

TEST_F(SentencePieceTest, MissingOrBrokenModelNamesTheKeyAndPath) {
  TokenizerConfig cfg;
  cfg.type = "sentencepiece";
  cfg.path = (*dir_ / "missing.model").string();
  try {
    make_tokenizer(cfg, "data.tokenizer");
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("data.tokenizer.path"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("missing.model"), std::string::npos) << e.what();
  }
  coca::testing::write_file(*dir_ / "broken.model", "not a model");
  cfg.path = (*dir_ / "broken.model").string();
  try {
    make_tokenizer(cfg, "data.tokenizer");
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("data.tokenizer.path"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("broken.model"), std::string::npos) << e.what();
  }
}

TEST_F(SentencePieceTest, TrainingRejectsBadOptions) {
  SentencePieceTrainOptions opts;
  opts.input_files = {(*dir_ / "no_such.txt").string()};
  opts.model_prefix = (*dir_ / "x").string();
  EXPECT_THROW(train_sentencepiece(opts), std::invalid_argument);
  opts.input_files = {(*dir_ / "text.txt").string()};
  opts.model_type = "word_soup";
  EXPECT_THROW(train_sentencepiece(opts), std::invalid_argument);
  opts.model_type = "unigram";
  opts.vocab_size = 100000;  // more pieces than this text can give
  EXPECT_THROW(train_sentencepiece(opts), IoError);
}

TEST_F(SentencePieceTest, CliTrainsWithTheShimLoaded) {
  TempDir tmp;
  const auto prefix = tmp / "cli_spm";
  const auto r = coca::testing::run_coca("tokenizer train --text '" + (*dir_ / "text.txt").string() +
                                         "' --vocab-size 36 --model-type bpe --out '" +
                                         prefix.string() + "'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("vocab size 36"), std::string::npos) << r.out;
  TokenizerConfig cfg;
  cfg.path = prefix.string() + ".model";
  const auto tok = make_tokenizer(cfg, "data.tokenizer");
  EXPECT_EQ(tok->vocab_size(), 36);
  EXPECT_EQ(tok->decode(tok->encode("the red car")), "the red car");
  // A wrong COCA_SPM_SHIM is reported, not skipped over (the child inherits the variable;
  // this process has its shim loaded already).
  ::setenv("COCA_SPM_SHIM", "/nonexistent/libcoca_spm.so", 1);
  const auto no_shim = coca::testing::run_coca("tokenizer train --text '" +
                                               (*dir_ / "text.txt").string() +
                                               "' --vocab-size 36 --out '" + prefix.string() + "'");
  ::unsetenv("COCA_SPM_SHIM");
  EXPECT_EQ(no_shim.exit_code, 1);
  EXPECT_NE(no_shim.err.find("/nonexistent/libcoca_spm.so: COCA_SPM_SHIM names no file"),
            std::string::npos)
      << no_shim.err;
  const auto bad = coca::testing::run_coca("tokenizer train --text '" +
                                           (*dir_ / "text.txt").string() + "' --out x");
  EXPECT_EQ(bad.exit_code, 2);  // --vocab-size missing
}

}  // namespace
}  // namespace coca::data

// Data configuration (no torch include): sources, image transforms, tokenizer,
// labels-as-text and the loader.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace coca::data {

/// One dataset. Several can be named; the mixture takes a fixed quota of each per batch.
struct SourceConfig {
  std::string name;                  ///< name used in logs and metrics; empty = type
  /// webdataset | manifest | folder | coco | karpathy | idx | synthetic
  std::string type = "webdataset";
  std::string path;                  ///< shards pattern, manifest, folder, json or IDX images file
  std::string labels_path;           ///< IDX labels file, or empty
  std::string class_names;           ///< file: one class per line, `id<TAB>name[, name...]`
  /// manifest/coco/karpathy: folder image paths are relative to; empty = the file's folder
  std::string image_root;
  /// caption: text is the sample's caption (ALIGN-style); label: text is made from the
  /// label names (JFT-style, paper §4.1)
  std::string text = "caption";
  double fraction = 1.0;             ///< share of each batch; shares are normalised to 1
  std::string split;                 ///< karpathy/coco split (train, val, test), or empty
  std::string caption_key = "txt";   ///< webdataset member (or json field) holding the caption
  std::string label_key = "cls";     ///< webdataset member holding label ids/names
  std::string separator = "\t";     ///< manifest column separator
  std::string filepath_column = "filepath";  ///< manifest image column
  std::string title_column = "title";        ///< manifest caption column
  /// manifest: column holding each row's class id (empty = no labels); the ids are the
  /// class_names file's ids in its order when given, else the column's sorted values
  std::string label_column;
  int64_t samples = 0;               ///< synthetic: samples per epoch; others: cap (0 = all)
  uint64_t seed = 0;                 ///< synthetic: generator seed
  int64_t image_size = 64;           ///< synthetic: side of the generated images
};

/// Image preprocessing.
struct TransformConfig {
  int64_t image_size = 0;       ///< output side; 0 = model.vision.image_size
  double scale_min = 0.9;       ///< RandomResizedCrop area range (open_clip: 0.9 .. 1.0)
  double scale_max = 1.0;
  double ratio_min = 0.75;      ///< RandomResizedCrop aspect range
  double ratio_max = 1.3333333333333333;
  bool hflip = false;           ///< random horizontal flip in training
  std::vector<double> mean{0.48145466, 0.4578275, 0.40821073};  ///< CLIP's by default
  std::vector<double> std{0.26862954, 0.26130258, 0.27577711};
  bool reduced_decode = false;  ///< JPEG DCT-domain downscaling when the target is much smaller
};

/// Tokenizer.
struct TokenizerConfig {
  std::string type = "sentencepiece";  ///< sentencepiece | clip_bpe
  std::string path;                    ///< SentencePiece .model or CLIP BPE vocabulary (.txt.gz)
  int64_t context_length = 0;          ///< tokens per text; 0 = model.text.context_length
  bool add_bos = true;                 ///< prepend the start token
  bool add_eos = true;                 ///< append the end token (kept when truncating)
};

/// Labels turned into text (paper §4.1): names shuffled, joined, put in a template.
struct LabelTextConfig {
  std::string templates;           ///< file with one template per line ({} = labels); empty = CLIP's
  std::string separator = ", ";    ///< between label names
  bool shuffle = true;             ///< shuffle the names of a multi-label sample
};

struct DataConfig {
  std::vector<SourceConfig> sources;  ///< training sources (the mixture)
  TransformConfig train_transform;
  TransformConfig eval_transform;   ///< eval: resize shorter side + center crop (crop ranges unused)
  TokenizerConfig tokenizer;
  LabelTextConfig label_text;
  int64_t workers = 0;            ///< decoding threads; 0 = runtime.threads
  int64_t prefetch = 4;           ///< batches decoded ahead
  int64_t report_bad_every = 100; ///< log skipped samples every N occurrences per kind
  uint64_t seed = 0;              ///< shuffle seed (with the epoch)
};

}  // namespace coca::data

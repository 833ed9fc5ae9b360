// WebDataset tar shards: the writer (used by `coca data synth` and `coca data convert`)
// and the rules of the `webdataset` source (make_source with type: webdataset).
//
// Layout: a shard is a tar (optionally gzip/zstd/xz-compressed) whose members are named
// `<key>.<ext>`; the key is the member path up to the first dot of its file name
// (folders are part of the key), and consecutive members with the same key form one
// sample. Reading rules:
//   image    the first member whose last extension is jpg, jpeg, png, webp or bmp;
//            none -> skipped as SkipReason::missing_file.
//   caption  `caption_key` names a member (`txt`): its whole text, trimmed; or
//            `<member>:<field>` (e.g. `json:caption`): a string or a list of strings
//            in that JSON member.
//   labels   `label_key` names a member (`cls`): entries separated by newlines or
//            commas (a single line of space-separated integers also works); an entry
//            that is an integer is a class id, mapped to its name through the source's
//            `class_names` file (`id<TAB>name[, synonym...]`, the first name is used);
//            any other entry is a class name. `<member>:<field>` reads an int, a string
//            or a list of them from a JSON member.
//   text     with `text: caption` a sample without a non-empty caption, with
//            `text: label` one without label names, is skipped as empty_text; a class
//            id missing from `class_names` skips the sample as `other`.
//   damage   a truncated or unreadable tar returns the samples before the damage, then
//            reports truncated_shard once (the incomplete last sample is dropped). An
//            uncompressed tar that stops at a block boundary without its end-of-archive
//            blocks counts as truncated. Image bytes are not decoded here.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "coca/data/sample.h"

namespace coca::data {

/// One member `<key>.<ext>` of a WebDataset sample.
struct TarMember {
  std::string ext;            ///< extension without the leading dot: "png", "txt", "cls"
  std::vector<uint8_t> data;  ///< raw bytes
  static TarMember text(const std::string& ext, const std::string& text);
};

/// Writes WebDataset shards `<dir>/<prefix>-00000.tar`, `-00001.tar`, ... with
/// `shard_size` samples each. Each shard is written to `<name>.tmp` and renamed when
/// complete, so a reader never sees a half-written shard. Member times are fixed (0),
/// so the same samples give byte-identical shards.
///
///   WebDatasetWriter w("out", "train", 1000);
///   w.write("000001", {{"png", png_bytes}, TarMember::text("txt", "a red circle")});
///   std::vector<std::string> shards = w.finish();
class WebDatasetWriter {
 public:
  WebDatasetWriter(const std::string& dir, const std::string& prefix, int64_t shard_size);
  /// Finishes the open shard; errors are logged, not thrown (call finish() to see them).
  ~WebDatasetWriter();
  WebDatasetWriter(const WebDatasetWriter&) = delete;
  WebDatasetWriter& operator=(const WebDatasetWriter&) = delete;

  /// Appends one sample. Keys must not contain a dot in their file name part.
  /// Throws std::invalid_argument on a bad key or extension, IoError on write errors.
  void write(const std::string& key, const std::vector<TarMember>& members);
  /// Appends a RawSample: the image (image_bytes with the extension of image_name, or
  /// `pixels` encoded as PNG), `txt` = first caption, `cls` = label ids one per line, and
  /// `json` {"captions", "labels", "label_ids"} when there is more than one caption or
  /// any label.
  void write(const RawSample& sample);
  /// Closes the open shard; returns the paths of every shard written. Idempotent.
  std::vector<std::string> finish();

  int64_t samples_written() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// Splits a member path into (key, extension) following the WebDataset rule above:
/// "a/b/x.seg.png" -> ("a/b/x", "seg.png"). A leading "./" is dropped.
std::pair<std::string, std::string> split_member_name(const std::string& path);

}  // namespace coca::data

#include "coca/data/dataset_tools.h"

#include <fmt/format.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "coca/common/error.h"
#include "coca/data/class_names.h"
#include "coca/data/image_transform.h"
#include "coca/data/sources.h"
#include "coca/data/webdataset.h"

namespace coca::data {
namespace {

constexpr size_t kMaxProblems = 20;

/// Reads every sample of a source, calling `visit(sample, shard)`; skips are counted in
/// `skipped` and the first problems kept in `problems`. Returns false from `visit` to stop.
template <class Visit>
void read_all(const Source& source, int64_t max_samples, std::array<int64_t, 5>& skipped,
              std::vector<std::string>& problems, Visit visit) {
  int64_t seen = 0;
  for (const auto& shard : source.shards()) {
    if (max_samples > 0 && seen >= max_samples) return;
    const auto on_skip = [&](SkipReason reason, const std::string& shard_name,
                             const std::string& key, const std::string& detail) {
      ++skipped[static_cast<size_t>(reason)];
      if (problems.size() < kMaxProblems) {
        problems.push_back(fmt::format("{} [{}]: {}: {}", shard_name, key, to_string(reason), detail));
      }
    };
    const auto reader = source.open(shard.index, on_skip);
    RawSample sample;
    while ((max_samples == 0 || seen < max_samples) && reader->next(sample)) {
      ++seen;
      if (!visit(sample, shard.name, on_skip)) return;
    }
  }
}

}  // namespace

SourceReport inspect_source(const SourceConfig& cfg, const std::string& key_path,
                            int64_t max_samples, int64_t examples, bool decode) {
  const auto source = make_source(cfg, key_path);
  SourceReport report;
  report.name = cfg.name.empty() ? cfg.type : cfg.name;
  report.type = cfg.type;
  report.shards = static_cast<int64_t>(source->shards().size());
  read_all(*source, max_samples, report.skipped, report.problems,
           [&](const RawSample& s, const std::string& shard, const auto& on_skip) {
             SampleSummary summary;
             summary.key = s.key;
             if (decode || static_cast<int64_t>(report.examples.size()) < examples) {
               try {
                 const Image image = sample_image(s);
                 summary.height = image.height;
                 summary.width = image.width;
               } catch (const DataError& e) {
                 on_skip(SkipReason::corrupt_image, shard, s.key, e.what());
                 return true;
               }
             }
             ++report.samples;
             if (static_cast<int64_t>(report.examples.size()) < examples) {
               summary.captions = s.captions;
               summary.labels = s.labels;
               report.examples.push_back(std::move(summary));
             }
             return true;
           });
  return report;
}

std::string format_report(const SourceReport& r) {
  std::ostringstream out;
  out << fmt::format("source '{}' ({}): {} shards, {} readable samples\n", r.name, r.type,
                     r.shards, r.samples);
  int64_t total_skipped = 0;
  for (size_t i = 0; i < r.skipped.size(); ++i) {
    if (r.skipped[i] == 0) continue;
    total_skipped += r.skipped[i];
    out << fmt::format("  skipped {:>8}  {}\n", r.skipped[i], to_string(static_cast<SkipReason>(i)));
  }
  if (total_skipped == 0) out << "  no problems found\n";
  for (const auto& p : r.problems) out << "  problem: " << p << "\n";
  for (const auto& e : r.examples) {
    out << fmt::format("  [{}] {}x{}", e.key, e.width, e.height);
    if (!e.captions.empty()) out << fmt::format("  caption: \"{}\"", e.captions.front());
    if (e.captions.size() > 1) out << fmt::format(" (+{} more)", e.captions.size() - 1);
    if (!e.labels.empty()) out << fmt::format("  labels: {}", fmt::join(e.labels, ", "));
    out << "\n";
  }
  return out.str();
}

std::string webdataset_key(const std::string& key) {
  std::string out = key;
  const size_t slash = out.rfind('/');
  for (size_t i = slash == std::string::npos ? 0 : slash + 1; i < out.size(); ++i) {
    if (out[i] == '.') out[i] = '_';
  }
  return out;
}

ConvertStats convert_source(const SourceConfig& cfg, const std::string& key_path,
                            const std::string& out_dir, const std::string& prefix,
                            int64_t shard_size, int64_t max_samples, bool decode,
                            int alpha_background, int64_t max_side) {
  const auto source = make_source(cfg, key_path);
  std::filesystem::create_directories(out_dir);
  ConvertStats stats;
  std::vector<std::string> problems;
  WebDatasetWriter writer(out_dir, prefix, shard_size);
  read_all(*source, max_samples, stats.skipped, problems,
           [&](const RawSample& s, const std::string& shard, const auto& on_skip) {
             if (decode) {
               try {
                 (void)sample_image(s);
               } catch (const DataError& e) {
                 on_skip(SkipReason::corrupt_image, shard, s.key, e.what());
                 return true;
               }
             }
             RawSample out = s;
             out.key = webdataset_key(s.key);
             if ((alpha_background >= 0 || max_side > 0) && !s.image_bytes.empty()) {
               try {
                 auto flat = flatten_image(s.image_bytes, s.image_name, alpha_background, max_side);
                 if (!flat.empty()) {
                   out.image_bytes = std::move(flat);
                   out.image_name = out.key + ".png";
                 }
               } catch (const DataError& e) {
                 on_skip(SkipReason::corrupt_image, shard, s.key, e.what());
                 return true;
               }
             }
             writer.write(out);
             ++stats.samples;
             return true;
           });
  stats.shards = writer.finish();
  const auto names = source_class_names(*source);
  if (!names.empty()) {
    stats.classes_file = (std::filesystem::path(out_dir) / "classes.txt").string();
    std::ofstream out(stats.classes_file);
    for (size_t id = 0; id < names.size(); ++id) {
      out << id << "\t" << fmt::format("{}", fmt::join(names[id], ", ")) << "\n";
    }
    if (!out.flush()) throw IoError(stats.classes_file, "cannot write the class names");
  }
  return stats;
}

}  // namespace coca::data

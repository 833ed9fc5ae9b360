#include "coca/data/text_corpus.h"

#include <fmt/format.h>

#include <fstream>
#include <set>

#include "coca/common/error.h"
#include "coca/common/logging.h"
#include "coca/data/label_text.h"
#include "coca/data/sources.h"

namespace coca::data {

TextCorpusStats write_text_corpus(const std::vector<SourceConfig>& sources,
                                  const LabelTextConfig& label_text_cfg, uint64_t seed,
                                  int64_t max_samples, const std::string& out_path) {
  std::ofstream out(out_path, std::ios::app);
  if (!out) throw IoError(out_path, "cannot write the text corpus");
  const auto templates = make_templates(label_text_cfg);
  TextCorpusStats stats;
  std::set<std::string> class_names;
  for (size_t i = 0; i < sources.size(); ++i) {
    const auto source = make_source(sources[i], fmt::format("data.sources.{}", i));
    const bool labels = sources[i].text == "label";
    int64_t read = 0;
    for (const auto& shard : source->shards()) {
      if (max_samples > 0 && read >= max_samples) break;
      const auto reader = source->open(shard.index, [](SkipReason, const std::string&,
                                                       const std::string&, const std::string&) {});
      RawSample sample;
      while ((max_samples == 0 || read < max_samples) && reader->next(sample)) {
        if (labels) {
          if (sample.labels.empty()) continue;
          out << label_text(sample.labels, seed, static_cast<uint64_t>(read), label_text_cfg,
                            templates)
              << "\n";
          ++stats.lines;
          class_names.insert(sample.labels.begin(), sample.labels.end());
        } else {
          for (const auto& caption : sample.captions) {
            if (caption.empty()) continue;
            out << caption << "\n";
            ++stats.lines;
          }
        }
        ++read;
      }
    }
    stats.samples += read;
    log::info("[tokenizer] {} ('{}'): {} samples", sources[i].name, sources[i].text, read);
  }
  // Every template once with each class name: zero-shot prompts use them all.
  for (const auto& name : class_names) {
    for (const auto& t : templates) {
      std::string line = t;
      for (auto pos = line.find("{}"); pos != std::string::npos; pos = line.find("{}")) {
        line.replace(pos, 2, name);
      }
      out << line << "\n";
      ++stats.lines;
    }
  }
  if (!out.flush()) throw IoError(out_path, "write failed");
  return stats;
}

}  // namespace coca::data

// `coca data ...`: dataset tools. `data synth` writes the synthetic dataset as WebDataset
// shards; further leaves (inspect, convert) register on the same group in add_data.
#include <fmt/format.h>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <memory>

#include "cli/commands.h"
#include "coca/common/error.h"
#include "coca/config/config_io.h"
#include "coca/data/dataset_tools.h"
#include "coca/data/synthetic.h"

namespace coca::cli {

Leaf add_data_synth(CLI::App& data_group) {
  struct Args {
    std::string out;
    int64_t samples = 0;
    uint64_t seed = 0;
    int64_t size = 64;
    int64_t shard_size = 1000;
    std::string split = "train";
  };
  auto args = std::make_shared<Args>();
  CLI::App* app = data_group.add_subcommand(
      "synth", "write synthetic shapes-and-captions images as WebDataset shards");
  app->add_option("--out", args->out, "output folder")->required()->type_name("DIR");
  app->add_option("--samples", args->samples, "number of samples")
      ->required()
      ->check(CLI::PositiveNumber);
  app->add_option("--seed", args->seed, "generator seed (sample i is fixed by seed and i)")
      ->capture_default_str();
  app->add_option("--size", args->size, "image side in pixels")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{16}, int64_t{4096}));
  app->add_option("--shard-size", args->shard_size, "samples per tar shard")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app->add_option("--split-name", args->split, "shard file prefix: <split>-00000.tar")
      ->capture_default_str();

  Leaf leaf;
  leaf.app = app;
  leaf.run = [args] {
    const auto start = std::chrono::steady_clock::now();
    const data::SynthDatasetInfo info = data::write_synthetic_dataset(
        args->out, args->samples, args->seed, args->size, args->shard_size, args->split);
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::cout << "wrote " << info.samples << " samples (" << args->size << "x" << args->size
              << ", seed " << args->seed << ") in " << info.shards.size() << " shards in "
              << seconds << " s:\n";
    for (const auto& s : info.shards) std::cout << "  " << s << "\n";
    std::cout << "classes: " << info.classes_file << " (" << data::synthetic_class_names().size()
              << " classes)\n";
    if (!info.shards.empty()) {
      char last[16];
      std::snprintf(last, sizeof(last), "%05zu", info.shards.size() - 1);
      std::cout << "use as: type: webdataset, path: " << args->out << "/" << args->split
                << "-{00000.." << last << "}.tar, class_names: " << info.classes_file << "\n";
    }
    return 0;
  };
  return leaf;
}

namespace {

/// The source a data tool works on: a shard path/pattern (a webdataset source), or
/// `data.sources.N` of a run config.
struct SourceArgs {
  std::string path;
  ConfigArgs config;
  int64_t index = 0;

  void add_to(CLI::App& app) {
    app.add_option("path", path, "WebDataset tar, folder of tars or brace pattern")
        ->type_name("PATH");
    config.add_to(app);
    app.add_option("--source", index, "which data.sources entry of the config (0-based)")
        ->capture_default_str()
        ->check(CLI::NonNegativeNumber);
  }

  std::pair<data::SourceConfig, std::string> resolve() const {
    if (!path.empty() && !config.files.empty()) {
      throw UsageError("give a PATH or --config, not both");
    }
    if (!path.empty()) {
      data::SourceConfig src;
      src.type = "webdataset";
      src.path = path;
      return {src, "PATH"};
    }
    if (config.files.empty()) throw UsageError("give a PATH or --config F [--source N]");
    const auto cfg = config::load_run_config(config.files, config.overrides);
    if (index >= static_cast<int64_t>(cfg.data.sources.size())) {
      throw UsageError(fmt::format("--source {}: the config has {} data.sources", index,
                                   cfg.data.sources.size()));
    }
    return {cfg.data.sources[static_cast<size_t>(index)], fmt::format("data.sources.{}", index)};
  }
};

}  // namespace

Leaf add_data_inspect(CLI::App& data_group) {
  struct Args {
    SourceArgs source;
    int64_t samples = 0;
    int64_t examples = 5;
    bool no_decode = false;
  };
  auto args = std::make_shared<Args>();
  CLI::App* app = data_group.add_subcommand(
      "inspect", "count a source's samples, decode them, show examples and the problems found");
  args->source.add_to(*app);
  app->add_option("--samples", args->samples, "read at most N samples (0 = all)")
      ->check(CLI::NonNegativeNumber);
  app->add_option("--examples", args->examples, "examples to print")->capture_default_str();
  app->add_flag("--no-decode", args->no_decode, "do not decode every image (faster)");
  Leaf leaf;
  leaf.app = app;
  leaf.run = [args] {
    const auto [src, key] = args->source.resolve();
    const auto report =
        data::inspect_source(src, key, args->samples, args->examples, !args->no_decode);
    std::cout << data::format_report(report);
    return 0;
  };
  return leaf;
}

Leaf add_data_convert(CLI::App& data_group) {
  struct Args {
    SourceArgs source;
    std::string out;
    std::string prefix = "train";
    int64_t shard_size = 1000;
    int64_t samples = 0;
    bool no_decode = false;
    int alpha_background = -1;
    int64_t max_side = 0;
  };
  auto args = std::make_shared<Args>();
  CLI::App* app = data_group.add_subcommand("convert", "write any source as WebDataset shards");
  args->source.add_to(*app);
  app->add_option("--out", args->out, "output folder")->required()->type_name("DIR");
  app->add_option("--prefix", args->prefix, "shard file prefix: <prefix>-00000.tar")
      ->capture_default_str();
  app->add_option("--shard-size", args->shard_size, "samples per shard")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app->add_option("--samples", args->samples, "convert at most N samples (0 = all)")
      ->check(CLI::NonNegativeNumber);
  app->add_flag("--no-decode", args->no_decode, "do not check images by decoding them");
  app->add_option("--alpha-background", args->alpha_background,
                  "store transparent images composited onto this grey level (255 = white) "
                  "as PNG; -1 = keep them as they are")
      ->capture_default_str()
      ->check(CLI::Range(-1, 255));
  app->add_option("--max-side", args->max_side,
                  "shrink images whose longer side exceeds N pixels (bicubic, stored as "
                  "PNG); 0 = keep their size")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  Leaf leaf;
  leaf.app = app;
  leaf.run = [args] {
    const auto [src, key] = args->source.resolve();
    const auto stats =
        data::convert_source(src, key, args->out, args->prefix, args->shard_size, args->samples,
                             !args->no_decode, args->alpha_background, args->max_side);
    int64_t skipped = 0;
    for (auto n : stats.skipped) skipped += n;
    std::cout << fmt::format("wrote {} samples in {} shards to {} ({} skipped)\n", stats.samples,
                             stats.shards.size(), args->out, skipped);
    if (!stats.classes_file.empty()) std::cout << "classes: " << stats.classes_file << "\n";
    return 0;
  };
  return leaf;
}

Subcommand add_data(CLI::App& root) {
  CLI::App* group = root.add_subcommand("data", "dataset tools (synth, inspect, convert)");
  group->require_subcommand(1);
  auto leaves = std::make_shared<std::vector<Leaf>>();
  leaves->push_back(add_data_synth(*group));
  leaves->push_back(add_data_inspect(*group));
  leaves->push_back(add_data_convert(*group));

  Subcommand cmd;
  cmd.app = group;
  cmd.threads = [] { return int64_t{1}; };
  cmd.run = [leaves] {
    for (const auto& leaf : *leaves) {
      if (leaf.app->parsed()) return leaf.run();
    }
    return 2;
  };
  return cmd;
}

}  // namespace coca::cli

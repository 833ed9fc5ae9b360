// `coca data ...`: dataset tools. `data synth` writes the synthetic dataset as WebDataset
// shards; further leaves (inspect, convert) register on the same group in add_data.
#include <chrono>
#include <cstdio>
#include <iostream>
#include <memory>

#include "cli/commands.h"
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

Subcommand add_data(CLI::App& root) {
  CLI::App* group = root.add_subcommand("data", "dataset tools (synth)");
  group->require_subcommand(1);
  auto leaves = std::make_shared<std::vector<Leaf>>();
  leaves->push_back(add_data_synth(*group));

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

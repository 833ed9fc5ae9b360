#include <gtest/gtest.h>

#include "coca/common/error.h"
#include "coca/config/config_io.h"
#include "test_utils.h"

namespace coca::config {
namespace {

using coca::testing::error_lines;
using coca::testing::TempDir;
using coca::testing::write_file;

TEST(ConfigTest, DefaultsFollowThePaper) {
  const RunConfig cfg = load_run_config({}, {});
  EXPECT_EQ(cfg.model.layout, "paper");
  EXPECT_EQ(cfg.model.pooler.mode, "cascade");
  EXPECT_EQ(cfg.model.pooler.queries, 256);
  EXPECT_DOUBLE_EQ(cfg.train.lambda_cap, 2.0);
  EXPECT_DOUBLE_EQ(cfg.train.lambda_con, 1.0);
  EXPECT_EQ(cfg.optim.name, "adafactor");
  EXPECT_DOUBLE_EQ(cfg.optim.lr, 8e-4);
  EXPECT_DOUBLE_EQ(cfg.optim.beta1, 0.9);
  EXPECT_DOUBLE_EQ(cfg.optim.beta2, 0.999);
  EXPECT_DOUBLE_EQ(cfg.optim.weight_decay, 0.01);
  EXPECT_DOUBLE_EQ(cfg.schedule.warmup_fraction, 0.02);
  EXPECT_NEAR(cfg.model.init_logit_scale, std::log(1.0 / 0.07), 1e-12);
  EXPECT_TRUE(check(cfg).empty());
}

TEST(ConfigTest, LaterFilesWinAndSetWinsOverFiles) {
  TempDir dir;
  write_file(dir / "a.yaml", "optim:\n  lr: 0.1\n  beta1: 0.5\ntrain:\n  steps: 7\n");
  write_file(dir / "b.yaml", "optim:\n  lr: 0.2\n");
  const RunConfig cfg = load_run_config({(dir / "a.yaml").string(), (dir / "b.yaml").string()},
                                        {"optim.beta1=0.25", "model.vision.layers=3"});
  EXPECT_DOUBLE_EQ(cfg.optim.lr, 0.2);      // b.yaml over a.yaml
  EXPECT_DOUBLE_EQ(cfg.optim.beta1, 0.25);  // --set over both
  EXPECT_EQ(cfg.train.steps, 7);            // untouched by b.yaml
  EXPECT_EQ(cfg.model.vision.layers, 3);
}

TEST(ConfigTest, RelativePathsResolveAgainstTheNamingFile) {
  TempDir dir;
  write_file(dir / "sub" / "run.yaml",
             "data:\n  tokenizer:\n    path: spm/coca.model\n  sources:\n"
             "    - {type: webdataset, path: 'shards/{0..3}.tar'}\n"
             "train:\n  run_dir: /abs/run\n  resume: auto\n");
  const RunConfig cfg = load_run_config({(dir / "sub" / "run.yaml").string()},
                                        {"train.init_from=rel/ckpt"});
  EXPECT_EQ(cfg.data.tokenizer.path, (dir / "sub" / "spm" / "coca.model").string());
  ASSERT_EQ(cfg.data.sources.size(), 1u);
  EXPECT_EQ(cfg.data.sources[0].path, (dir / "sub" / "shards" / "{0..3}.tar").string());
  EXPECT_EQ(cfg.train.run_dir, "/abs/run");
  EXPECT_EQ(cfg.train.resume, "auto");            // keyword, not a path
  EXPECT_EQ(cfg.train.init_from, "rel/ckpt");     // --set: relative to the working dir
}

TEST(ConfigTest, IncludesAndPresetsApplyBeforeTheFile) {
  TempDir dir;
  write_file(dir / "base.yaml", "train:\n  steps: 11\n  batch_size: 8\n");
  write_file(dir / "run.yaml", "include: [base.yaml, 'preset:coca_tiny']\ntrain:\n  steps: 12\n");
  const RunConfig cfg = load_run_config({(dir / "run.yaml").string()}, {});
  EXPECT_EQ(cfg.train.steps, 12);
  EXPECT_EQ(cfg.train.batch_size, 8);
  EXPECT_EQ(cfg.model.name, "coca_tiny");
  EXPECT_EQ(cfg.model.vision.image_size, 32);
}

TEST(ConfigTest, UnknownKeyNamesFileLinePathAndSuggestion) {
  TempDir dir;
  const auto file = (dir / "x.yaml").string();
  write_file(file, "optim:\n  lr: 0.1\n  weight_decai: 0.2\nmodel:\n  vision:\n    patch: 4\n");
  const auto lines = error_lines({file}, {});
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0], file + ":3: unknown key 'optim.weight_decai' (did you mean 'optim.weight_decay'?)");
  EXPECT_EQ(lines[1], file + ":6: unknown key 'model.vision.patch' (did you mean 'model.vision.patch_size'?)");
}

TEST(ConfigTest, WrongTypeIsReported) {
  TempDir dir;
  const auto file = (dir / "x.yaml").string();
  write_file(file, "optim:\n  lr: fast\ntrain:\n  steps: [1, 2]\n  seed: -3\n");
  const auto lines = error_lines({file}, {});
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0], file + ":2: 'optim.lr' expects a number, got \"fast\"");
  EXPECT_EQ(lines[1], file + ":4: 'train.steps' expects an integer, got a list");
  EXPECT_EQ(lines[2], file + ":5: 'train.seed' expects a non-negative integer, got \"-3\"");
}

TEST(ConfigTest, TheThreeClassicMistakesAreReportedTogether) {
  TempDir dir;
  const auto file = (dir / "x.yaml").string();
  write_file(file, "optim:\n  lrr: 0.1\n  weight_decay: lots\ntrain:\n  batch_size: -4\n");
  const auto lines = error_lines({file}, {});
  ASSERT_EQ(lines.size(), 3u) << ::testing::PrintToString(lines);
  EXPECT_EQ(lines[0], file + ":2: unknown key 'optim.lrr' (did you mean 'optim.lr'?)");
  EXPECT_EQ(lines[1], file + ":3: 'optim.weight_decay' expects a number, got \"lots\"");
  EXPECT_EQ(lines[2], file + ":5: 'train.batch_size' must be > 0, got -4");
}

TEST(ConfigTest, OutOfRangeValuesAndCrossFieldConstraints) {
  TempDir dir;
  const auto file = (dir / "x.yaml").string();
  write_file(file, "train:\n  batch_size: -4\nmodel:\n  vision:\n    image_size: 225\n"
                   "    patch_size: 16\n  layout: paper\n  pooler: {mode: casade}\n");
  const auto lines = error_lines({file}, {"optim.beta2=1.5"});
  ASSERT_EQ(lines.size(), 4u) << ::testing::PrintToString(lines);
  EXPECT_EQ(lines[0], file + ":2: 'train.batch_size' must be > 0, got -4");
  EXPECT_EQ(lines[1], file + ":5: model.vision.image_size (225) must be divisible by "
                             "model.vision.patch_size (16)");
  EXPECT_EQ(lines[2], file + ":8: 'model.pooler.mode' must be one of cascade, parallel, single, "
                             "got \"casade\" (did you mean 'cascade'?)");
  EXPECT_EQ(lines[3], "--set optim.beta2=1.5: 'optim.beta2' must be in [0, 1), got 1.5");
}

TEST(ConfigTest, SetErrorsNameTheOverride) {
  const auto lines = error_lines({}, {"optim.nope=1", "train.steps=ten", "novalue"});
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0], "--set optim.nope=1: unknown key 'optim.nope' (did you mean 'optim.name'?)");
  EXPECT_EQ(lines[1], "--set train.steps=ten: 'train.steps' expects an integer, got \"ten\"");
  EXPECT_EQ(lines[2], "--set novalue: expected key.path=value");
}

TEST(ConfigTest, MissingFilesAreErrors) {
  const auto lines = error_lines({"/nonexistent/run.yaml"}, {});
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0], "/nonexistent/run.yaml: cannot open config file");
  TempDir dir;
  write_file(dir / "run.yaml", "include: missing.yaml\n");
  const auto inc = error_lines({(dir / "run.yaml").string()}, {});
  ASSERT_EQ(inc.size(), 1u);
  EXPECT_NE(inc[0].find("cannot open included config file"), std::string::npos) << inc[0];
}

TEST(ConfigTest, YamlSyntaxErrorHasALine) {
  TempDir dir;
  const auto file = (dir / "x.yaml").string();
  write_file(file, "optim:\n  lr: [1, 2\n");
  const auto lines = error_lines({file}, {});
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0].rfind(file + ":", 0), 0u) << lines[0];
  EXPECT_NE(lines[0].find("YAML syntax error"), std::string::npos);
}

TEST(ConfigTest, ListsReplaceAndIndexedSetPatches) {
  TempDir dir;
  write_file(dir / "a.yaml",
             "data:\n  sources:\n    - {name: a, type: synthetic, fraction: 0.5}\n"
             "    - {name: b, type: synthetic, text: label, fraction: 0.5}\n");
  const RunConfig cfg = load_run_config({(dir / "a.yaml").string()},
                                        {"data.sources.1.samples=100", "data.sources.2.name=c"});
  ASSERT_EQ(cfg.data.sources.size(), 3u);
  EXPECT_EQ(cfg.data.sources[1].text, "label");
  EXPECT_EQ(cfg.data.sources[1].samples, 100);
  EXPECT_EQ(cfg.data.sources[2].name, "c");
  const auto lines = error_lines({(dir / "a.yaml").string()}, {"data.sources.5.name=x"});
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0], "--set data.sources.5.name=x: 'data.sources.5': the list has 2 element(s)");
}

TEST(ConfigTest, PrintThenParseGivesTheSameConfig) {
  TempDir dir;
  write_file(dir / "a.yaml",
             "include: ['preset:coca_tiny']\n"
             "data:\n  sources:\n    - {name: caps, type: webdataset, path: '/d/{0..1}.tar', "
             "separator: ',', fraction: 0.5}\n"
             "    - {name: labs, type: synthetic, text: label, fraction: 0.5, seed: 7}\n"
             "  train_transform: {mean: [0.5, 0.25, 0.125], hflip: true}\n"
             "optim: {lr: 3.0e-4, eps1: 1.0e-30}\ntrain: {seed: 18446744073709551615, run_dir: ''}\n"
             "model: {init_logit_scale: 0.1}\n");
  const RunConfig first = load_run_config({(dir / "a.yaml").string()}, {"optim.beta1=0.1"});
  const std::string text = to_yaml(first);
  write_file(dir / "dump.yaml", text);
  const RunConfig second = load_run_config({(dir / "dump.yaml").string()}, {});
  EXPECT_EQ(to_yaml(second), text);
  EXPECT_DOUBLE_EQ(second.optim.beta1, 0.1);
  EXPECT_DOUBLE_EQ(second.optim.lr, 3e-4);
  EXPECT_DOUBLE_EQ(second.optim.eps1, 1e-30);
  EXPECT_DOUBLE_EQ(second.model.init_logit_scale, 0.1);
  EXPECT_EQ(second.train.seed, 18446744073709551615ull);
  ASSERT_EQ(second.data.sources.size(), 2u);
  EXPECT_EQ(second.data.sources[0].separator, ",");
  EXPECT_EQ(second.data.sources[1].seed, 7u);
  EXPECT_EQ(second.data.train_transform.mean, (std::vector<double>{0.5, 0.25, 0.125}));
  EXPECT_TRUE(second.data.train_transform.hflip);
  EXPECT_EQ(second.model.vision.image_size, 32);
}

TEST(ConfigTest, EveryPresetIsValidAndRoundTrips) {
  for (const auto& name : preset_names()) {
    SCOPED_TRACE(name);
    RunConfig cfg;
    ASSERT_NO_THROW(apply_yaml(cfg, preset_yaml(name), "preset:" + name, ""));
    EXPECT_EQ(cfg.model.name, name);
    EXPECT_TRUE(check(cfg).empty()) << ::testing::PrintToString(check(cfg));
    EXPECT_EQ(to_yaml(model_from_yaml(to_yaml(cfg.model), "dump")), to_yaml(cfg.model));
  }
  EXPECT_THROW(preset_yaml("coca_huge"), ConfigError);
}

TEST(ConfigTest, CommandLineReportsErrorsWithExitCodeTwo) {
  TempDir dir;
  const auto file = (dir / "bad.yaml").string();
  write_file(file, "optim:\n  peak_lrr: 1\ntrain:\n  steps: many\n");
  const auto r = coca::testing::run_coca("train --config '" + file + "' --print-config");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find(file + ":2: unknown key 'optim.peak_lrr'"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(file + ":4: 'train.steps' expects an integer, got \"many\""),
            std::string::npos) << r.err;
  const auto range = coca::testing::run_coca("train --set train.batch_size=-4 --print-config");
  EXPECT_EQ(range.exit_code, 2);
  EXPECT_NE(range.err.find("'train.batch_size' must be > 0, got -4"), std::string::npos) << range.err;
  const auto usage = coca::testing::run_coca("train --no-such-flag");
  EXPECT_EQ(usage.exit_code, 2);
}

TEST(ConfigTest, CommandLinePrintsResolvedConfig) {
  const auto r = coca::testing::run_coca("train --set train.steps=5 --print-config");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  TempDir dir;
  write_file(dir / "p.yaml", r.out);
  const RunConfig cfg = load_run_config({(dir / "p.yaml").string()}, {});
  EXPECT_EQ(cfg.train.steps, 5);
}

}  // namespace
}  // namespace coca::config

namespace coca::config {
namespace {

TEST(ConfigTest, FlatYamlRoundTripsArbitraryStrings) {
  const std::vector<std::pair<std::string, std::string>> entries = {
      {"step", "120"}, {"cursor", "v1 rank=0 s0=epoch:1,shard:2"}, {"empty", ""},
      {"quote", "a \"b\": c\n# not a comment"}};
  EXPECT_EQ(parse_flat_yaml(flat_yaml(entries), "state.yaml"), entries);
  EXPECT_THROW(parse_flat_yaml("- a\n- b\n", "state.yaml"), ConfigError);
}

}  // namespace
}  // namespace coca::config

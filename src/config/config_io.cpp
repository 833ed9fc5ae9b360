// The only translation unit that includes yaml-cpp. Every config struct is described
// once, by a `visit(V&, Struct&)` function listing its keys in declaration order with
// their constraints; the reader, the writer and the checker are visitors over it.

#include "coca/config/config_io.h"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <optional>
#include <sstream>

#include "coca/common/error.h"
#include "config/detail/presets.h"

namespace coca::config {
namespace {

namespace fs = std::filesystem;

// ---------------------------------------------------------------------------
// Constraints attached to fields; checked after all files and overrides merged.

struct Range {
  double lo = -std::numeric_limits<double>::infinity();
  double hi = std::numeric_limits<double>::infinity();
  bool lo_open = false;
  bool hi_open = false;
};
Range positive() { return {0.0, std::numeric_limits<double>::infinity(), true, false}; }
Range non_negative() { return {0.0, std::numeric_limits<double>::infinity(), false, false}; }
Range at_least(double lo) { return {lo, std::numeric_limits<double>::infinity(), false, false}; }
Range closed(double lo, double hi) { return {lo, hi, false, false}; }
Range half_open(double lo, double hi) { return {lo, hi, false, true}; }  // [lo, hi)
Range open_closed(double lo, double hi) { return {lo, hi, true, false}; }  // (lo, hi]
Range any() { return {}; }

std::string describe(const Range& r) {
  const bool has_lo = std::isfinite(r.lo);
  const bool has_hi = std::isfinite(r.hi);
  if (has_lo && has_hi) {
    return fmt::format("in {}{}, {}{}", r.lo_open ? "(" : "[", r.lo, r.hi, r.hi_open ? ")" : "]");
  }
  if (has_lo) return fmt::format("{} {}", r.lo_open ? ">" : ">=", r.lo);
  if (has_hi) return fmt::format("{} {}", r.hi_open ? "<" : "<=", r.hi);
  return "any number";
}

bool contains(const Range& r, double x) {
  if (std::isnan(x)) return false;
  if (r.lo_open ? !(x > r.lo) : !(x >= r.lo)) return false;
  if (r.hi_open ? !(x < r.hi) : !(x <= r.hi)) return false;
  return true;
}

using Choices = std::vector<std::string>;

// ---------------------------------------------------------------------------
// The schema: one visit() per struct, keys in declaration order.

template <class V>
void visit(V& v, model::VisionConfig& c) {
  v.field("image_size", c.image_size, positive());
  v.field("patch_size", c.patch_size, positive());
  v.field("width", c.width, positive());
  v.field("layers", c.layers, positive());
  v.field("heads", c.heads, positive());
  v.field("mlp_dim", c.mlp_dim, positive());
  v.field("patch_bias", c.patch_bias);
  v.choice("stem", c.stem, {"patch", "conv"});
  v.field("class_token", c.class_token);
  v.field("checkpoint_activations", c.checkpoint_activations);
}

template <class V>
void visit(V& v, model::TextConfig& c) {
  v.field("vocab_size", c.vocab_size, at_least(2));
  v.field("context_length", c.context_length, at_least(2));
  v.field("width", c.width, positive());
  v.field("layers", c.layers, positive());
  v.field("heads", c.heads, positive());
  v.field("mlp_dim", c.mlp_dim, positive());
  v.field("pad_id", c.pad_id, non_negative());
  v.field("legacy_cls_mask", c.legacy_cls_mask);
  v.field("checkpoint_activations", c.checkpoint_activations);
}

template <class V>
void visit(V& v, model::MultimodalConfig& c) {
  v.field("layers", c.layers, positive());
  v.field("heads", c.heads, positive());
  v.field("mlp_dim", c.mlp_dim, positive());
  v.field("tie_embeddings", c.tie_embeddings);
  v.field("checkpoint_activations", c.checkpoint_activations);
}

template <class V>
void visit(V& v, model::PoolerConfig& c) {
  v.choice("mode", c.mode, {"cascade", "parallel", "single"});
  v.field("queries", c.queries, positive());
  v.field("heads", c.heads, positive());
}

template <class V>
void visit(V& v, model::CoCaConfig& c) {
  v.field("name", c.name);
  v.choice("layout", c.layout, {"paper", "open_clip"});
  v.field("embed_dim", c.embed_dim, positive());
  v.field("init_logit_scale", c.init_logit_scale, any());
  v.section("vision", c.vision);
  v.section("text", c.text);
  v.section("multimodal", c.multimodal);
  v.section("pooler", c.pooler);
}

template <class V>
void visit(V& v, data::SourceConfig& c) {
  v.field("name", c.name);
  v.choice("type", c.type,
           {"", "webdataset", "manifest", "folder", "coco", "karpathy", "idx", "synthetic"});
  v.path("path", c.path);
  v.path("labels_path", c.labels_path);
  v.path("class_names", c.class_names);
  v.path("image_root", c.image_root);
  v.choice("text", c.text, {"caption", "label"});
  v.field("fraction", c.fraction, positive());
  v.field("split", c.split);
  v.field("caption_key", c.caption_key);
  v.field("label_key", c.label_key);
  v.field("separator", c.separator);
  v.field("filepath_column", c.filepath_column);
  v.field("title_column", c.title_column);
  v.field("label_column", c.label_column);
  v.field("samples", c.samples, non_negative());
  v.field("seed", c.seed);
  v.field("image_size", c.image_size, positive());
}

template <class V>
void visit(V& v, data::TransformConfig& c) {
  v.field("image_size", c.image_size, non_negative());
  v.field("scale_min", c.scale_min, open_closed(0, 1));
  v.field("scale_max", c.scale_max, open_closed(0, 1));
  v.field("ratio_min", c.ratio_min, positive());
  v.field("ratio_max", c.ratio_max, positive());
  v.field("hflip", c.hflip);
  v.field("mean", c.mean);
  v.field("std", c.std);
  v.field("reduced_decode", c.reduced_decode);
}

template <class V>
void visit(V& v, data::TokenizerConfig& c) {
  v.choice("type", c.type, {"sentencepiece", "clip_bpe"});
  v.path("path", c.path);
  v.field("context_length", c.context_length, non_negative());
  v.field("add_bos", c.add_bos);
  v.field("add_eos", c.add_eos);
}

template <class V>
void visit(V& v, data::LabelTextConfig& c) {
  v.path("templates", c.templates);
  v.field("separator", c.separator);
  v.field("shuffle", c.shuffle);
}

template <class V>
void visit(V& v, data::DataConfig& c) {
  v.list("sources", c.sources);
  v.section("train_transform", c.train_transform);
  v.section("eval_transform", c.eval_transform);
  v.section("tokenizer", c.tokenizer);
  v.section("label_text", c.label_text);
  v.field("workers", c.workers, non_negative());
  v.field("prefetch", c.prefetch, at_least(1));
  v.field("report_bad_every", c.report_bad_every, at_least(1));
  v.field("seed", c.seed);
}

template <class V>
void visit(V& v, optim::OptimConfig& c) {
  v.choice("name", c.name, {"adafactor", "adamw"});
  v.field("lr", c.lr, non_negative());
  v.field("beta1", c.beta1, half_open(0, 1));
  v.field("beta2", c.beta2, half_open(0, 1));
  v.choice("beta2_schedule", c.beta2_schedule, {"constant", "pow"});
  v.field("decay_rate", c.decay_rate, any());
  v.field("eps1", c.eps1, non_negative());
  v.field("eps2", c.eps2, non_negative());
  v.field("clip_threshold", c.clip_threshold, non_negative());
  v.field("weight_decay", c.weight_decay, non_negative());
  v.field("min_dim_size_to_factor", c.min_dim_size_to_factor, non_negative());
  v.field("relative_step", c.relative_step);
  v.field("adam_eps", c.adam_eps, positive());
  v.field("decay_norms_and_biases", c.decay_norms_and_biases);
  v.field("encoder_lr_scale", c.encoder_lr_scale, non_negative());
  v.field("logit_scale_lr_scale", c.logit_scale_lr_scale, non_negative());
  v.field("grad_clip_norm", c.grad_clip_norm, non_negative());
}

template <class V>
void visit(V& v, optim::ScheduleConfig& c) {
  v.choice("name", c.name, {"linear", "cosine", "constant"});
  v.field("warmup_fraction", c.warmup_fraction, closed(0, 1));
  v.field("warmup_steps", c.warmup_steps, non_negative());
  v.field("final_lr_fraction", c.final_lr_fraction, closed(0, 1));
}

template <class V>
void visit(V& v, train::TrainConfig& c) {
  v.choice("task", c.task, {"pretrain", "classify", "caption"});
  v.field("steps", c.steps, positive());
  v.field("batch_size", c.batch_size, positive());
  v.field("micro_batch_size", c.micro_batch_size, non_negative());
  v.field("lambda_con", c.lambda_con, non_negative());
  v.field("lambda_cap", c.lambda_cap, non_negative());
  v.choice("contrastive_reduction", c.contrastive_reduction, {"mean", "sum"});
  v.choice("clamp_logit_scale", c.clamp_logit_scale, {"auto", "on", "off"});
  v.field("label_smoothing", c.label_smoothing, half_open(0, 1));
  v.choice("precision", c.precision, {"fp32", "bf16"});
  v.choice("device", c.device, {"auto", "cpu", "cuda"});
  v.field("max_bad_steps", c.max_bad_steps, at_least(1));
  v.field("seed", c.seed);
  v.path("run_dir", c.run_dir);
  v.resume_path("resume", c.resume);
  v.path("init_from", c.init_from);
  v.field("eval_every", c.eval_every, non_negative());
  v.choice("classify_mode", c.classify_mode, {"frozen", "full"});
  v.field("ema_decay", c.ema_decay, half_open(0, 1));
}

template <class V>
void visit(V& v, dist::DistConfig& c) {
  v.choice("backend", c.backend, {"auto", "gloo", "nccl"});
  v.field("master_addr", c.master_addr);
  v.field("master_port", c.master_port, closed(0, 65535));
  v.field("timeout_s", c.timeout_s, positive());
  v.field("bucket_mb", c.bucket_mb, positive());
  v.field("zero_stage", c.zero_stage, closed(0, 1));
  v.field("check_params", c.check_params);
}

template <class V>
void visit(V& v, eval::GenerateConfig& c) {
  v.field("beams", c.beams, at_least(1));
  v.field("max_len", c.max_len, at_least(1));
  v.field("min_len", c.min_len, non_negative());
  v.field("length_penalty", c.length_penalty, any());
  v.field("top_k", c.top_k, non_negative());
  v.field("top_p", c.top_p, open_closed(0, 1));
  v.field("temperature", c.temperature, positive());
  v.field("repetition_penalty", c.repetition_penalty, positive());
  v.field("kv_cache", c.kv_cache);
}

template <class V>
void visit(V& v, eval::EvalConfig& c) {
  v.section("zero_shot", c.zero_shot);
  v.path("templates", c.templates);
  v.section("retrieval", c.retrieval);
  v.section("captioning", c.captioning);
  v.section("classification", c.classification);
  v.field("collapse_warn_fraction", c.collapse_warn_fraction, closed(0, 1));
  v.field("batch_size", c.batch_size, positive());
  v.field("max_samples", c.max_samples, non_negative());
  v.section("generate", c.generate);
}

template <class V>
void visit(V& v, train::CheckpointConfig& c) {
  v.field("every", c.every, non_negative());
  v.field("keep", c.keep, at_least(1));
  v.path("dir", c.dir);
}

template <class V>
void visit(V& v, train::LogConfig& c) {
  v.choice("level", c.level, {"trace", "debug", "info", "warn", "error", "off"});
  v.field("every", c.every, at_least(1));
}

template <class V>
void visit(V& v, train::RuntimeConfig& c) {
  v.field("threads", c.threads, non_negative());
  v.field("batch_shards", c.batch_shards, non_negative());
}

template <class V>
void visit(V& v, RunConfig& c) {
  v.section("model", c.model);
  v.section("data", c.data);
  v.section("optim", c.optim);
  v.section("schedule", c.schedule);
  v.section("train", c.train);
  v.section("dist", c.dist);
  v.section("eval", c.eval);
  v.section("checkpoint", c.checkpoint);
  v.section("log", c.log);
  v.section("runtime", c.runtime);
}

// ---------------------------------------------------------------------------
// Helpers

std::string join_path(const std::string& prefix, const std::string& key) {
  return prefix.empty() ? key : prefix + "." + key;
}

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t sub = prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, sub});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

/// The known key a misspelled `key` most likely meant: one that starts with it or that
/// it starts with, else the nearest by edit distance when that is close enough.
std::optional<std::string> closest(const std::string& key, const std::vector<std::string>& known) {
  for (const auto& k : known) {
    if (!key.empty() && (k.rfind(key, 0) == 0 || key.rfind(k, 0) == 0)) return k;
  }
  std::optional<std::string> best;
  size_t best_d = std::numeric_limits<size_t>::max();
  for (const auto& k : known) {
    const size_t d = edit_distance(key, k);
    if (d < best_d) {
      best_d = d;
      best = k;
    }
  }
  if (best && best_d <= std::max<size_t>(2, key.size() / 3)) return best;
  return std::nullopt;
}

std::string scalar_text(const YAML::Node& node) {
  if (node.IsScalar()) return node.Scalar();
  if (node.IsSequence()) return "a list";
  if (node.IsMap()) return "a mapping";
  return "nothing";
}

std::string format_double(double x) { return fmt::format("{}", x); }

/// Where a value came from: a file and line (line 0 = none), or "--set ...".
struct Where {
  std::string origin;
  int line = 0;
  std::string text() const { return line > 0 ? fmt::format("{}:{}", origin, line) : origin; }
};

/// One problem found in the config, reported as "where: message".
struct Problem {
  Where where;
  std::string message;
};

/// Problems in the order they are shown: grouped by source (in the order sources were
/// read), then by line.
class Problems {
 public:
  void add(Where where, std::string message) {
    if (std::find(sources_.begin(), sources_.end(), where.origin) == sources_.end()) {
      sources_.push_back(where.origin);
    }
    items_.push_back({std::move(where), std::move(message)});
  }
  bool empty() const { return items_.empty(); }
  std::vector<std::string> lines() const {
    std::vector<Problem> sorted = items_;
    auto rank = [&](const Problem& p) {
      return std::find(sources_.begin(), sources_.end(), p.where.origin) - sources_.begin();
    };
    std::stable_sort(sorted.begin(), sorted.end(), [&](const Problem& a, const Problem& b) {
      const auto ra = rank(a), rb = rank(b);
      return ra != rb ? ra < rb : a.where.line < b.where.line;
    });
    std::vector<std::string> out;
    for (const auto& p : sorted) out.push_back(p.where.text() + ": " + p.message);
    return out;
  }

 private:
  std::vector<Problem> items_;
  std::vector<std::string> sources_;
};

/// Where each dotted key got its value, for messages about values that are checked
/// after merging.
using Origins = std::map<std::string, Where>;

// ---------------------------------------------------------------------------
// Reader: applies a YAML mapping onto a struct, collecting every problem.

class Reader {
 public:
  Reader(YAML::Node node, std::string prefix, std::string origin, std::string base_dir,
         Problems& errors, Origins& origins)
      : node_(std::move(node)),
        prefix_(std::move(prefix)),
        origin_(std::move(origin)),
        base_dir_(std::move(base_dir)),
        errors_(errors),
        origins_(origins) {}

  template <class T>
  void field(const char* key, T& value, Range = any()) {
    YAML::Node child = take(key);
    if (!child) return;
    const std::string path = join_path(prefix_, key);
    parse(child, path, value);
  }

  void choice(const char* key, std::string& value, const Choices&) { field(key, value); }

  void path(const char* key, std::string& value) {
    YAML::Node child = take(key);
    if (!child) return;
    const std::string p = join_path(prefix_, key);
    if (parse(child, p, value)) value = resolve(value);
  }

  /// `none` and `auto` are keywords; anything else is a path.
  void resume_path(const char* key, std::string& value) {
    YAML::Node child = take(key);
    if (!child) return;
    const std::string p = join_path(prefix_, key);
    if (parse(child, p, value) && value != "none" && value != "auto") value = resolve(value);
  }

  template <class S>
  void section(const char* key, S& value) {
    YAML::Node child = take(key);
    if (!child) return;
    const std::string p = join_path(prefix_, key);
    if (child.IsNull()) return;
    if (!child.IsMap()) {
      error(child, fmt::format("'{}' expects a mapping, got {}", p, quoted(child)));
      return;
    }
    Reader sub(child, p, origin_, base_dir_, errors_, origins_);
    visit(sub, value);
    sub.report_unknown();
  }

  /// A list of sections. A YAML list replaces the whole list; a mapping with integer
  /// keys (what `--set data.sources.0.path=x` makes) patches existing elements.
  template <class S>
  void list(const char* key, std::vector<S>& value) {
    YAML::Node child = take(key);
    if (!child) return;
    const std::string p = join_path(prefix_, key);
    if (child.IsNull()) {
      value.clear();
      return;
    }
    if (child.IsSequence()) {
      value.assign(child.size(), S{});
      for (size_t i = 0; i < child.size(); ++i) {
        read_element(child[i], fmt::format("{}.{}", p, i), value[i]);
      }
      return;
    }
    if (child.IsMap()) {
      for (const auto& kv : child) {
        const std::string index_text = kv.first.Scalar();
        size_t index = 0;
        try {
          size_t used = 0;
          index = std::stoul(index_text, &used);
          if (used != index_text.size()) throw std::invalid_argument(index_text);
        } catch (const std::exception&) {
          error(kv.first, fmt::format("'{}' is a list; expected an element index, got '{}'", p,
                                      index_text));
          continue;
        }
        if (index > value.size()) {
          error(kv.first, fmt::format("'{}.{}': the list has {} element(s)", p, index, value.size()));
          continue;
        }
        if (index == value.size()) value.emplace_back();
        read_element(kv.second, fmt::format("{}.{}", p, index), value[index]);
      }
      return;
    }
    error(child, fmt::format("'{}' expects a list, got {}", p, quoted(child)));
  }

  /// A key handled elsewhere (the top-level `include`).
  void allow(const char* key) { known_.emplace_back(key); }

  void report_unknown() {
    if (!node_.IsMap()) return;
    for (const auto& kv : node_) {
      const std::string key = kv.first.Scalar();
      if (std::find(known_.begin(), known_.end(), key) != known_.end()) continue;
      const std::string p = join_path(prefix_, key);
      std::string msg = fmt::format("unknown key '{}'", p);
      if (auto guess = closest(key, known_)) {
        msg += fmt::format(" (did you mean '{}'?)", join_path(prefix_, *guess));
      }
      error(kv.first, msg);
    }
  }

 private:
  template <class S>
  void read_element(const YAML::Node& node, const std::string& p, S& value) {
    if (!node.IsMap()) {
      error(node, fmt::format("'{}' expects a mapping, got {}", p, quoted(node)));
      return;
    }
    Reader sub(node, p, origin_, base_dir_, errors_, origins_);
    visit(sub, value);
    sub.report_unknown();
  }

  YAML::Node take(const char* key) {
    known_.emplace_back(key);
    if (!node_.IsMap()) return YAML::Node();
    YAML::Node child = node_[key];
    if (child) origins_[join_path(prefix_, key)] = location(child);
    return child;
  }

  std::string resolve(const std::string& value) const {
    if (value.empty() || base_dir_.empty()) return value;
    const fs::path p(value);
    if (p.is_absolute()) return value;
    return (fs::path(base_dir_) / p).lexically_normal().string();
  }

  static std::string quoted(const YAML::Node& node) {
    return node.IsScalar() ? "\"" + node.Scalar() + "\"" : scalar_text(node);
  }

  Where location(const YAML::Node& node) const {
    const YAML::Mark mark = node.Mark();
    if (mark.line >= 0 && origin_.rfind("--set", 0) != 0) return {origin_, mark.line + 1};
    return {origin_, 0};
  }

  void error(const YAML::Node& node, const std::string& message) {
    errors_.add(location(node), message);
  }

  bool expect_scalar(const YAML::Node& node, const std::string& p, const char* what) {
    if (node.IsScalar()) return true;
    error(node, fmt::format("'{}' expects {}, got {}", p, what, quoted(node)));
    return false;
  }

  bool parse(const YAML::Node& node, const std::string& p, int64_t& out) {
    if (!expect_scalar(node, p, "an integer")) return false;
    try {
      out = node.as<int64_t>();
      return true;
    } catch (const YAML::Exception&) {
      error(node, fmt::format("'{}' expects an integer, got {}", p, quoted(node)));
      return false;
    }
  }
  bool parse(const YAML::Node& node, const std::string& p, uint64_t& out) {
    if (!expect_scalar(node, p, "a non-negative integer")) return false;
    try {
      if (!node.Scalar().empty() && node.Scalar()[0] == '-') throw YAML::Exception({}, "");
      out = node.as<uint64_t>();
      return true;
    } catch (const YAML::Exception&) {
      error(node, fmt::format("'{}' expects a non-negative integer, got {}", p, quoted(node)));
      return false;
    }
  }
  bool parse(const YAML::Node& node, const std::string& p, double& out) {
    if (!expect_scalar(node, p, "a number")) return false;
    try {
      out = node.as<double>();
      return true;
    } catch (const YAML::Exception&) {
      error(node, fmt::format("'{}' expects a number, got {}", p, quoted(node)));
      return false;
    }
  }
  bool parse(const YAML::Node& node, const std::string& p, bool& out) {
    if (!expect_scalar(node, p, "true or false")) return false;
    try {
      out = node.as<bool>();
      return true;
    } catch (const YAML::Exception&) {
      error(node, fmt::format("'{}' expects true or false, got {}", p, quoted(node)));
      return false;
    }
  }
  bool parse(const YAML::Node& node, const std::string& p, std::string& out) {
    if (node.IsNull()) {
      out.clear();
      return true;
    }
    if (!expect_scalar(node, p, "a string")) return false;
    out = node.Scalar();
    return true;
  }
  bool parse(const YAML::Node& node, const std::string& p, std::vector<double>& out) {
    if (!node.IsSequence()) {
      error(node, fmt::format("'{}' expects a list of numbers, got {}", p, quoted(node)));
      return false;
    }
    std::vector<double> values(node.size());
    bool ok = true;
    for (size_t i = 0; i < node.size(); ++i) {
      ok = parse(node[i], fmt::format("{}.{}", p, i), values[i]) && ok;
    }
    if (ok) out = std::move(values);
    return ok;
  }

  YAML::Node node_;
  std::string prefix_;
  std::string origin_;
  std::string base_dir_;
  Problems& errors_;
  Origins& origins_;
  std::vector<std::string> known_;
};

// ---------------------------------------------------------------------------
// Writer: emits the config as YAML, every key in declaration order.

class Writer {
 public:
  explicit Writer(YAML::Emitter& out) : out_(out) {}

  void field(const char* key, const int64_t& v, Range = any()) { out_ << YAML::Key << key << YAML::Value << v; }
  void field(const char* key, const uint64_t& v, Range = any()) { out_ << YAML::Key << key << YAML::Value << v; }
  void field(const char* key, const bool& v, Range = any()) {
    out_ << YAML::Key << key << YAML::Value << (v ? "true" : "false");
  }
  void field(const char* key, const double& v, Range = any()) {
    out_ << YAML::Key << key << YAML::Value << format_double(v);
  }
  void field(const char* key, const std::string& v, Range = any()) {
    out_ << YAML::Key << key << YAML::Value << YAML::DoubleQuoted << v;
  }
  void field(const char* key, const std::vector<double>& v, Range = any()) {
    out_ << YAML::Key << key << YAML::Value << YAML::Flow << YAML::BeginSeq;
    for (double x : v) out_ << format_double(x);
    out_ << YAML::EndSeq;
  }
  void choice(const char* key, const std::string& v, const Choices&) { plain(key, v); }
  void path(const char* key, const std::string& v) { field(key, v); }
  void resume_path(const char* key, const std::string& v) { field(key, v); }

  template <class S>
  void section(const char* key, S& value) {
    out_ << YAML::Key << key << YAML::Value << YAML::BeginMap;
    visit(*this, value);
    out_ << YAML::EndMap;
  }

  template <class S>
  void list(const char* key, std::vector<S>& value) {
    out_ << YAML::Key << key << YAML::Value << YAML::BeginSeq;
    for (auto& element : value) {
      out_ << YAML::BeginMap;
      visit(*this, element);
      out_ << YAML::EndMap;
    }
    out_ << YAML::EndSeq;
  }

 private:
  void plain(const char* key, const std::string& v) {
    if (v.empty()) {
      out_ << YAML::Key << key << YAML::Value << YAML::DoubleQuoted << v;
    } else {
      out_ << YAML::Key << key << YAML::Value << v;
    }
  }
  YAML::Emitter& out_;
};

// ---------------------------------------------------------------------------
// Checker: every field's range or choice, on the merged config.

class Checker {
 public:
  Checker(const Origins& origins, Problems& errors)
      : origins_(origins), errors_(errors) {}

  void field(const char* key, const int64_t& v, Range r = any()) {
    check_range(key, static_cast<double>(v), fmt::format("{}", v), r);
  }
  void field(const char* key, const double& v, Range r = any()) {
    check_range(key, v, format_double(v), r);
  }
  template <class T>
  void field(const char*, const T&, Range = any()) {}

  void choice(const char* key, const std::string& v, const Choices& choices) {
    if (std::find(choices.begin(), choices.end(), v) != choices.end()) return;
    std::vector<std::string> shown;
    for (const auto& c : choices) {
      if (!c.empty()) shown.push_back(c);
    }
    std::string msg = fmt::format("'{}' must be one of {}, got \"{}\"", join_path(prefix_, key),
                                  fmt::join(shown, ", "), v);
    if (auto guess = closest(v, shown)) msg += fmt::format(" (did you mean '{}'?)", *guess);
    report(key, msg);
  }
  void path(const char*, const std::string&) {}
  void resume_path(const char*, const std::string&) {}

  template <class S>
  void section(const char* key, S& value) {
    const std::string saved = prefix_;
    prefix_ = join_path(prefix_, key);
    visit(*this, value);
    prefix_ = saved;
  }

  template <class S>
  void list(const char* key, std::vector<S>& value) {
    const std::string saved = prefix_;
    for (size_t i = 0; i < value.size(); ++i) {
      prefix_ = fmt::format("{}.{}", join_path(saved, key), i);
      visit(*this, value[i]);
    }
    prefix_ = saved;
  }

 private:
  void check_range(const char* key, double x, const std::string& shown, const Range& r) {
    if (contains(r, x)) return;
    report(key, fmt::format("'{}' must be {}, got {}", join_path(prefix_, key), describe(r), shown));
  }

  void report(const char* key, const std::string& message) {
    const auto it = origins_.find(join_path(prefix_, key));
    errors_.add(it == origins_.end() ? Where{"(default)", 0} : it->second, message);
  }

  const Origins& origins_;
  Problems& errors_;
  std::string prefix_;
};

// ---------------------------------------------------------------------------
// Cross-field constraints.

void check_cross_fields(const RunConfig& c, const Origins& origins, Problems& problems) {
  auto where = [&](const std::string& key) {
    const auto it = origins.find(key);
    return it == origins.end() ? Where{"(default)", 0} : it->second;
  };
  struct Sink {
    Problems& problems;
    void push_back(std::pair<Where, std::string> p) { problems.add(p.first, p.second); }
  } errors{problems};
  const auto& m = c.model;
  if (m.vision.image_size > 0 && m.vision.patch_size > 0 &&
      m.vision.image_size % m.vision.patch_size != 0) {
    errors.push_back({where("model.vision.image_size"),
                      fmt::format("model.vision.image_size ({}) must be divisible by "
                                  "model.vision.patch_size ({})",
                                  m.vision.image_size, m.vision.patch_size)});
  }
  auto divisible = [&](const std::string& width_key, int64_t width, const std::string& heads_key,
                       int64_t heads) {
    if (width > 0 && heads > 0 && width % heads != 0) {
      errors.push_back({where(heads_key), fmt::format("{} ({}) must be divisible by {} ({})",
                                                      width_key, width, heads_key, heads)});
    }
  };
  divisible("model.vision.width", m.vision.width, "model.vision.heads", m.vision.heads);
  divisible("model.text.width", m.text.width, "model.text.heads", m.text.heads);
  divisible("model.text.width", m.text.width, "model.multimodal.heads", m.multimodal.heads);
  if (m.vision.stem == "conv") {
    const int64_t p = m.vision.patch_size;
    if (p < 2 || (p & (p - 1)) != 0) {
      errors.push_back({where("model.vision.stem"),
                        fmt::format("model.vision.stem 'conv' needs a power-of-two "
                                    "model.vision.patch_size (one stride-2 layer per halving), "
                                    "got {}", p)});
    } else if (m.vision.width % (p / 2) != 0) {
      errors.push_back({where("model.vision.stem"),
                        fmt::format("model.vision.stem 'conv' needs model.vision.width ({}) "
                                    "divisible by model.vision.patch_size / 2 ({}): its first "
                                    "layer has width / (patch / 2) channels", m.vision.width, p / 2)});
    }
  }
  if (m.text.pad_id >= m.text.vocab_size) {
    errors.push_back({where("model.text.pad_id"),
                      fmt::format("model.text.pad_id ({}) must be < model.text.vocab_size ({})",
                                  m.text.pad_id, m.text.vocab_size)});
  }
  if (m.layout == "open_clip" && m.pooler.mode != "single") {
    errors.push_back({where("model.pooler.mode"),
                      fmt::format("model.pooler.mode must be 'single' for model.layout "
                                  "'open_clip', got '{}'", m.pooler.mode)});
  }
  if (m.layout == "open_clip" && m.embed_dim != m.text.width) {
    errors.push_back({where("model.embed_dim"),
                      fmt::format("model.embed_dim ({}) must equal model.text.width ({}) for "
                                  "model.layout 'open_clip' (its pooler width is embed_dim and "
                                  "its decoder reads those tokens)", m.embed_dim, m.text.width)});
  }
  if (m.layout == "open_clip" && m.multimodal.tie_embeddings) {
    errors.push_back({where("model.multimodal.tie_embeddings"),
                      "model.multimodal.tie_embeddings must be false for model.layout "
                      "'open_clip' (it has an untied text_projection)"});
  }
  const auto& t = c.train;
  if (t.micro_batch_size > 0 && t.batch_size % t.micro_batch_size != 0) {
    errors.push_back({where("train.micro_batch_size"),
                      fmt::format("train.batch_size ({}) must be a multiple of "
                                  "train.micro_batch_size ({})", t.batch_size, t.micro_batch_size)});
  }
  if (c.data.train_transform.scale_min > c.data.train_transform.scale_max) {
    errors.push_back({where("data.train_transform.scale_min"),
                      fmt::format("data.train_transform.scale_min ({}) must be <= scale_max ({})",
                                  c.data.train_transform.scale_min,
                                  c.data.train_transform.scale_max)});
  }
  for (const char* section : {"train_transform", "eval_transform"}) {
    const auto& tr = std::string(section) == "train_transform" ? c.data.train_transform
                                                              : c.data.eval_transform;
    for (const char* key : {"mean", "std"}) {
      const auto& v = std::string(key) == "mean" ? tr.mean : tr.std;
      const std::string p = fmt::format("data.{}.{}", section, key);
      if (v.size() != 3) {
        errors.push_back({where(p), fmt::format("'{}' expects 3 numbers (R, G, B), got {}", p,
                                                v.size())});
      } else if (std::string(key) == "std" &&
                 std::any_of(v.begin(), v.end(), [](double x) { return !(x > 0); })) {
        errors.push_back({where(p), fmt::format("'{}' values must be > 0", p)});
      }
    }
  }
}

// ---------------------------------------------------------------------------
// Loading

struct Loader {
  RunConfig cfg;
  Origins origins;
  Problems errors;
  int depth = 0;

  void apply_node(const YAML::Node& root, const std::string& origin, const std::string& base_dir) {
    if (!root || root.IsNull()) return;
    if (!root.IsMap()) {
      errors.add({origin, 0}, "expected a mapping of sections at the top level");
      return;
    }
    // Not cloned: a clone loses the line marks that messages need.
    const YAML::Node body = root;
    if (const YAML::Node inc = body["include"]) {
      std::vector<std::string> names;
      if (inc.IsScalar()) {
        names.push_back(inc.Scalar());
      } else if (inc.IsSequence()) {
        for (const auto& n : inc) names.push_back(n.Scalar());
      } else {
        errors.add({origin, inc.Mark().line + 1}, "'include' expects a file or a list of files");
      }
      for (const auto& name : names) include(name, origin, base_dir);
    }
    Reader reader(body, "", origin, base_dir, errors, origins);
    reader.allow("include");
    visit(reader, cfg);
    reader.report_unknown();
  }

  void include(const std::string& name, const std::string& origin, const std::string& base_dir) {
    if (++depth > 16) {
      errors.add({origin, 0}, "includes nested deeper than 16 (a cycle?)");
      --depth;
      return;
    }
    if (name.rfind("preset:", 0) == 0) {
      const std::string preset = name.substr(7);
      const std::string* text = detail::find_preset(preset);
      if (!text) {
        errors.add({origin, 0}, fmt::format("unknown preset '{}' (known: {})", preset,
                                            fmt::join(preset_names(), ", ")));
      } else {
        apply_text(*text, "preset:" + preset, "");
      }
    } else {
      fs::path p(name);
      if (!p.is_absolute() && !base_dir.empty()) p = fs::path(base_dir) / p;
      apply_path(p.lexically_normal().string(), origin);
    }
    --depth;
  }

  void apply_text(const std::string& text, const std::string& origin, const std::string& base_dir) {
    YAML::Node root;
    try {
      root = YAML::Load(text);
    } catch (const YAML::ParserException& e) {
      errors.add({origin, e.mark.line + 1}, "YAML syntax error: " + e.msg);
      return;
    }
    apply_node(root, origin, base_dir);
  }

  void apply_path(const std::string& path, const std::string& named_by) {
    std::ifstream in(path);
    if (!in) {
      if (named_by.empty()) {
        errors.add({path, 0}, "cannot open config file");
      } else {
        errors.add({named_by, 0}, fmt::format("cannot open included config file '{}'", path));
      }
      return;
    }
    std::stringstream ss;
    ss << in.rdbuf();
    // Paths are made absolute, so a resolved config written into a run or checkpoint
    // folder still points at the same files when it is read from there.
    const std::string base = fs::absolute(path).lexically_normal().parent_path().string();
    apply_text(ss.str(), path, base);
  }

  void apply_assignment(const std::string& assignment) {
    const std::string origin = "--set " + assignment;
    const auto eq = assignment.find('=');
    if (eq == std::string::npos || eq == 0) {
      errors.add({origin, 0}, "expected key.path=value");
      return;
    }
    const std::string key = assignment.substr(0, eq);
    const std::string value = assignment.substr(eq + 1);
    YAML::Node leaf;
    try {
      leaf = YAML::Load(value);
    } catch (const YAML::ParserException& e) {
      errors.add({origin, 0}, "cannot parse value: " + e.msg);
      return;
    }
    if (!leaf) leaf = YAML::Node(YAML::NodeType::Null);
    // Build {a: {b: {c: value}}} from "a.b.c".
    std::vector<std::string> parts;
    std::stringstream ks(key);
    for (std::string part; std::getline(ks, part, '.');) parts.push_back(part);
    if (std::any_of(parts.begin(), parts.end(), [](const std::string& s) { return s.empty(); })) {
      errors.add({origin, 0}, "empty component in key '" + key + "'");
      return;
    }
    YAML::Node node = leaf;
    for (auto it = parts.rbegin(); it != parts.rend(); ++it) {
      YAML::Node parent(YAML::NodeType::Map);
      parent[*it] = node;
      node = parent;
    }
    apply_node(node, origin, "");
  }
};

void throw_if(const Problems& errors) {
  if (!errors.empty()) throw ConfigError(errors.lines());
}

}  // namespace

RunConfig load_run_config(const std::vector<std::string>& files,
                          const std::vector<std::string>& overrides) {
  Loader loader;
  for (const auto& f : files) loader.apply_path(f, "");
  for (const auto& o : overrides) loader.apply_assignment(o);
  // Values that failed to parse kept their previous value, so checking ranges now adds
  // no false reports and lets one run show every problem.
  Checker checker(loader.origins, loader.errors);
  visit(checker, loader.cfg);
  check_cross_fields(loader.cfg, loader.origins, loader.errors);
  throw_if(loader.errors);
  return loader.cfg;
}

void apply_yaml(RunConfig& cfg, const std::string& yaml_text, const std::string& origin,
                const std::string& base_dir) {
  Loader loader;
  loader.cfg = cfg;
  loader.apply_text(yaml_text, origin, base_dir);
  throw_if(loader.errors);
  cfg = loader.cfg;
}

void apply_file(RunConfig& cfg, const std::string& path) {
  Loader loader;
  loader.cfg = cfg;
  loader.apply_path(path, "");
  throw_if(loader.errors);
  cfg = loader.cfg;
}

void apply_override(RunConfig& cfg, const std::string& assignment) {
  Loader loader;
  loader.cfg = cfg;
  loader.apply_assignment(assignment);
  throw_if(loader.errors);
  cfg = loader.cfg;
}

std::vector<std::string> check(const RunConfig& cfg) {
  Problems errors;
  const Origins none;
  RunConfig copy = cfg;
  Checker checker(none, errors);
  visit(checker, copy);
  check_cross_fields(cfg, none, errors);
  return errors.lines();
}

void validate(const RunConfig& cfg) {
  auto errors = check(cfg);
  if (!errors.empty()) throw ConfigError(std::move(errors));
}

std::string to_yaml(const RunConfig& cfg) {
  YAML::Emitter out;
  RunConfig copy = cfg;
  Writer writer(out);
  out << YAML::BeginMap;
  visit(writer, copy);
  out << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

std::string to_yaml(const model::CoCaConfig& cfg) {
  YAML::Emitter out;
  model::CoCaConfig copy = cfg;
  Writer writer(out);
  out << YAML::BeginMap;
  writer.section("model", copy);
  out << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

model::CoCaConfig model_from_yaml(const std::string& yaml_text, const std::string& origin) {
  RunConfig cfg;
  apply_yaml(cfg, yaml_text, origin, "");
  return cfg.model;
}

void write_yaml_file(const RunConfig& cfg, const std::string& path) {
  const fs::path target(path);
  if (target.has_parent_path()) fs::create_directories(target.parent_path());
  const fs::path tmp = target.string() + ".tmp";
  {
    std::ofstream out(tmp);
    if (!out) throw IoError(tmp.string(), "cannot write the resolved config");
    out << to_yaml(cfg);
    if (!out.flush()) throw IoError(tmp.string(), "write failed");
  }
  fs::rename(tmp, target);
}

std::string flat_yaml(const std::vector<std::pair<std::string, std::string>>& entries) {
  YAML::Emitter out;
  out << YAML::BeginMap;
  for (const auto& [key, value] : entries) {
    out << YAML::Key << key << YAML::Value << YAML::DoubleQuoted << value;
  }
  out << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

std::vector<std::pair<std::string, std::string>> parse_flat_yaml(const std::string& text,
                                                                 const std::string& origin) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::ParserException& e) {
    throw ConfigError(fmt::format("{}:{}: YAML syntax error: {}", origin, e.mark.line + 1, e.msg));
  }
  if (!root.IsMap()) throw ConfigError(origin + ": expected a mapping of keys to values");
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& kv : root) {
    if (!kv.second.IsScalar() && !kv.second.IsNull()) {
      throw ConfigError(fmt::format("{}:{}: '{}' expects a scalar", origin,
                                    kv.second.Mark().line + 1, kv.first.Scalar()));
    }
    out.emplace_back(kv.first.Scalar(), kv.second.IsNull() ? "" : kv.second.Scalar());
  }
  return out;
}

std::vector<std::string> preset_names() { return detail::preset_names(); }

std::string preset_yaml(const std::string& name) {
  const std::string* text = detail::find_preset(name);
  if (!text) {
    throw ConfigError(fmt::format("unknown model preset '{}' (known: {})", name,
                                  fmt::join(preset_names(), ", ")));
  }
  return *text;
}

}  // namespace coca::config

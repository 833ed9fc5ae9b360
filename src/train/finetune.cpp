#include "coca/train/finetune.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/core/Generator.h>
#include <torch/torch.h>

#include <cmath>
#include <fstream>

#include "coca/common/error.h"
#include "coca/common/logging.h"
#include "coca/common/runtime.h"
#include "coca/config/config_io.h"
#include "coca/data/batch.h"
#include "coca/data/class_names.h"
#include "coca/data/image_transform.h"
#include "coca/data/loader.h"
#include "coca/data/sources.h"
#include "coca/dist/context.h"
#include "coca/optim/grad_clip.h"
#include "coca/optim/lr_schedule.h"
#include "coca/optim/param_groups.h"
#include "coca/train/checkpoint.h"
#include "coca/train/data_pipeline.h"
#include "coca/train/metrics.h"
#include "coca/train/signals.h"
#include "coca/train/trainer.h"

namespace coca::train {
namespace {

namespace fs = std::filesystem;

constexpr const char* kModelFile = "model.pt";
constexpr const char* kHeadFile = "head.pt";
constexpr const char* kEmaFile = "ema.pt";
constexpr const char* kOptimFile = "optim.pt";
constexpr const char* kStateFile = "train_state.yaml";
constexpr const char* kConfigFile = "config.yaml";
constexpr const char* kRngFile = "rng.pt";

/// The trainable CoCa parameters of full finetuning: the ViT up to its output tokens
/// (forward_features), not the CoCa poolers and contrastive projection it does not use.
bool is_encoder_trunk(const std::string& name) {
  if (name.rfind("visual.", 0) != 0) return false;
  for (const char* unused : {"visual.attn_pool", "visual.ln_post", "visual.proj"}) {
    if (name.rfind(unused, 0) == 0) return false;
  }
  return true;
}

/// Holds the trained modules under the names param groups expect ("visual." = encoder).
struct TrainedModules : torch::nn::Module {
  TrainedModules(model::VisionTransformer visual, model::ClassifierHead head) {
    register_module("visual", std::move(visual));
    register_module("head", std::move(head));
  }
};

model::ClassifierHead make_head(const config::RunConfig& cfg, int64_t num_classes) {
  model::ClassifierHeadOptions o;
  o.width = cfg.model.vision.width;
  o.heads = cfg.model.vision.heads;
  o.num_classes = num_classes;
  return model::ClassifierHead(o);
}

void save_head(model::ClassifierHead& head, const fs::path& file) {
  torch::serialize::OutputArchive archive;
  head->save(archive);
  archive.write("num_classes", torch::tensor({head->options.num_classes}));
  archive.save_to(file.string());
}

int64_t head_classes(const fs::path& file) {
  torch::serialize::InputArchive archive;
  archive.load_from(file.string());
  torch::Tensor n;
  if (!archive.try_read("num_classes", n)) throw IoError(file.string(), "no num_classes entry");
  return n.item<int64_t>();
}

void load_head(model::ClassifierHead& head, const fs::path& file) {
  try {
    torch::serialize::InputArchive archive;
    archive.load_from(file.string());
    head->load(archive);
  } catch (const c10::Error& e) {
    throw IoError(file.string(),
                  std::string("cannot load the classifier head: ") + e.what_without_backtrace());
  }
}

/// Calls fn(images [n, 3, S, S], labels) for consecutive batches of the labelled source.
template <typename Fn>
void for_each_labelled_batch(const data::Source& source, const data::EvalTransform& transform,
                             int64_t num_classes, int64_t batch_size, int64_t max_samples,
                             Fn fn) {
  std::vector<torch::Tensor> images;
  std::vector<int64_t> labels;
  int64_t count = 0;
  auto flush = [&] {
    if (images.empty()) return;
    fn(torch::stack(images), torch::tensor(labels));
    images.clear();
    labels.clear();
  };
  const auto ignore = [](data::SkipReason, const std::string&, const std::string&,
                         const std::string&) {};
  for (const auto& shard : source.shards()) {
    auto reader = source.open(shard.index, ignore);
    data::RawSample s;
    while (reader->next(s)) {
      if (max_samples > 0 && count >= max_samples) break;
      if (s.label_ids.empty() || s.label_ids[0] < 0 || s.label_ids[0] >= num_classes) continue;
      images.push_back(transform(s));
      labels.push_back(s.label_ids[0]);
      s = data::RawSample();
      ++count;
      if (static_cast<int64_t>(images.size()) >= batch_size) flush();
    }
    if (max_samples > 0 && count >= max_samples) break;
  }
  flush();
}

}  // namespace

torch::Tensor classification_loss(const torch::Tensor& logits, const torch::Tensor& labels,
                                  double label_smoothing) {
  TORCH_CHECK(logits.dim() == 2 && labels.dim() == 1 && labels.size(0) == logits.size(0),
              "classification_loss: expected logits [B, C] and labels [B], got ", logits.sizes(),
              " and ", labels.sizes());
  return torch::nn::functional::cross_entropy(
      logits.to(torch::kFloat), labels,
      torch::nn::functional::CrossEntropyFuncOptions().label_smoothing(label_smoothing));
}

Ema::Ema(std::vector<std::pair<std::string, torch::Tensor>> tensors, double decay)
    : decay_(decay) {
  TORCH_CHECK(decay >= 0 && decay < 1, "Ema: decay must be in [0, 1), got ", decay);
  torch::NoGradGuard no_grad;
  for (auto& [name, t] : tensors) {
    names_.push_back(name);
    live_.push_back(t);
    shadow_.push_back(t.detach().clone());
  }
}

void Ema::update() {
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < live_.size(); ++i) {
    shadow_[i].mul_(decay_).add_(live_[i].detach(), 1.0 - decay_);
  }
}

void Ema::swap() {
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < live_.size(); ++i) {
    auto tmp = live_[i].detach().clone();
    live_[i].copy_(shadow_[i]);
    shadow_[i].copy_(tmp);
  }
}

void Ema::save(torch::serialize::OutputArchive& archive) const {
  for (size_t i = 0; i < names_.size(); ++i) archive.write(names_[i], shadow_[i]);
}

void Ema::load(torch::serialize::InputArchive& archive) {
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < names_.size(); ++i) {
    torch::Tensor t;
    if (!archive.try_read(names_[i], t)) {
      throw IoError(names_[i], "missing from the EMA archive");
    }
    shadow_[i].copy_(t);
  }
}

ClassifyAccuracy classify_accuracy(const torch::Tensor& logits, const torch::Tensor& labels) {
  TORCH_CHECK(logits.dim() == 2 && labels.dim() == 1 && labels.size(0) == logits.size(0),
              "classify_accuracy: expected logits [N, C] and labels [N], got ", logits.sizes(),
              " and ", labels.sizes());
  ClassifyAccuracy out;
  out.images = logits.size(0);
  if (out.images == 0) return out;
  const int64_t k = std::min<int64_t>(5, logits.size(1));
  const auto top = std::get<1>(logits.topk(k, 1));
  const auto hit = top.eq(labels.to(top.device()).unsqueeze(1));
  out.top1 = hit.select(1, 0).to(torch::kDouble).mean().item<double>();
  out.top5 = hit.any(1).to(torch::kDouble).mean().item<double>();
  return out;
}

std::optional<std::string> zero_shot_collapse_warning(double before, double now,
                                                      double fraction) {
  if (fraction <= 0 || !(before > 0) || now >= fraction * before) return std::nullopt;
  return fmt::format(
      "zero-shot top-1 collapsed during caption finetuning: {:.4f} now vs {:.4f} before "
      "(below eval.collapse_warn_fraction = {} of it); keep a small contrastive weight, e.g. "
      "--set train.lambda_con=0.1",
      now, before, fraction);
}

ClassifyAccuracy evaluate_classifier(model::CoCa& model, model::ClassifierHead& head,
                                     const config::RunConfig& cfg) {
  const auto& ev = cfg.eval;
  if (ev.classification.type.empty()) {
    throw ConfigError("eval.classification: no validation set configured (set its type/path)");
  }
  const auto source = data::make_source(ev.classification, "eval.classification");
  const bool model_training = model->is_training();
  const bool head_training = head->is_training();
  model->eval();
  head->eval();
  torch::NoGradGuard no_grad;
  const auto& t = cfg.data.eval_transform;
  const data::EvalTransform transform(t, t.image_size > 0 ? t.image_size
                                                          : cfg.model.vision.image_size);
  const auto device = head->head->weight.device();
  std::vector<torch::Tensor> logits;
  std::vector<torch::Tensor> labels;
  for_each_labelled_batch(*source, transform, head->options.num_classes, ev.batch_size,
                          ev.max_samples, [&](const torch::Tensor& images, const torch::Tensor& y) {
                            const auto tokens = model->visual->forward_features(images.to(device));
                            logits.push_back(head->forward(tokens).to(torch::kCPU));
                            labels.push_back(y);
                          });
  model->train(model_training);
  head->train(head_training);
  if (logits.empty()) {
    throw ConfigError("eval.classification: no labelled samples with ids below " +
                      std::to_string(head->options.num_classes) + " in '" +
                      ev.classification.path + "'");
  }
  return classify_accuracy(torch::cat(logits), torch::cat(labels));
}

struct ClassifyTrainer::Impl {
  config::RunConfig cfg;
  torch::Device device{torch::kCPU};
  std::vector<std::shared_ptr<const data::Source>> sources;
  model::CoCa model{nullptr};
  model::ClassifierHead head{nullptr};
  bool frozen = true;
  std::vector<torch::Tensor> trained;  // parameters the optimizer updates
  std::unique_ptr<torch::optim::Optimizer> optimizer;
  std::unique_ptr<optim::WarmupDecayLR> scheduler;
  std::unique_ptr<Ema> ema;
  std::unique_ptr<Checkpointer> checkpointer;
  std::unique_ptr<MetricsLogger> metrics;
  std::unique_ptr<data::Loader> loader;
  TrainState state;

  explicit Impl(config::RunConfig c) : cfg(std::move(c)) {
    config::validate(cfg);
    if (cfg.train.task != "classify") {
      throw ConfigError("train.task: ClassifyTrainer needs 'classify', got '" + cfg.train.task +
                        "'");
    }
    if (cfg.train.precision != "fp32" || cfg.train.micro_batch_size > 0) {
      throw ConfigError("train.precision / train.micro_batch_size: task classify trains in fp32 "
                        "without micro-batches (set precision: fp32, micro_batch_size: 0)");
    }
    const auto ctx = dist::init_distributed(cfg.dist);
    if (ctx.distributed()) {
      throw ConfigError("train.task: classify runs in a single process; this run has " +
                        std::to_string(ctx.world_size) + " ranks");
    }
    if (cfg.train.device == "cuda" || (cfg.train.device == "auto" && torch::cuda::is_available())) {
      if (!torch::cuda::is_available()) {
        throw ConfigError("train.device is 'cuda' but this LibTorch build sees no CUDA device");
      }
      device = torch::Device(torch::kCUDA, 0);
    }
    torch::manual_seed(cfg.train.seed);
    state.seed = cfg.train.seed;

    sources = make_training_sources(cfg);
    int64_t num_classes = 0;
    for (size_t i = 0; i < sources.size(); ++i) {
      const auto n = static_cast<int64_t>(data::source_class_names(*sources[i]).size());
      if (n == 0 || (num_classes > 0 && n != num_classes)) {
        throw ConfigError(fmt::format(
            "data.sources.{}: task classify needs labelled sources with the same classes; "
            "this one has {} class names{}",
            i, n, num_classes > 0 ? fmt::format(" (data.sources.0 has {})", num_classes) : ""));
      }
      num_classes = n;
    }

    model = model::CoCa(cfg.model);
    if (cfg.train.init_from.empty()) {
      log::warn("[classify] train.init_from is empty: the encoder is randomly initialised");
    } else {
      load_model_weights(model, resolve_checkpoint(cfg.train.init_from));
      log::info("[classify] initialised the CoCa weights from {}", cfg.train.init_from);
    }
    model->to(device);
    head = make_head(cfg, num_classes);
    head->to(device);

    frozen = cfg.train.classify_mode == "frozen";
    std::vector<std::pair<std::string, torch::Tensor>> named;
    for (auto& p : model->named_parameters()) {
      const bool train = !frozen && is_encoder_trunk(p.key());
      p.value().set_requires_grad(train);
      if (train) named.emplace_back(p.key(), p.value());
    }
    for (auto& p : head->named_parameters()) named.emplace_back("head." + p.key(), p.value());
    for (const auto& [n, p] : named) trained.push_back(p);

    TrainedModules modules(model->visual, head);
    const auto specs = optim::make_param_group_specs(modules, cfg.optim);
    optimizer = optim::make_optimizer(cfg.optim, optim::make_param_groups(specs, cfg.optim));
    scheduler = std::make_unique<optim::WarmupDecayLR>(*optimizer, optim::base_lrs(specs),
                                                       cfg.train.steps, cfg.schedule);
    if (cfg.train.ema_decay > 0) ema = std::make_unique<Ema>(named, cfg.train.ema_decay);

    const fs::path run_dir = cfg.train.run_dir;
    checkpointer = std::make_unique<Checkpointer>(
        cfg.checkpoint.dir.empty() ? run_dir / "checkpoints" : fs::path(cfg.checkpoint.dir),
        cfg.checkpoint.keep);
    metrics = std::make_unique<MetricsLogger>(run_dir / "metrics.jsonl", true);
  }

  void start_loader() {
    data::DataCursor cursor;
    if (!state.data_cursor.empty()) cursor = data::DataCursor::parse(state.data_cursor);
    const auto options =
        data::make_loader_options(cfg.data, cfg.train.batch_size, 0, 1, runtime::available_cores());
    data::LoaderHooks hooks;
    const int64_t size = cfg.data.train_transform.image_size > 0
                             ? cfg.data.train_transform.image_size
                             : cfg.model.vision.image_size;
    const data::TrainTransform transform(cfg.data.train_transform, size);
    hooks.image_transform = [transform](const data::RawSample& s, uint64_t seed) {
      return transform(s, seed);
    };
    // No text is trained: the label's name stands in (samples without a label are skipped
    // as empty_text) and every text becomes two placeholder ids.
    hooks.make_text = [](const data::RawSample& s, const data::SourceConfig&, uint64_t,
                         int64_t) -> std::string {
      if (s.label_ids.empty() || s.labels.empty() || s.labels[0].empty()) return "";
      return s.labels[0];
    };
    hooks.tokenize = [](const std::vector<std::string>& texts) {
      return torch::zeros({static_cast<int64_t>(texts.size()), 2}, torch::kInt64);
    };
    loader = std::make_unique<data::Loader>(sources, options, hooks, cursor);
  }

  double step(const data::Batch& batch) {
    head->train();
    if (frozen) model->eval();
    else model->train();
    optim::zero_grad_to_none(*optimizer);
    std::vector<int64_t> ids;
    for (int64_t i = 0; i < batch.size(); ++i) {
      if (batch.label_ids[i].empty()) {
        const auto src = static_cast<size_t>(batch.source_index[i]);
        throw DataError(cfg.data.sources[src].path, batch.keys[i],
                        "task classify: the sample has no label");
      }
      ids.push_back(batch.label_ids[i][0]);
    }
    const auto labels = torch::tensor(ids).to(device);
    const auto images = batch.images.to(device);
    torch::Tensor tokens;
    if (frozen) {
      torch::NoGradGuard no_grad;
      tokens = model->visual->forward_features(images);
    } else {
      tokens = model->visual->forward_features(images);
    }
    const auto loss = classification_loss(head->forward(tokens), labels, cfg.train.label_smoothing);
    const double value = loss.item<double>();
    if (!std::isfinite(value)) {
      throw std::runtime_error(fmt::format("classify: non-finite loss {} at step {}", value,
                                           state.step + 1));
    }
    loss.backward();
    optim::clip_grad_norm(trained, cfg.optim.grad_clip_norm);
    optimizer->step();
    scheduler->step();
    if (ema) ema->update();
    return value;
  }

  ClassifyAccuracy evaluate() {
    if (ema) ema->swap();
    try {
      const auto r = evaluate_classifier(model, head, cfg);
      if (ema) ema->swap();
      return r;
    } catch (...) {
      if (ema) ema->swap();
      throw;
    }
  }

  fs::path save() {
    return checkpointer->save(state.step, [&](const fs::path& tmp) {
      torch::save(model, (tmp / kModelFile).string());
      save_head(head, tmp / kHeadFile);
      {
        torch::serialize::OutputArchive archive;
        optimizer->save(archive);
        archive.save_to((tmp / kOptimFile).string());
      }
      if (ema) {
        torch::serialize::OutputArchive archive;
        ema->save(archive);
        archive.save_to((tmp / kEmaFile).string());
      }
      {
        torch::serialize::OutputArchive archive;
        archive.write("cpu_generator", at::detail::getDefaultCPUGenerator().get_state());
        archive.save_to((tmp / kRngFile).string());
      }
      state.save(tmp / kStateFile);
      std::ofstream(tmp / kConfigFile) << config::to_yaml(cfg);
    });
  }

  void load(const fs::path& dir) {
    check_checkpoint_format(dir);
    TrainState loaded = TrainState::load(dir / kStateFile);
    load_model_weights(model, dir);
    if (!fs::exists(dir / kHeadFile)) {
      throw IoError((dir / kHeadFile).string(), "missing: not a classify-task checkpoint");
    }
    load_head(head, dir / kHeadFile);
    {
      torch::serialize::InputArchive archive;
      archive.load_from((dir / kOptimFile).string());
      optimizer->load(archive);
    }
    if (ema) {
      if (!fs::exists(dir / kEmaFile)) {
        throw IoError((dir / kEmaFile).string(), "missing, but train.ema_decay > 0");
      }
      torch::serialize::InputArchive archive;
      archive.load_from((dir / kEmaFile).string());
      ema->load(archive);
    }
    {
      torch::serialize::InputArchive archive;
      archive.load_from((dir / kRngFile).string());
      torch::Tensor rng;
      archive.read("cpu_generator", rng);
      auto generator = at::detail::getDefaultCPUGenerator();
      generator.set_state(rng);
    }
    state = loaded;
    scheduler->set_step(state.step);
  }

  void log_eval() {
    const auto r = evaluate();
    log::info("[eval] step {} | classify_top1 {:.4f} | classify_top5 {:.4f} | images {}{}",
              state.step, r.top1, r.top5, r.images, ema ? " (EMA weights)" : "");
    metrics->write(state.step, "eval",
                   {{"classify_top1", r.top1},
                    {"classify_top5", r.top5},
                    {"classify_images", static_cast<double>(r.images)}});
  }
};

ClassifyTrainer::ClassifyTrainer(config::RunConfig cfg)
    : impl_(std::make_unique<Impl>(std::move(cfg))) {}
ClassifyTrainer::~ClassifyTrainer() = default;

double ClassifyTrainer::train_step(const data::Batch& batch) { return impl_->step(batch); }
ClassifyAccuracy ClassifyTrainer::evaluate() { return impl_->evaluate(); }
fs::path ClassifyTrainer::save_checkpoint() { return impl_->save(); }
void ClassifyTrainer::load_checkpoint(const fs::path& dir) { impl_->load(dir); }
model::CoCa& ClassifyTrainer::model() { return impl_->model; }
model::ClassifierHead& ClassifyTrainer::head() { return impl_->head; }
torch::optim::Optimizer& ClassifyTrainer::optimizer() { return *impl_->optimizer; }
const TrainState& ClassifyTrainer::state() const { return impl_->state; }
const Ema* ClassifyTrainer::ema() const { return impl_->ema.get(); }

int ClassifyTrainer::fit(int64_t stop_after) {
  auto& m = *impl_;
  const auto& cfg = m.cfg;
  install_stop_handlers();
  const fs::path run_dir = cfg.train.run_dir;
  config::write_yaml_file(cfg, (run_dir / "config.yaml").string());
  std::optional<fs::path> resume_from;
  if (cfg.train.resume == "auto") {
    if (auto latest = m.checkpointer->latest()) resume_from = latest->dir;
  } else if (cfg.train.resume != "none") {
    resume_from = resolve_checkpoint(cfg.train.resume);
  }
  if (resume_from) {
    m.load(*resume_from);
    m.metrics->truncate_after(m.state.step);
    log::info("[classify] resumed from {} at step {}", resume_from->string(), m.state.step);
  }
  m.start_loader();
  int64_t trained = 0;
  for (const auto& p : m.trained) trained += p.numel();
  log::info("[classify] {} classes; mode {}; {:.3f}M trained parameters; EMA {}; device {}",
            m.head->options.num_classes, cfg.train.classify_mode, trained / 1e6,
            m.ema ? fmt::format("decay {}", cfg.train.ema_decay) : std::string("off"),
            m.device.str());
  const bool eval_on = !cfg.eval.classification.type.empty();
  TimeMeter since_start;
  AverageMeter loss_avg;
  while (m.state.step < cfg.train.steps) {
    if (const int sig = stop_requested()) {
      const auto dir = m.save();
      log::info("[classify] stopped by signal {} at step {}; checkpoint {}", sig, m.state.step,
                dir.string());
      return 128 + sig;
    }
    const data::Batch batch = m.loader->next();
    const double loss = m.step(batch);
    ++m.state.step;
    ++m.state.batches;
    m.state.samples_seen += batch.size();
    m.state.data_cursor = m.loader->cursor().to_string();
    loss_avg.add(loss);
    const bool last = m.state.step == cfg.train.steps;
    if (m.state.step % cfg.log.every == 0 || last) {
      const double lr = m.optimizer->param_groups().front().options().get_lr();
      log::info("[classify] step {}/{} | loss {:.4f} | lr {:.3e}", m.state.step, cfg.train.steps,
                loss_avg.mean(), lr);
      m.metrics->write(m.state.step, "train",
                       {{"loss", loss}, {"loss_avg", loss_avg.mean()}, {"lr", lr}});
      loss_avg.reset();
    }
    if (eval_on && ((cfg.train.eval_every > 0 && m.state.step % cfg.train.eval_every == 0) || last)) {
      m.log_eval();
    }
    const bool pause = stop_after > 0 && m.state.step == stop_after;
    if ((cfg.checkpoint.every > 0 && m.state.step % cfg.checkpoint.every == 0) || last || pause) {
      log::info("[classify] checkpoint {}", m.save().string());
    }
    if (pause && !last) {
      log::info("[classify] stopping after step {} as asked; resume to continue", m.state.step);
      return 0;
    }
  }
  log::info("[classify] done: {} steps in {}; run folder {}", m.state.step,
            format_duration(since_start.seconds()), run_dir.string());
  return 0;
}

ClassifierCheckpoint load_classifier_checkpoint(const fs::path& spec) {
  ClassifierCheckpoint out;
  auto base = load_checkpoint_model(spec);
  out.config = std::move(base.config);
  out.model = base.model;
  out.dir = base.dir;
  if (out.config.train.task != "classify") {
    throw ConfigError(fmt::format("{}: written by a train.task '{}' run, not classify",
                                  out.dir.string(), out.config.train.task));
  }
  const fs::path head_file = out.dir / kHeadFile;
  if (!fs::exists(head_file)) throw IoError(head_file.string(), "missing classifier head");
  out.head = make_head(out.config, head_classes(head_file));
  load_head(out.head, head_file);
  const fs::path ema_file = out.dir / kEmaFile;
  if (fs::exists(ema_file)) {
    // The EMA covers the head and, after full finetuning, the encoder trunk.
    std::vector<std::pair<std::string, torch::Tensor>> named;
    for (auto& p : out.model->named_parameters()) {
      if (out.config.train.classify_mode == "full" && is_encoder_trunk(p.key())) {
        named.emplace_back(p.key(), p.value());
      }
    }
    for (auto& p : out.head->named_parameters()) named.emplace_back("head." + p.key(), p.value());
    Ema ema(named, out.config.train.ema_decay);
    torch::serialize::InputArchive archive;
    archive.load_from(ema_file.string());
    ema.load(archive);
    ema.swap();
  }
  out.model->eval();
  out.head->eval();
  return out;
}

}  // namespace coca::train

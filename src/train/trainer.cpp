#include "coca/train/trainer.h"

#include <ATen/core/Generator.h>
#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <cmath>
#include <fstream>

#include "coca/common/error.h"
#include "coca/common/logging.h"
#include "coca/common/runtime.h"
#include "coca/config/config_io.h"
#include "coca/data/batch.h"
#include "coca/data/image_transform.h"
#include "coca/data/label_text.h"
#include "coca/data/loader.h"
#include "coca/data/sources.h"
#include "coca/data/tokenizer.h"
#include "coca/eval/evaluator.h"
#include "coca/optim/grad_clip.h"
#include "coca/optim/lr_schedule.h"
#include "coca/optim/param_groups.h"
#include "coca/train/checkpoint.h"
#include "coca/train/losses.h"
#include "coca/train/metrics.h"
#include "coca/train/signals.h"

namespace coca::train {
namespace {

namespace fs = std::filesystem;

constexpr const char* kModelFile = "model.pt";
constexpr const char* kOptimFile = "optim.pt";
constexpr const char* kStateFile = "train_state.yaml";
constexpr const char* kConfigFile = "config.yaml";
constexpr const char* kRngFile = "rng.pt";

torch::Device pick_device(const std::string& name) {
  if (name == "cuda" || (name == "auto" && torch::cuda::is_available())) {
    if (!torch::cuda::is_available()) {
      throw ConfigError("train.device is 'cuda' but this LibTorch build sees no CUDA device");
    }
    return torch::Device(torch::kCUDA, 0);
  }
  return torch::Device(torch::kCPU);
}

bool clamp_enabled(const config::RunConfig& cfg) {
  const auto& v = cfg.train.clamp_logit_scale;
  return v == "on" || (v == "auto" && cfg.model.layout == "open_clip");
}

std::vector<torch::Tensor> trainable(const torch::nn::Module& m) {
  std::vector<torch::Tensor> out;
  for (const auto& p : m.parameters()) {
    if (p.requires_grad()) out.push_back(p);
  }
  return out;
}

}  // namespace

struct Trainer::Impl {
  config::RunConfig cfg;
  torch::Device device{torch::kCPU};
  int64_t context_length = 0;
  std::shared_ptr<const data::Tokenizer> tokenizer;
  std::vector<std::string> templates;
  std::vector<std::shared_ptr<const data::Source>> sources;
  model::CoCa model{nullptr};
  std::vector<double> base_lrs;
  std::unique_ptr<torch::optim::Optimizer> optimizer;
  std::unique_ptr<optim::WarmupDecayLR> scheduler;
  CoCaLoss loss;
  std::unique_ptr<Checkpointer> checkpointer;
  std::unique_ptr<MetricsLogger> metrics;
  std::unique_ptr<data::Loader> loader;
  TrainState state;
  int64_t bad_in_a_row = 0;

  explicit Impl(config::RunConfig c) : cfg(std::move(c)) {
    config::validate(cfg);
    device = pick_device(cfg.train.device);
    torch::manual_seed(cfg.train.seed);
    state.seed = cfg.train.seed;

    // Tokenizer: its vocabulary must fit the model's.
    data::TokenizerConfig tok = cfg.data.tokenizer;
    context_length = tok.context_length > 0 ? tok.context_length : cfg.model.text.context_length;
    tokenizer = data::make_tokenizer(tok, "data.tokenizer");
    if (tokenizer->vocab_size() > cfg.model.text.vocab_size) {
      throw ConfigError(fmt::format(
          "data.tokenizer.path: the tokenizer has {} tokens but model.text.vocab_size is {}",
          tokenizer->vocab_size(), cfg.model.text.vocab_size));
    }
    templates = data::make_templates(cfg.data.label_text);

    if (cfg.data.sources.empty()) {
      throw ConfigError("data.sources: no training source is configured");
    }
    for (size_t i = 0; i < cfg.data.sources.size(); ++i) {
      sources.push_back(data::make_source(cfg.data.sources[i], fmt::format("data.sources.{}", i)));
    }

    model = model::CoCa(cfg.model);
    model->to(device);
    if (!cfg.train.init_from.empty()) {
      load_model_weights(model, resolve_checkpoint(cfg.train.init_from));
      log::info("[train] initialised weights from {}", cfg.train.init_from);
    }

    const auto specs = optim::make_param_group_specs(*model, cfg.optim);
    base_lrs = optim::base_lrs(specs);
    optimizer = optim::make_optimizer(cfg.optim, optim::make_param_groups(specs, cfg.optim));
    scheduler = std::make_unique<optim::WarmupDecayLR>(*optimizer, base_lrs, cfg.train.steps,
                                                       cfg.schedule);
    loss = CoCaLoss::from_config(cfg.train, tokenizer->pad_id());

    const fs::path run_dir = cfg.train.run_dir;
    checkpointer = std::make_unique<Checkpointer>(
        cfg.checkpoint.dir.empty() ? run_dir / "checkpoints" : fs::path(cfg.checkpoint.dir),
        cfg.checkpoint.keep);
    metrics = std::make_unique<MetricsLogger>(run_dir / "metrics.jsonl", log::rank() == 0);
  }

  data::LoaderHooks hooks() const {
    data::LoaderHooks h;
    const int64_t size = cfg.data.train_transform.image_size > 0
                             ? cfg.data.train_transform.image_size
                             : cfg.model.vision.image_size;
    const data::TrainTransform transform(cfg.data.train_transform, size);
    h.image_transform = [transform](const data::RawSample& s, uint64_t seed) {
      return transform(s, seed);
    };
    const auto label_cfg = cfg.data.label_text;
    const auto tmpl = templates;
    h.make_text = data::make_text_hook(
        [label_cfg, tmpl](const std::vector<std::string>& names, uint64_t seed, int64_t position) {
          return data::label_text(names, seed, static_cast<uint64_t>(position), label_cfg, tmpl);
        });
    const auto tok = tokenizer;
    const int64_t T = context_length;
    h.tokenize = [tok, T](const std::vector<std::string>& texts) {
      return tok->encode_batch(texts, T);
    };
    return h;
  }

  void start_loader() {
    data::DataCursor cursor;
    if (!state.data_cursor.empty()) cursor = data::DataCursor::parse(state.data_cursor);
    const auto options = data::make_loader_options(cfg.data, cfg.train.batch_size, 0, 1,
                                                   runtime::available_cores());
    loader = std::make_unique<data::Loader>(sources, options, hooks(), cursor);
  }

  StepStats step(const data::Batch& batch) {
    model->train();
    optimizer->zero_grad();
    StepStats stats;
    const int64_t B = batch.size();
    stats.samples = B;
    const int64_t micro = cfg.train.micro_batch_size > 0 ? cfg.train.micro_batch_size : B;
    // The caption loss is a mean over every real target token of the batch, also when
    // it is split into micro-batches; the contrastive loss is averaged over micro-batches
    // (its negatives are those of the micro-batch).
    const auto targets = batch.text.slice(1, 1);
    const int64_t tokens = targets.ne(tokenizer->pad_id()).sum().item<int64_t>();
    stats.caption_tokens = tokens;
    double con_total = 0, cap_total = 0;
    bool finite = true;
    for (int64_t begin = 0; begin < B; begin += micro) {
      const int64_t end = std::min(B, begin + micro);
      const auto images = batch.images.slice(0, begin, end).to(device, /*non_blocking=*/true);
      const auto text = batch.text.slice(0, begin, end).to(device, /*non_blocking=*/true);
      const auto out = model->forward(images, text);
      const auto con = contrastive_loss(out.image_features, out.text_features, out.logit_scale,
                                        loss.reduction);
      const auto cap = caption_loss(out.logits, text, loss.pad_id, loss.label_smoothing);
      const double share = static_cast<double>(end - begin) / B;
      auto con_part = con * (loss.lambda_con * share);
      auto cap_part = tokens > 0 ? cap.sum * (loss.lambda_cap / tokens) : cap.sum * 0.0;
      auto total = con_part + cap_part;
      const double total_value = total.item<double>();
      if (!std::isfinite(total_value)) {
        finite = false;
        break;
      }
      total.backward();
      con_total += con_part.item<double>();
      cap_total += cap_part.item<double>();
    }
    stats.loss_contrastive = con_total;
    stats.loss_caption = cap_total;
    stats.loss = con_total + cap_total;
    stats.lr = optimizer->param_groups().front().options().get_lr();
    if (finite) {
      const auto norm = optim::clip_grad_norm(trainable(*model), cfg.optim.grad_clip_norm);
      stats.grad_norm = norm.total_norm;
      finite = norm.finite;
    }
    if (!finite) {
      optimizer->zero_grad();
      stats.skipped = true;
      stats.logit_scale = model->logit_scale.exp().item<double>();
      return stats;
    }
    optimizer->step();
    if (clamp_enabled(cfg)) clamp_logit_scale_(model->logit_scale);
    scheduler->step();
    stats.logit_scale = model->logit_scale.exp().item<double>();
    return stats;
  }

  fs::path save() {
    const auto dir = checkpointer->save(state.step, [&](const fs::path& tmp) {
      torch::save(model, (tmp / kModelFile).string());
      {
        torch::serialize::OutputArchive archive;
        optimizer->save(archive);
        archive.save_to((tmp / kOptimFile).string());
      }
      {
        torch::serialize::OutputArchive archive;
        archive.write("cpu_generator", at::detail::getDefaultCPUGenerator().get_state());
        archive.save_to((tmp / kRngFile).string());
      }
      state.save(tmp / kStateFile);
      std::ofstream(tmp / kConfigFile) << config::to_yaml(cfg);
    });
    return dir;
  }

  void load(const fs::path& dir) {
    check_checkpoint_format(dir);
    load_model_weights(model, dir);
    {
      torch::serialize::InputArchive archive;
      archive.load_from((dir / kOptimFile).string());
      optimizer->load(archive);
    }
    {
      torch::serialize::InputArchive archive;
      archive.load_from((dir / kRngFile).string());
      torch::Tensor rng;
      archive.read("cpu_generator", rng);
      auto generator = at::detail::getDefaultCPUGenerator();
      generator.set_state(rng);
    }
    state = TrainState::load(dir / kStateFile);
    if (state.world_size != 1) {
      throw IoError(dir.string(), fmt::format("written by a run of {} ranks; this run has 1",
                                              state.world_size));
    }
    scheduler->set_step(state.step);
  }
};

Trainer::Trainer(config::RunConfig cfg) : impl_(std::make_unique<Impl>(std::move(cfg))) {}
Trainer::~Trainer() = default;

StepStats Trainer::train_step(const data::Batch& batch) { return impl_->step(batch); }
fs::path Trainer::save_checkpoint() { return impl_->save(); }
void Trainer::load_checkpoint(const fs::path& dir) { impl_->load(dir); }
model::CoCa& Trainer::model() { return impl_->model; }
const TrainState& Trainer::state() const { return impl_->state; }
const config::RunConfig& Trainer::config() const { return impl_->cfg; }

int Trainer::fit(int64_t stop_after) {
  auto& m = *impl_;
  const auto& cfg = m.cfg;
  install_stop_handlers();
  const fs::path run_dir = cfg.train.run_dir;
  config::write_yaml_file(cfg, (run_dir / "config.yaml").string());

  // Resume.
  std::optional<fs::path> resume_from;
  if (cfg.train.resume == "auto") {
    if (auto latest = m.checkpointer->latest()) resume_from = latest->dir;
  } else if (cfg.train.resume != "none") {
    resume_from = resolve_checkpoint(cfg.train.resume);
  }
  if (resume_from) {
    m.load(*resume_from);
    m.metrics->truncate_after(m.state.step);
    log::info("[train] resumed from {} at step {}", resume_from->string(), m.state.step);
  }
  m.start_loader();

  int64_t params = 0;
  for (const auto& p : m.model->parameters()) params += p.numel();
  log::info("[train] model {} ({} layout): {:.2f}M parameters; device {}; {}", cfg.model.name,
            cfg.model.layout, params / 1e6, m.device.str(), runtime::thread_summary());
  const auto quotas = m.loader->quotas();
  for (size_t i = 0; i < quotas.size(); ++i) {
    log::info("[data] source {} '{}' ({} text): {} of {} samples per batch, {} shards", i,
              cfg.data.sources[i].name, cfg.data.sources[i].text, quotas[i], cfg.train.batch_size,
              m.sources[i]->shards().size());
  }

  TimeMeter since_log;
  TimeMeter since_start;
  const int64_t first_step = m.state.step;
  AverageMeter loss_avg, con_avg, cap_avg;
  int64_t samples_since_log = 0;
  while (m.state.step < cfg.train.steps) {
    if (const int sig = stop_requested()) {
      const auto dir = m.save();
      log::info("[train] stopped by signal {} at step {}; checkpoint {}", sig, m.state.step,
                dir.string());
      return 128 + sig;
    }
    const data::Batch batch = m.loader->next();
    const StepStats s = m.step(batch);
    ++m.state.batches;
    m.state.samples_seen += s.samples;
    m.state.data_cursor = m.loader->cursor().to_string();
    samples_since_log += s.samples;
    if (s.skipped) {
      ++m.state.skipped_steps;
      ++m.bad_in_a_row;
      log::warn("[train] step {}: non-finite loss or gradient (loss {}, grad norm {}); step "
                "skipped ({} in a row, {} in total)",
                m.state.step + 1, s.loss, s.grad_norm, m.bad_in_a_row, m.state.skipped_steps);
      m.metrics->write(m.state.step, "skip", {{"loss", s.loss}, {"grad_norm", s.grad_norm}});
      if (m.bad_in_a_row > cfg.train.max_bad_steps) {
        const auto dir = m.save();
        throw std::runtime_error(fmt::format(
            "train: {} non-finite steps in a row (train.max_bad_steps = {}); the last good "
            "state is saved in {}",
            m.bad_in_a_row, cfg.train.max_bad_steps, dir.string()));
      }
      continue;
    }
    m.bad_in_a_row = 0;
    ++m.state.step;
    loss_avg.add(s.loss);
    con_avg.add(s.loss_contrastive);
    cap_avg.add(s.loss_caption);
    const bool last = m.state.step == cfg.train.steps;
    if (m.state.step % cfg.log.every == 0 || last) {
      const double dt = since_log.seconds();
      const double rate = samples_since_log / std::max(dt, 1e-9);
      const double per_step = since_start.seconds() / (m.state.step - first_step);
      const double eta = per_step * (cfg.train.steps - m.state.step);
      log::info("[train] step {}/{} | loss {:.4f} (con {:.4f}, cap {:.4f}) | lr {:.3e} | "
                "scale {:.2f} | grad {:.3f} | {:.1f} samples/s | ETA {}",
                m.state.step, cfg.train.steps, loss_avg.mean(), con_avg.mean(), cap_avg.mean(),
                s.lr, s.logit_scale, s.grad_norm, rate, format_duration(eta));
      m.metrics->write(m.state.step, "train",
                       {{"loss", s.loss},
                        {"loss_contrastive", s.loss_contrastive},
                        {"loss_caption", s.loss_caption},
                        {"loss_avg", loss_avg.mean()},
                        {"lr", s.lr},
                        {"logit_scale", s.logit_scale},
                        {"grad_norm", s.grad_norm},
                        {"samples_per_s", rate},
                        {"samples_seen", static_cast<double>(m.state.samples_seen)}});
      loss_avg.reset();
      con_avg.reset();
      cap_avg.reset();
      samples_since_log = 0;
      since_log.reset();
    }
    if (eval::eval_configured(cfg.eval) &&
        ((cfg.train.eval_every > 0 && m.state.step % cfg.train.eval_every == 0) || last)) {
      // Evaluation runs on rank 0 only (other ranks go on and wait in their next
      // collective); it restores the model's training mode.
      if (log::rank() == 0) {
        const auto results = eval::evaluate(m.model, *m.tokenizer, cfg);
        std::string line;
        for (const auto& [k, v] : results.metrics) line += fmt::format(" | {} {:.4f}", k, v);
        log::info("[eval] step {}{}", m.state.step, line);
        m.metrics->write(m.state.step, "eval", results.metrics);
      }
    }
    const bool pause = stop_after > 0 && m.state.step == stop_after;
    if ((cfg.checkpoint.every > 0 && m.state.step % cfg.checkpoint.every == 0) || last || pause) {
      const auto dir = m.save();
      log::info("[train] checkpoint {}", dir.string());
    }
    if (pause && !last) {
      log::info("[train] stopping after step {} as asked; resume to continue", m.state.step);
      return 0;
    }
  }
  log::info("[train] done: {} steps in {}; run folder {}", m.state.step,
            format_duration(since_start.seconds()), run_dir.string());
  return 0;
}

CheckpointModel load_checkpoint_model(const fs::path& spec) {
  CheckpointModel out;
  out.dir = resolve_checkpoint(spec);
  out.config = config::load_run_config({(out.dir / kConfigFile).string()}, {});
  out.model = model::CoCa(out.config.model);
  load_model_weights(out.model, out.dir);
  out.model->eval();
  return out;
}

void load_model_weights(model::CoCa& model, const fs::path& checkpoint_dir) {
  check_checkpoint_format(checkpoint_dir);
  const fs::path file = checkpoint_dir / kModelFile;
  try {
    torch::load(model, file.string());
  } catch (const c10::Error& e) {
    throw IoError(file.string(), std::string("cannot load the model weights: ") +
                                     e.what_without_backtrace());
  }
}

}  // namespace coca::train

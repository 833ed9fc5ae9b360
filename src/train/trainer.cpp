#include "coca/train/trainer.h"

#include <ATen/core/Generator.h>
#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <cmath>
#include <exception>
#include <fstream>
#include <set>

#include "coca/common/compat.h"
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
#include "coca/dist/collectives.h"
#include "coca/dist/context.h"
#include "coca/dist/grad_sync.h"
#include "coca/dist/sharded_optimizer.h"
#include "coca/eval/evaluator.h"
#include "coca/optim/grad_clip.h"
#include "coca/optim/lr_schedule.h"
#include "coca/optim/param_groups.h"
#include "coca/train/checkpoint.h"
#include "coca/train/data_pipeline.h"
#include "coca/train/finetune.h"
#include "coca/train/losses.h"
#include "coca/train/metrics.h"
#include "coca/train/parallel_step.h"
#include "coca/train/signals.h"

namespace coca::train {
namespace {

namespace fs = std::filesystem;

constexpr const char* kModelFile = "model.pt";
constexpr const char* kOptimFile = "optim.pt";
constexpr const char* kStateFile = "train_state.yaml";
constexpr const char* kConfigFile = "config.yaml";
constexpr const char* kRngFile = "rng.pt";

/// Optimizer shard file of `rank` under dist.zero_stage 1 (instead of optim.pt).
std::string shard_file(int rank) { return fmt::format("optim_rank{}.pt", rank); }

/// Every rank's `text`, gathered on every rank (index = rank). Collective.
std::vector<std::string> all_gather_strings(const dist::Context& ctx, const std::string& text) {
  if (!ctx.distributed()) return {text};
  auto length = torch::tensor({static_cast<int64_t>(text.size())}, torch::kInt64);
  const auto lengths = dist::all_gather(ctx, length.to(ctx.device)).cpu();
  const int64_t longest = lengths.max().item<int64_t>();
  auto chars = torch::zeros({1, std::max<int64_t>(longest, 1)}, torch::kInt32);
  auto acc = chars.accessor<int32_t, 2>();
  for (size_t i = 0; i < text.size(); ++i) {
    acc[0][static_cast<int64_t>(i)] = static_cast<unsigned char>(text[i]);
  }
  const auto all = dist::all_gather(ctx, chars.to(ctx.device)).cpu();
  auto all_acc = all.accessor<int32_t, 2>();
  std::vector<std::string> out(static_cast<size_t>(ctx.world_size));
  for (int r = 0; r < ctx.world_size; ++r) {
    const int64_t n = lengths[r].item<int64_t>();
    for (int64_t i = 0; i < n; ++i) out[r].push_back(static_cast<char>(all_acc[r][i]));
  }
  return out;
}

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
  dist::Context ctx;
  int64_t local_batch = 0;  // train.batch_size / world_size
  int64_t batch_shards = 1;  // runtime.batch_shards resolved (parallel_step.h)
  torch::Device device{torch::kCPU};
  std::shared_ptr<const data::Tokenizer> tokenizer;
  std::vector<std::shared_ptr<const data::Source>> sources;
  model::CoCa model{nullptr};
  std::vector<double> base_lrs;
  std::unique_ptr<torch::optim::Optimizer> optimizer;  // null under ZeRO-1
  std::unique_ptr<dist::ShardedOptimizer> sharded;     // dist.zero_stage 1
  std::unique_ptr<dist::GradSync> grad_sync;           // null in a single process
  std::unique_ptr<optim::WarmupDecayLR> scheduler;
  CoCaLoss loss;
  std::unique_ptr<Checkpointer> checkpointer;
  std::unique_ptr<MetricsLogger> metrics;
  std::unique_ptr<data::Loader> loader;
  TrainState state;
  int64_t bad_in_a_row = 0;

  /// The optimizer the schedule drives: the whole one, or this rank's ZeRO-1 shard.
  torch::optim::Optimizer& local_optimizer() {
    return sharded ? sharded->local_optimizer() : *optimizer;
  }

  Impl(config::RunConfig c, const dist::Context* given) : cfg(std::move(c)) {
    config::validate(cfg);
    if (cfg.train.task == "classify") {
      throw ConfigError("train.task: classify runs in train::ClassifyTrainer (coca train picks "
                        "it), not in Trainer");
    }
    ctx = given ? *given : dist::init_distributed(cfg.dist);
    if (cfg.train.batch_size % ctx.world_size != 0) {
      throw ConfigError(fmt::format(
          "train.batch_size: {} is not a multiple of the world size {} (each rank trains on "
          "batch_size / world_size samples)",
          cfg.train.batch_size, ctx.world_size));
    }
    local_batch = cfg.train.batch_size / ctx.world_size;
    device = ctx.device.is_cuda() ? ctx.device : pick_device(cfg.train.device);
    const bool whole_batch =
        cfg.train.micro_batch_size == 0 || cfg.train.micro_batch_size >= local_batch;
    if (cfg.runtime.batch_shards > 1 && (ctx.distributed() || !whole_batch)) {
      throw ConfigError(fmt::format(
          "runtime.batch_shards: {} splits one process's batch over its threads; it cannot be "
          "combined with {}", cfg.runtime.batch_shards,
          ctx.distributed() ? "several ranks (each rank is already one share of the batch)"
                            : "train.micro_batch_size"));
    }
    if (cfg.runtime.batch_shards > local_batch) {
      throw ConfigError(fmt::format("runtime.batch_shards: {} is more than the batch ({})",
                                    cfg.runtime.batch_shards, local_batch));
    }
    batch_shards = whole_batch ? resolve_batch_shards(cfg.runtime.batch_shards,
                                                      at::get_num_threads(), local_batch,
                                                      device.is_cuda(), ctx.distributed())
                               : 1;
    torch::manual_seed(cfg.train.seed);
    state.seed = cfg.train.seed;

    // Tokenizer: its vocabulary must fit the model's.
    data::TokenizerConfig tok = cfg.data.tokenizer;
    tokenizer = data::make_tokenizer(tok, "data.tokenizer");
    if (tokenizer->vocab_size() > cfg.model.text.vocab_size) {
      throw ConfigError(fmt::format(
          "data.tokenizer.path: the tokenizer has {} tokens but model.text.vocab_size is {}",
          tokenizer->vocab_size(), cfg.model.text.vocab_size));
    }
    sources = make_training_sources(cfg);

    model = model::CoCa(cfg.model);
    model->to(device);
    if (!cfg.train.init_from.empty()) {
      load_model_weights(model, resolve_checkpoint(cfg.train.init_from));
      log::info("[train] initialised weights from {}", cfg.train.init_from);
    }
    if (ctx.distributed()) {
      dist::broadcast_parameters(*model, ctx);
      if (cfg.dist.check_params) dist::check_identical_parameters(*model, ctx);
      grad_sync = std::make_unique<dist::GradSync>(ctx, model->named_parameters(),
                                                   cfg.dist.bucket_mb);
    }

    const auto specs = optim::make_param_group_specs(*model, cfg.optim);
    if (cfg.dist.zero_stage == 1 && ctx.distributed()) {
      // Each rank's optimizer holds the groups restricted to the parameters it owns; the
      // parameters are passed in group order so rank 0 owns the start of the first group.
      std::vector<torch::Tensor> all;
      for (const auto& spec : specs) all.insert(all.end(), spec.params.begin(), spec.params.end());
      const auto& optim_cfg = cfg.optim;
      sharded = std::make_unique<dist::ShardedOptimizer>(
          all,
          [&](std::vector<torch::Tensor> mine) {
            std::set<const void*> owned;
            for (const auto& p : mine) owned.insert(p.unsafeGetTensorImpl());
            std::vector<optim::ParamGroupSpec> local;
            for (const auto& spec : specs) {
              optim::ParamGroupSpec part = spec;
              part.params.clear();
              part.param_names.clear();
              for (size_t i = 0; i < spec.params.size(); ++i) {
                if (owned.count(spec.params[i].unsafeGetTensorImpl()) == 0) continue;
                part.params.push_back(spec.params[i]);
                part.param_names.push_back(spec.param_names[i]);
              }
              if (!part.params.empty()) local.push_back(std::move(part));
            }
            base_lrs = optim::base_lrs(local);
            return optim::make_optimizer(optim_cfg, optim::make_param_groups(local, optim_cfg));
          },
          ctx);
    } else {
      base_lrs = optim::base_lrs(specs);
      optimizer = optim::make_optimizer(cfg.optim, optim::make_param_groups(specs, cfg.optim));
    }
    scheduler = std::make_unique<optim::WarmupDecayLR>(local_optimizer(), base_lrs,
                                                       cfg.train.steps, cfg.schedule);
    loss = CoCaLoss::from_config(cfg.train, tokenizer->pad_id());

    const fs::path run_dir = cfg.train.run_dir;
    checkpointer = std::make_unique<Checkpointer>(
        cfg.checkpoint.dir.empty() ? run_dir / "checkpoints" : fs::path(cfg.checkpoint.dir),
        cfg.checkpoint.keep);
    metrics = std::make_unique<MetricsLogger>(run_dir / "metrics.jsonl", ctx.is_main());
  }

  void start_loader() {
    data::DataCursor cursor;
    if (!state.data_cursor.empty()) cursor = data::DataCursor::parse(state.data_cursor);
    const auto options = data::make_loader_options(cfg.data, local_batch, ctx.rank,
                                                   ctx.world_size, runtime::available_cores());
    loader = std::make_unique<data::Loader>(sources, options,
                                           make_training_hooks(cfg, tokenizer), cursor);
  }

  /// The stop signal, agreed by all ranks (any rank's SIGINT/SIGTERM stops every rank at
  /// the same step, so they save the same checkpoint). 0 = keep going.
  int agreed_stop() {
    const int local = stop_requested();
    if (!ctx.distributed()) return local;
    auto flags = torch::tensor({local != 0 ? 1.0 : 0.0, static_cast<double>(local)},
                               torch::TensorOptions().dtype(torch::kFloat64).device(device));
    dist::all_reduce_sum_(ctx, flags);
    const double count = flags[0].item<double>();
    if (count == 0) return 0;
    return local != 0 ? local : static_cast<int>(flags[1].item<double>() / count);
  }

  void zero_grad() {
    if (sharded) sharded->zero_grad();
    else optim::zero_grad_to_none(*optimizer);
  }

  // Gradient scaling with W ranks, each holding B_l = B / W rows of the global batch
  // (GradSync averages the per-rank gradients, i.e. divides their sum by W):
  //  - contrastive: rank r's loss C_r is the distributed InfoNCE of its B_l rows against
  //    the gathered global columns (mean over its rows), so the single-process loss of the
  //    concatenated batch is C = (1/W) sum_r C_r. all_gather_with_grad sends every rank's
  //    gradient w.r.t. the gathered features back to their owner, so rank r's parameter
  //    gradient is sum_s dC_s/dtheta through its own features (plus dC_r/dscale for the
  //    shared logit scale); averaging over ranks gives (1/W) sum_s dC_s/dtheta = dC/dtheta.
  //    With micro-batches the negatives are those of the global micro-batch (micro-batch
  //    k of every rank gathered), weighted by its share of the batch as in one process.
  //  - caption: one process uses sum_all CE / N with N the real target tokens of the global
  //    batch; rank r uses W * sum_r CE / N (N all-reduced), whose rank average is that.
  // Logged values are the rank averages of these per-rank losses: the global-batch losses.
  StepStats step(const data::Batch& batch) {
    model->train();
    zero_grad();
    StepStats stats;
    const int64_t B = batch.size();
    const int64_t W = ctx.world_size;
    stats.samples = B * W;
    const int64_t micro = cfg.train.micro_batch_size > 0 ? cfg.train.micro_batch_size : B;
    // The caption loss is a mean over every real target token of the global batch, also
    // when it is split into micro-batches; the contrastive loss is averaged over
    // micro-batches (its negatives are those of the global micro-batch).
    const auto targets = batch.text.slice(1, 1);
    auto token_count =
        torch::tensor({targets.ne(tokenizer->pad_id()).sum().item<int64_t>()},
                      torch::TensorOptions().dtype(torch::kInt64).device(device));
    dist::all_reduce_sum_(ctx, token_count);
    const int64_t tokens = token_count.item<int64_t>();
    stats.caption_tokens = tokens;
    double con_total = 0, cap_total = 0;
    bool finite = true;
    if (batch_shards > 1) {
      ShardedStepOptions options;
      options.shards = batch_shards;
      options.threads_per_shard = std::max<int64_t>(1, at::get_num_threads() / batch_shards);
      options.bf16 = cfg.train.precision == "bf16";
      const auto r = sharded_forward_backward(
          model, batch.images.to(device), batch.text.to(device), loss,
          tokens > 0 ? loss.lambda_cap / static_cast<double>(tokens) : 0.0, options);
      con_total = r.contrastive;
      cap_total = r.caption;
      finite = r.finite;
    }
    for (int64_t begin = 0; batch_shards == 1 && begin < B; begin += micro) {
      const int64_t end = std::min(B, begin + micro);
      const auto images = batch.images.slice(0, begin, end).to(device, /*non_blocking=*/true);
      const auto text = batch.text.slice(0, begin, end).to(device, /*non_blocking=*/true);
      // bf16 autocast covers the forward pass only; the losses below cast what they need.
      const auto out = [&] {
        compat::AutocastGuard autocast(device.is_cuda(), at::kBFloat16,
                                       cfg.train.precision == "bf16");
        auto o = model->forward(images, text);
        o.image_features = o.image_features.to(torch::kFloat);
        o.text_features = o.text_features.to(torch::kFloat);
        o.logits = o.logits.to(torch::kFloat);
        o.logit_scale = o.logit_scale.to(torch::kFloat);
        return o;
      }();
      torch::Tensor con;
      if (loss.lambda_con == 0) {
        // Captioning loss only (caption finetuning): the contrastive-only parameters
        // (contrastive pooler, projections, logit scale) get no gradient at all.
        con = torch::zeros({}, out.logits.options());
      } else if (ctx.distributed()) {
        const auto image_all = dist::all_gather_with_grad(ctx, out.image_features);
        const auto text_all = dist::all_gather_with_grad(ctx, out.text_features);
        con = contrastive_loss(out.image_features, out.text_features, image_all, text_all,
                               out.logit_scale, ctx.rank * (end - begin), loss.reduction);
      } else {
        con = contrastive_loss(out.image_features, out.text_features, out.logit_scale,
                               loss.reduction);
      }
      const auto cap = caption_loss(out.logits, text, loss.pad_id, loss.label_smoothing);
      const double share = static_cast<double>(end - begin) / B;
      auto con_part = con * (loss.lambda_con * share);
      auto cap_part = tokens > 0 ? cap.sum * (loss.lambda_cap * static_cast<double>(W) / tokens)
                                 : cap.sum * 0.0;
      auto total = con_part + cap_part;
      // Summed over ranks: every rank sees the same values, so all skip together.
      auto values = torch::stack({con_part.detach(), cap_part.detach()})
                        .to(device, torch::kFloat64);
      dist::all_reduce_sum_(ctx, values);
      const double con_value = values[0].item<double>() / W;
      const double cap_value = values[1].item<double>() / W;
      if (!std::isfinite(con_value + cap_value)) {
        finite = false;
        break;
      }
      if (grad_sync) grad_sync->set_sync(end == B);
      total.backward();
      con_total += con_value;
      cap_total += cap_value;
    }
    if (finite && grad_sync) grad_sync->finish();
    stats.loss_contrastive = con_total;
    stats.loss_caption = cap_total;
    stats.loss = con_total + cap_total;
    auto& opt = local_optimizer();
    stats.lr = opt.param_groups().empty() ? 0.0 : opt.param_groups().front().options().get_lr();
    if (finite) {
      // Gradients are identical on every rank after GradSync, so is the norm.
      const auto norm = optim::clip_grad_norm(trainable(*model), cfg.optim.grad_clip_norm);
      stats.grad_norm = norm.total_norm;
      finite = norm.finite;
    }
    if (!finite) {
      zero_grad();
      stats.skipped = true;
      stats.logit_scale = model->logit_scale.exp().item<double>();
      return stats;
    }
    if (sharded) sharded->step();
    else optimizer->step();
    dist::average_buffers(*model, ctx);  // BatchNorm statistics; no-op on one process
    if (clamp_enabled(cfg)) clamp_logit_scale_(model->logit_scale);
    scheduler->step();
    stats.logit_scale = model->logit_scale.exp().item<double>();
    return stats;
  }

  // Collective. Every rank's data cursor goes into train_state.yaml (rank 0 gathers
  // them); under ZeRO-1 each rank first writes its optimizer shard into a staging folder
  // beside the checkpoints, which rank 0 moves into the checkpoint before the atomic
  // rename. Rank 0 reports success or failure to the others.
  fs::path save() {
    const std::string own_cursor = state.data_cursor;
    const auto cursors = all_gather_strings(ctx, own_cursor);
    const fs::path staging =
        checkpointer->root() / fmt::format(".shards-step_{:08d}", state.step);
    if (sharded) {
      if (ctx.is_main()) {
        fs::remove_all(staging);
        fs::create_directories(staging);
      }
      dist::barrier(ctx);
      torch::serialize::OutputArchive archive;
      sharded->save(archive);
      archive.save_to((staging / shard_file(ctx.rank)).string());
      dist::barrier(ctx);
    }
    fs::path dir;
    std::exception_ptr error;
    if (ctx.is_main()) {
      TrainState saved = state;
      saved.world_size = ctx.world_size;
      saved.data_cursor = cursors[0];
      saved.rank_cursors.assign(cursors.begin() + 1, cursors.end());
      try {
        dir = checkpointer->save(state.step, [&](const fs::path& tmp) {
          torch::save(model, (tmp / kModelFile).string());
          if (sharded) {
            for (int r = 0; r < ctx.world_size; ++r) {
              fs::rename(staging / shard_file(r), tmp / shard_file(r));
            }
          } else {
            torch::serialize::OutputArchive archive;
            optimizer->save(archive);
            archive.save_to((tmp / kOptimFile).string());
          }
          {
            torch::serialize::OutputArchive archive;
            archive.write("cpu_generator", at::detail::getDefaultCPUGenerator().get_state());
            archive.save_to((tmp / kRngFile).string());
          }
          saved.save(tmp / kStateFile);
          std::ofstream(tmp / kConfigFile) << config::to_yaml(cfg);
        });
      } catch (...) {
        error = std::current_exception();
      }
      if (sharded) fs::remove_all(staging);
    }
    if (ctx.distributed()) {
      auto failed = torch::tensor({error ? 1.0 : 0.0},
                                  torch::TensorOptions().dtype(torch::kFloat64).device(device));
      dist::all_reduce_sum_(ctx, failed);
      if (failed.item<double>() > 0 && !error) {
        throw IoError(checkpointer->root().string(),
                      fmt::format("rank 0 failed to write the checkpoint of step {}", state.step));
      }
    }
    if (error) std::rethrow_exception(error);
    if (!ctx.is_main()) {
      const auto latest = checkpointer->latest();
      dir = latest ? latest->dir : checkpointer->root();
    }
    return dir;
  }

  void load(const fs::path& dir) {
    check_checkpoint_format(dir);
    TrainState loaded = TrainState::load(dir / kStateFile);
    if (loaded.world_size != ctx.world_size) {
      throw IoError(dir.string(),
                    fmt::format("written by a run of {} ranks; this run has {} (each rank's data "
                                "stream depends on the world size: resume with {} ranks, or "
                                "start a new run with train.init_from)",
                                loaded.world_size, ctx.world_size, loaded.world_size));
    }
    load_model_weights(model, dir);
    {
      const bool has_shards = fs::exists(dir / shard_file(0));
      const fs::path file = sharded ? dir / shard_file(ctx.rank) : dir / kOptimFile;
      if (!fs::exists(file)) {
        throw IoError(file.string(),
                      has_shards ? "missing: the checkpoint holds ZeRO-1 optimizer shards "
                                   "(optim_rank<r>.pt); set dist.zero_stage: 1"
                                 : "missing: the checkpoint has no optimizer shard of this rank "
                                   "(it was written without dist.zero_stage: 1?)");
      }
      torch::serialize::InputArchive archive;
      archive.load_from(file.string());
      if (sharded) sharded->load(archive);
      else optimizer->load(archive);
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
    state.data_cursor = loaded.cursor_of(ctx.rank);
    state.rank_cursors.clear();
    scheduler->set_step(state.step);
  }
};

Trainer::Trainer(config::RunConfig cfg) : impl_(std::make_unique<Impl>(std::move(cfg), nullptr)) {}
Trainer::Trainer(config::RunConfig cfg, const dist::Context& ctx)
    : impl_(std::make_unique<Impl>(std::move(cfg), &ctx)) {}
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
  if (m.ctx.is_main()) config::write_yaml_file(cfg, (run_dir / "config.yaml").string());

  // Caption finetuning: zero-shot accuracy of the weights before finetuning, the
  // reference of the collapse warning (measured before a resume replaces them).
  std::optional<double> zero_shot_before;
  if (cfg.train.task == "caption") {
    log::info("[caption] caption finetuning: lambda_cap {}, lambda_con {}{}; encoder lr x{}",
              cfg.train.lambda_cap, cfg.train.lambda_con,
              cfg.train.lambda_con == 0 ? " (captioning loss only)" : "",
              cfg.optim.encoder_lr_scale);
  }
  if (cfg.train.task == "caption" && !cfg.eval.zero_shot.type.empty() &&
      cfg.eval.collapse_warn_fraction > 0 && log::rank() == 0) {
    auto before_cfg = cfg;
    before_cfg.eval.retrieval = eval::disabled_source();
    before_cfg.eval.captioning = eval::disabled_source();
    zero_shot_before = eval::evaluate(m.model, *m.tokenizer, before_cfg).at("zero_shot_top1");
    log::info("[caption] zero-shot top-1 before finetuning: {:.4f} (train.lambda_con = {})",
              *zero_shot_before, cfg.train.lambda_con);
  }

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
  if (m.batch_shards > 1) {
    log::info("[train] each step's batch runs as {} concurrent row blocks of ~{} samples, {} "
              "thread(s) each (runtime.batch_shards; 1 turns this off)", m.batch_shards,
              m.local_batch / m.batch_shards,
              std::max<int64_t>(1, at::get_num_threads() / m.batch_shards));
  }
  if (m.ctx.distributed()) {
    log::info("[train] {} ranks ({}): {} samples per rank and step{}", m.ctx.world_size,
              m.ctx.backend, m.local_batch,
              m.sharded ? "; optimizer state sharded (ZeRO-1)" : "");
  }
  const auto quotas = m.loader->quotas();
  for (size_t i = 0; i < quotas.size(); ++i) {
    log::info("[data] source {} '{}' ({} text): {} of {} samples per rank batch, {} shards", i,
              cfg.data.sources[i].name, cfg.data.sources[i].text, quotas[i], m.local_batch,
              m.sources[i]->shards().size());
  }

  TimeMeter since_log;
  TimeMeter since_start;
  const int64_t first_step = m.state.step;
  AverageMeter loss_avg, con_avg, cap_avg;
  int64_t samples_since_log = 0;
  while (m.state.step < cfg.train.steps) {
    if (const int sig = m.agreed_stop()) {
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
        if (zero_shot_before) {
          if (const auto warning = zero_shot_collapse_warning(
                  *zero_shot_before, results.at("zero_shot_top1"),
                  cfg.eval.collapse_warn_fraction)) {
            log::warn("[caption] step {}: {}", m.state.step, *warning);
          }
        }
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

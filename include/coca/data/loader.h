// The training data loader: mixes the sources with exact per-batch quotas (mixture.h),
// decodes, transforms and tokenises in worker threads, and hands out batches whose
// sequence depends only on (seed, rank, world_size, sources, batch size), never on the
// number of threads or on timing. It can resume from a DataCursor exactly.
//
//   Loader loader(sources, make_loader_options(cfg.data, per_rank_batch, rank, world, threads),
//                 hooks, cursor);
//   Batch b = loader.next();           // images [B, 3, S, S], text [B, T]
//   std::string saved = loader.cursor().to_string();
#pragma once

#include <torch/types.h>

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "coca/data/batch.h"
#include "coca/data/data_config.h"
#include "coca/data/mixture.h"
#include "coca/data/sample.h"
#include "coca/data/sources.h"

namespace coca::data {

/// Number of SkipReason values.
constexpr size_t kSkipReasonCount = 5;

/// The per-sample work, injected so the loader does not depend on the decoders and
/// tokenizers. All three are called from worker threads, concurrently: they must be
/// thread-safe. `sample_seed` is a hash of (seed, source, epoch, shard, offset in shard),
/// the same for a sample whatever the thread, rank count or resume.
struct LoaderHooks {
  /// Decoded and augmented image, [C, S, S] float. Throwing coca::DataError skips the
  /// sample as SkipReason::corrupt_image; any other exception stops the loader.
  std::function<torch::Tensor(const RawSample&, uint64_t sample_seed)> image_transform;
  /// Text of the sample (a caption, or label names put in a template). `position` is the
  /// number of samples this rank drew from the source before this one. An empty result
  /// skips the sample as empty_text; throwing coca::DataError skips it as `other`.
  std::function<std::string(const RawSample&, const SourceConfig&, uint64_t sample_seed,
                            int64_t position)>
      make_text;
  /// Token ids of the texts, [N, T] int64 (called with one text at a time).
  std::function<torch::Tensor(const std::vector<std::string>&)> tokenize;
};

/// The caption of a caption sample: one of RawSample::captions (COCO has ~5 per image)
/// picked with `sample_seed`, so each epoch may use another one; "" when there is none.
std::string choose_caption(const RawSample& sample, uint64_t sample_seed);

/// Names of a label sample turned into text (paper §4.1), e.g. a wrapper of label_text():
/// (label names, sample_seed, position) -> text.
using LabelTextFn =
    std::function<std::string(const std::vector<std::string>&, uint64_t, int64_t)>;

/// LoaderHooks::make_text for the usual case: sources with `text: caption` use
/// choose_caption(), sources with `text: label` use `label_text` on RawSample::labels.
std::function<std::string(const RawSample&, const SourceConfig&, uint64_t, int64_t)>
make_text_hook(LabelTextFn label_text);

struct LoaderOptions {
  int64_t batch_size = 0;          ///< samples per batch on this rank
  int rank = 0;                    ///< this process's rank
  int world_size = 1;              ///< number of ranks
  int64_t workers = 1;             ///< decoding threads (>= 1)
  int64_t prefetch = 4;            ///< batches decoded ahead
  int64_t report_bad_every = 100;  ///< warn on the 1st skip of a kind and every N-th after
  uint64_t seed = 0;               ///< shuffle and augmentation seed
  bool pin_memory = false;         ///< allocate batches in pinned memory
};

/// Options from the config: `batch_size` per rank; workers = data.workers, or
/// `default_workers` when that is 0; pin_memory when CUDA is available.
LoaderOptions make_loader_options(const DataConfig& cfg, int64_t batch_size, int rank,
                                  int world_size, int64_t default_workers);

/// Progress and skipped samples of one source, for logging.
struct SourceStats {
  std::string name;
  int64_t quota = 0;    ///< samples per batch
  int64_t epoch = 0;    ///< current epoch of this rank's stream
  int64_t samples = 0;  ///< samples put into batches
  std::array<int64_t, kSkipReasonCount> skipped{};  ///< indexed by SkipReason
};

class Loader {
 public:
  /// Starts the reader and `options.workers` worker threads. `start` resumes from a cursor
  /// taken on the same rank and world size with the same sources (an empty cursor starts
  /// afresh). Throws ConfigError when a source's quota rounds to 0, std::invalid_argument
  /// on bad options, hooks or cursor.
  Loader(std::vector<std::shared_ptr<const Source>> sources, LoaderOptions options,
         LoaderHooks hooks, const DataCursor& start = {});
  /// Stops and joins every thread, also when batches are still being prepared.
  ~Loader();
  Loader(const Loader&) = delete;
  Loader& operator=(const Loader&) = delete;

  /// The next batch. Rethrows a reader or hook error (DataError when a source gives
  /// nothing readable in a whole epoch); after an error every call throws again.
  Batch next();
  /// Position after the last batch returned: restoring it continues with the next one.
  const DataCursor& cursor() const;
  /// Per-source progress (call from the thread that calls next()).
  std::vector<SourceStats> stats() const;
  /// Samples of each source per batch.
  const std::vector<int64_t>& quotas() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// Throughput of the whole pipeline (read, decode, transform, tokenise, batch).
struct LoaderThroughput {
  int64_t workers = 0;
  int64_t images = 0;
  double seconds = 0;
  double images_per_second = 0;
  double cpu_seconds = 0;  ///< CPU time of the whole process (all threads) while timing
};

/// Builds a fresh Loader, takes one warm-up batch, then times `batches` batches (wall and
/// process CPU time).
LoaderThroughput measure_loader_throughput(std::vector<std::shared_ptr<const Source>> sources,
                                           const LoaderOptions& options,
                                           const LoaderHooks& hooks, int64_t batches);

}  // namespace coca::data

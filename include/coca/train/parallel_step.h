// Data parallelism inside one process, for CPUs.
//
// On a few cores most of a CoCa step is GEMMs on small matrices, and one GEMM split over
// two threads gains far less than 2x (OpenMP and OpenBLAS synchronise on every op, and
// the element-wise ops between GEMMs hardly scale). Giving each core its own rows of the
// batch instead keeps every op single-threaded and every core busy:
//
//   1. forward: the batch is cut into `shards` row blocks; each runs the model on its own
//      thread (1 intra-op thread when shards == cores);
//   2. the contrastive loss needs every row's features (the whole batch is every row's
//      negatives): it runs once on the concatenated, detached features, and its backward
//      gives d loss / d features per row;
//   3. backward: each thread backpropagates its caption loss plus <features, d features>
//      through its own graph; parameter gradients from the threads add up in .grad.
//
// The gradient is that of the unsplit batch (the same sums in another order), which the
// tests check against the one-piece step.
#pragma once

#include <torch/types.h>

#include <cstdint>

#include "coca/model/coca.h"
#include "coca/train/losses.h"

namespace coca::train {

struct ShardedStepOptions {
  int64_t shards = 2;             ///< row blocks run concurrently (>= 1, <= batch)
  int64_t threads_per_shard = 1;  ///< intra-op threads of each worker
  bool bf16 = false;              ///< bf16 autocast of the forward
};

struct ShardedStepLoss {
  double contrastive = 0;  ///< lambda_con * contrastive loss of the whole batch
  double caption = 0;      ///< caption_scale * summed caption CE of the whole batch
  bool finite = true;      ///< false: the backward was skipped
};

/// Forward and backward of one batch in concurrent row shards; gradients are added to the
/// model's parameters' .grad. The loss is loss.lambda_con * contrastive (loss.reduction,
/// over the whole batch) + caption_scale * (summed caption CE over real target tokens);
/// the trainer passes lambda_cap / tokens as caption_scale. The backward is skipped when
/// the loss is not finite.
ShardedStepLoss sharded_forward_backward(model::CoCa& model, const torch::Tensor& images,
                                         const torch::Tensor& text, const CoCaLoss& loss,
                                         double caption_scale, const ShardedStepOptions& options);

/// The number of shards `runtime.batch_shards` asks for: a positive value as is; 0 (auto)
/// = one per compute thread on a CPU, single process, when the batch splits evenly into
/// blocks of at least 2 rows; else 1 (no split).
int64_t resolve_batch_shards(int64_t configured, int64_t threads, int64_t batch, bool cuda,
                             bool distributed);

}  // namespace coca::train

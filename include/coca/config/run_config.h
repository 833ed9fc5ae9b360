// RunConfig: every section of a run, typed. Parsed and dumped only by config_io.
#pragma once

#include "coca/data/data_config.h"
#include "coca/dist/dist_config.h"
#include "coca/eval/eval_config.h"
#include "coca/model/model_config.h"
#include "coca/optim/optim_config.h"
#include "coca/train/train_config.h"

namespace coca::config {

struct RunConfig {
  model::CoCaConfig model;
  data::DataConfig data;
  optim::OptimConfig optim;
  optim::ScheduleConfig schedule;
  train::TrainConfig train;
  dist::DistConfig dist;
  eval::EvalConfig eval;
  train::CheckpointConfig checkpoint;
  train::LogConfig log;
  train::RuntimeConfig runtime;
};

}  // namespace coca::config

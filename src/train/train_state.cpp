#include "coca/train/train_state.h"

#include <fstream>
#include <sstream>
#include <stdexcept>

#include "coca/common/error.h"
#include "coca/config/config_io.h"

namespace coca::train {

void TrainState::save(const std::filesystem::path& file) const {
  const std::string text = config::flat_yaml({
      {"step", std::to_string(step)},
      {"batches", std::to_string(batches)},
      {"samples_seen", std::to_string(samples_seen)},
      {"skipped_steps", std::to_string(skipped_steps)},
      {"world_size", std::to_string(world_size)},
      {"seed", std::to_string(seed)},
      {"data_cursor", data_cursor},
  });
  std::ofstream out(file);
  out << text;
  if (!out.flush()) throw IoError(file.string(), "cannot write the training state");
}

TrainState TrainState::load(const std::filesystem::path& file) {
  std::ifstream in(file);
  if (!in) throw IoError(file.string(), "cannot read the training state");
  std::stringstream ss;
  ss << in.rdbuf();
  TrainState s;
  for (const auto& [key, value] : config::parse_flat_yaml(ss.str(), file.string())) {
    try {
      if (key == "step") s.step = std::stoll(value);
      else if (key == "batches") s.batches = std::stoll(value);
      else if (key == "samples_seen") s.samples_seen = std::stoll(value);
      else if (key == "skipped_steps") s.skipped_steps = std::stoll(value);
      else if (key == "world_size") s.world_size = std::stoll(value);
      else if (key == "seed") s.seed = std::stoull(value);
      else if (key == "data_cursor") s.data_cursor = value;
      else throw IoError(file.string(), "unknown key '" + key + "'");
    } catch (const std::logic_error&) {
      throw IoError(file.string(), "'" + key + "' has a bad value '" + value + "'");
    }
  }
  return s;
}

}  // namespace coca::train

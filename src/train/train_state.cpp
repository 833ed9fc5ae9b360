#include "coca/train/train_state.h"

#include <fstream>
#include <sstream>
#include <stdexcept>

#include "coca/common/error.h"
#include "coca/config/config_io.h"

namespace coca::train {

void TrainState::save(const std::filesystem::path& file) const {
  std::vector<std::pair<std::string, std::string>> items = {
      {"step", std::to_string(step)},
      {"batches", std::to_string(batches)},
      {"samples_seen", std::to_string(samples_seen)},
      {"skipped_steps", std::to_string(skipped_steps)},
      {"world_size", std::to_string(world_size)},
      {"seed", std::to_string(seed)},
      {"data_cursor", data_cursor},
  };
  for (size_t i = 0; i < rank_cursors.size(); ++i) {
    items.emplace_back("data_cursor_rank" + std::to_string(i + 1), rank_cursors[i]);
  }
  const std::string text = config::flat_yaml(items);
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
      else if (key.rfind("data_cursor_rank", 0) == 0) {
        const size_t r = std::stoul(key.substr(16));
        if (r < 1 || r > 65536) throw IoError(file.string(), "bad rank in key '" + key + "'");
        if (s.rank_cursors.size() < r) s.rank_cursors.resize(r);
        s.rank_cursors[r - 1] = value;
      }
      else throw IoError(file.string(), "unknown key '" + key + "'");
    } catch (const std::logic_error&) {
      throw IoError(file.string(), "'" + key + "' has a bad value '" + value + "'");
    }
  }
  if (s.world_size < 1 || static_cast<int64_t>(s.rank_cursors.size()) != s.world_size - 1) {
    throw IoError(file.string(),
                  "world_size is " + std::to_string(s.world_size) + " but the file holds " +
                      std::to_string(s.rank_cursors.size() + 1) + " data cursors (data_cursor" +
                      " and data_cursor_rank1..)");
  }
  return s;
}

const std::string& TrainState::cursor_of(int rank) const {
  if (rank == 0) return data_cursor;
  return rank_cursors.at(static_cast<size_t>(rank - 1));
}

}  // namespace coca::train

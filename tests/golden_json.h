// Reads the JSON golden files written by tools/make_golden_optim.py: a tensor is
// {"dtype": "float64"|"float32"|"int64", "shape": [...], "data": [row-major values]}.
#pragma once

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "test_utils.h"

namespace coca::testing {

/// Parses tests/data/golden/<name> and checks its "version" field.
inline nlohmann::json load_golden_json(const std::string& name, int expected_version = 1) {
  const auto path = source_dir() / "tests" / "data" / "golden" / name;
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open golden file " + path.string());
  auto j = nlohmann::json::parse(in);
  if (j.at("version").get<int>() != expected_version) {
    throw std::runtime_error(path.string() + ": version " + j.at("version").dump() +
                             ", expected " + std::to_string(expected_version) +
                             " (regenerate with tools/make_golden_optim.py)");
  }
  return j;
}

inline torch::Tensor golden_tensor(const nlohmann::json& j) {
  const auto shape = j.at("shape").get<std::vector<int64_t>>();
  const auto dtype = j.at("dtype").get<std::string>();
  if (dtype == "int64") {
    auto data = j.at("data").get<std::vector<int64_t>>();
    return torch::tensor(data, torch::kLong).reshape(shape);
  }
  auto data = j.at("data").get<std::vector<double>>();
  auto t = torch::tensor(data, torch::kDouble).reshape(shape);
  if (dtype == "float32") return t.to(torch::kFloat);
  if (dtype != "float64") throw std::runtime_error("golden tensor: unknown dtype " + dtype);
  return t;
}

}  // namespace coca::testing

// Loading, overriding, validating and dumping RunConfig.
// Precedence: defaults < --config A.yaml < --config B.yaml < --set a.b.c=value.
// Relative paths are resolved against the folder of the file that names them
// (against the working directory for --set). A file may list other files under a
// top-level `include:` key; they are applied before the file itself.
#pragma once

#include <string>
#include <vector>

#include "coca/config/run_config.h"

namespace coca::config {

/// Resolves files and overrides into a validated RunConfig. Collects every unknown
/// key, wrong type and invalid value and throws one ConfigError listing them all.
RunConfig load_run_config(const std::vector<std::string>& files,
                          const std::vector<std::string>& overrides);

/// Applies one YAML document (text) on top of `cfg`. `origin` names it in messages
/// and `base_dir` resolves relative paths. Throws ConfigError; does not validate.
void apply_yaml(RunConfig& cfg, const std::string& yaml_text, const std::string& origin,
                const std::string& base_dir);
/// Applies one YAML file (and its includes). Throws ConfigError.
void apply_file(RunConfig& cfg, const std::string& path);
/// Applies one `a.b.c=value` override. Throws ConfigError.
void apply_override(RunConfig& cfg, const std::string& assignment);

/// Every violated constraint, one line each (empty when valid).
std::vector<std::string> check(const RunConfig& cfg);
/// Throws ConfigError when check() finds anything.
void validate(const RunConfig& cfg);

/// The resolved config as YAML, every key in declaration order.
std::string to_yaml(const RunConfig& cfg);
/// Writes to_yaml(cfg) to `path` via a temporary file and rename.
void write_yaml_file(const RunConfig& cfg, const std::string& path);

/// A model section alone (for checkpoints and model presets).
std::string to_yaml(const model::CoCaConfig& cfg);
model::CoCaConfig model_from_yaml(const std::string& yaml_text, const std::string& origin);

/// A flat mapping of string keys to string values as YAML (small state files such as
/// train_state.yaml), keys in the given order, every value double-quoted.
std::string flat_yaml(const std::vector<std::pair<std::string, std::string>>& entries);
/// Inverse of flat_yaml (any flat mapping of scalars); throws ConfigError naming `origin`.
std::vector<std::pair<std::string, std::string>> parse_flat_yaml(const std::string& text,
                                                                 const std::string& origin);

/// Built-in model presets (configs/model/*.yaml embedded at build time).
std::vector<std::string> preset_names();
/// The preset's YAML text (a full file with a `model:` section); throws ConfigError.
std::string preset_yaml(const std::string& name);

}  // namespace coca::config

// `coca model-info`: parameter counts per part and analytic forward FLOPs of a model
// preset, a run config's model section, or an open_clip CoCa model-config JSON.
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>

#include "cli/commands.h"
#include "coca/common/error.h"
#include "coca/config/config_io.h"
#include "coca/io/open_clip.h"
#include "coca/model/model_info.h"

namespace coca::cli {

Subcommand add_model_info(CLI::App& root) {
  struct Args {
    std::string model;
    std::string open_clip_json;
    ConfigArgs config;
  };
  auto args = std::make_shared<Args>();
  CLI::App* app = root.add_subcommand(
      "model-info", "parameter counts per part and forward FLOPs per sample of a model");
  app->add_option("--model,-m", args->model, "built-in model preset (configs/model/NAME.yaml)")
      ->type_name("NAME");
  app->add_option("--open-clip-config", args->open_clip_json,
                  "open_clip CoCa model-config JSON (model_configs/coca_*.json)")
      ->type_name("FILE");
  args->config.add_to(*app);

  Subcommand cmd;
  cmd.app = app;
  cmd.threads = [] { return int64_t{1}; };
  cmd.run = [args] {
    const int sources = (args->model.empty() ? 0 : 1) + (args->open_clip_json.empty() ? 0 : 1) +
                        (args->config.files.empty() ? 0 : 1);
    if (sources != 1) {
      throw UsageError("model-info: give exactly one of --model NAME, --config FILE or "
                       "--open-clip-config FILE");
    }
    model::CoCaConfig cfg;
    if (!args->open_clip_json.empty()) {
      std::ifstream in(args->open_clip_json);
      if (!in) throw IoError(args->open_clip_json, "cannot open the open_clip model config");
      std::stringstream text;
      text << in.rdbuf();
      cfg = io::config_from_open_clip_json(text.str(), args->open_clip_json);
    } else if (!args->model.empty()) {
      config::RunConfig run;
      config::apply_yaml(run, config::preset_yaml(args->model), args->model, "");
      for (const auto& o : args->config.overrides) config::apply_override(run, o);
      config::validate(run);
      cfg = run.model;
    } else {
      cfg = config::load_run_config(args->config.files, args->config.overrides).model;
    }
    std::cout << model::model_info_text(cfg);
    return 0;
  };
  return cmd;
}

}  // namespace coca::cli

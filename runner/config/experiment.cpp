#include "config/experiment.hpp"

#include "config/runner_keys.hpp"

namespace exprun {

nlohmann::json to_json(const sdk::ParamValue& value) {
  return std::visit([](const auto& v) { return nlohmann::json(v); }, value);
}

nlohmann::json to_json(const PluginChoice& choice) {
  nlohmann::json out = {{"plugin", choice.name}};
  for (const auto& [key, value] : choice.params.values()) out[key] = to_json(value);
  return out;
}

nlohmann::json to_json(const StageConfig& stage) { return stage_keys().to_json(stage); }

nlohmann::json plugin_defaults_json(StageConfig stage) {
  auto at_defaults = [](PluginChoice& choice) { choice.params = sdk::Params(choice.defaults); };
  at_defaults(stage.data.reader);
  at_defaults(stage.model);
  at_defaults(stage.loss);
  for (auto& strategy : stage.memory.strategies) at_defaults(strategy);
  return to_json(stage);
}

nlohmann::json to_json(const Experiment& e) {
  nlohmann::json stages = nlohmann::json::array();
  for (const auto& s : e.stages) stages.push_back(to_json(s));
  return {{"experiment", experiment_keys().to_json(e)},
          {"source_file", e.source_file},
          {"overrides", e.overrides},
          {"stages", stages}};
}

}  // namespace exprun

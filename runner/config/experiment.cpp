#include "config/experiment.hpp"

namespace exprun {

nlohmann::json to_json(const sdk::ParamValue& value) {
  return std::visit([](const auto& v) { return nlohmann::json(v); }, value);
}

nlohmann::json to_json(const PluginChoice& choice) {
  nlohmann::json out = {{"plugin", choice.name}};
  for (const auto& [key, value] : choice.params.values()) out[key] = to_json(value);
  return out;
}

nlohmann::json to_json(const StageConfig& stage) {
  const auto& d = stage.data;
  nlohmann::json data = to_json(d.reader);
  data["image_size"] = {d.input_width, d.input_height};
  data["sigma"] = d.sigma;
  data["workers"] = d.workers;
  data["channels"] = d.channels;
  data["train_split"] = d.train_split;
  data["val_split"] = d.val_split;
  data["augment"] = {{"enabled", d.augment.enabled},       {"rotation", d.augment.rotation_deg},
                     {"scale", d.augment.scale},           {"shift", d.augment.shift},
                     {"brightness", d.augment.brightness}, {"contrast", d.augment.contrast},
                     {"gamma", d.augment.gamma},           {"clahe", d.augment.clahe},
                     {"clahe_clip", d.augment.clahe_clip}, {"clahe_tiles", d.augment.clahe_tiles}};

  nlohmann::json loss = to_json(stage.loss);
  if (!stage.loss_weights.by_symbol.empty()) loss["weights"] = stage.loss_weights.by_symbol;
  if (stage.focus.worst > 0) {
    loss["focus"] = {{"worst", stage.focus.worst}, {"weight", stage.focus.weight}};
  }

  nlohmann::json memory = {{"effective_batch", stage.memory.effective_batch},
                           {"strategies", nlohmann::json::array()}};
  if (stage.memory.micro_batch_auto) {
    memory["micro_batch"] = "auto";
    memory["margin"] = stage.memory.margin;
    if (stage.memory.budget_bytes) memory["budget"] = *stage.memory.budget_bytes;
  } else {
    memory["micro_batch"] = stage.memory.micro_batch;
  }
  for (const auto& s : stage.memory.strategies) {
    memory["strategies"].push_back(s.name);
    nlohmann::json params = to_json(s);
    params.erase("plugin");
    memory[s.name] = params;
  }
  const auto& o = stage.optimizer;
  nlohmann::json optimizer = {{"name", o.name}, {"lr", o.lr}, {"weight_decay", o.weight_decay}};
  if (o.name == "sgd") {
    optimizer["momentum"] = o.momentum;
    optimizer["nesterov"] = o.nesterov;
  } else {
    optimizer["betas"] = o.betas;
  }
  nlohmann::json out = {{"name", stage.name},
                        {"epochs", stage.epochs},
                        {"device", stage.device},
                        {"data", data},
                        {"model", to_json(stage.model)},
                        {"loss", loss},
                        {"memory", memory},
                        {"optimizer", optimizer},
                        {"schedule",
                         {{"warmup_epochs", stage.schedule.warmup_epochs},
                          {"decay", stage.schedule.decay},
                          {"min_lr", stage.schedule.min_lr}}},
                        {"eval", {{"decode", stage.eval.decode}}},
                        {"checkpoint",
                         {{"monitor", stage.checkpoint.monitor},
                          {"mode", stage.checkpoint.mode},
                          {"every", stage.checkpoint.every},
                          {"keep_last", stage.checkpoint.keep_last}}}};
  if (!stage.init.empty()) out["init"] = stage.init.text;
  return out;
}

nlohmann::json to_json(const Experiment& e) {
  nlohmann::json stages = nlohmann::json::array();
  for (const auto& s : e.stages) stages.push_back(to_json(s));
  return {{"experiment",
           {{"name", e.name},
            {"seed", e.seed},
            {"threads", e.threads},
            {"output", e.output_dir},
            {"description", e.description}}},
          {"source_file", e.source_file},
          {"overrides", e.overrides},
          {"stages", stages}};
}

}  // namespace exprun

#include "report/tensorboard_scalars.hpp"

namespace exprun {

void write_epoch_scalars(EventFileWriter& events, const nlohmann::json& epoch_line,
                         const nlohmann::json& validation_metrics) {
  const std::int64_t step = epoch_line.at("epoch").get<std::int64_t>();
  auto add = [&](const std::string& tag, const nlohmann::json& value) {
    if (value.is_number()) events.add_scalar(tag, step, value.get<double>());
  };
  add("train/loss", epoch_line.at("train_loss"));
  add("train/lr", epoch_line.at("lr"));
  add("train/images_per_second", epoch_line.at("images_per_second"));
  add("train/data_wait_seconds", epoch_line.at("data_wait_seconds"));
  add("memory/peak_bytes", epoch_line.at("peak_memory_bytes"));
  add("val/mre_mm", epoch_line.at("val_mre_mm"));
  add("val/sd_mm", epoch_line.at("val_sd_mm"));
  for (const auto& [threshold, value] : epoch_line.at("val_sdr").items())
    add("val/sdr_" + threshold + "mm", value);
  for (const auto& [symbol, metrics] : validation_metrics.at(metrics_json::kPerLandmark).items())
    add("val_landmark_mre_mm/" + symbol, metrics.at("mre"));
  events.flush();
}

}  // namespace exprun

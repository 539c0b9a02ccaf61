// Which scalars a stage shows in TensorBoard, taken from the epoch's metrics.jsonl line and its
// validation metrics, so that the event file and the JSON files never disagree.
#pragma once

#include <nlohmann/json.hpp>

#include "eval/metrics.hpp"
#include "report/event_file_writer.hpp"

namespace exprun {

// Step = the 1-based epoch. Tags: train/loss, train/lr, train/images_per_second,
// train/data_wait_seconds, memory/peak_bytes, val/mre_mm, val/sd_mm, val/sdr_<t>mm for each
// threshold, and val_landmark_mre_mm/<symbol>. Null (not computable) values are left out.
void write_epoch_scalars(EventFileWriter& events, const nlohmann::json& epoch_line,
                         const nlohmann::json& validation_metrics);

}  // namespace exprun

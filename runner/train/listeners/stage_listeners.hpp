// The outputs of a training stage, one listener each, and the one place they are assembled.
// A new per-epoch output is a new listener file, its factory below and one line in
// make_stage_listeners.
#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "config/experiment.hpp"
#include "train/listeners/stage_listener.hpp"

namespace exprun {

using StageListeners = std::vector<std::unique_ptr<StageListener>>;

struct StageListenerContext {
  std::filesystem::path stage_dir;
  std::string experiment;
  std::string stage;
  std::int64_t epochs = 0;
  CheckpointConfig checkpoint;
  std::vector<std::string> symbols;  // per_landmark keys
  // Writes checkpoints/<name>.pt of the stage as its progress stands.
  std::function<void(const std::string& name)> write_checkpoint;
  // The stage's report.json section, and who keeps report.json current with it (may be empty).
  std::function<nlohmann::json()> stage_report;
  std::function<void(const nlohmann::json&)> on_report;
  // False: only the console line (a process that must not write the stage's files).
  bool writes_files = true;
};

// metrics.jsonl rewritten from the history (atomically) after each epoch, and at the start of a
// resumed stage, whose file may hold lines of epochs it is about to train again.
std::unique_ptr<StageListener> metrics_file_listener(const StageListenerContext& context);
// TensorBoard scalars (report/tensorboard_scalars), a new event file per run of the stage.
std::unique_ptr<StageListener> tensorboard_listener(const StageListenerContext& context);
// curves.png redrawn after each epoch.
std::unique_ptr<StageListener> curves_listener(const StageListenerContext& context);
// epoch_N, best and latest after each epoch, in that order, then epoch_N files beyond
// checkpoint.keep_last removed; latest alone when interrupted between two steps. Keeps
// progress.epoch_checkpoints.
std::unique_ptr<StageListener> checkpoint_listener(const StageListenerContext& context,
                                                   StageProgress& progress);
// The progress line while an epoch runs and a summary line after it (stderr).
std::unique_ptr<StageListener> console_listener(const StageListenerContext& context);
// The stage's report section handed to context.on_report after each epoch.
std::unique_ptr<StageListener> report_listener(const StageListenerContext& context);

// In the order they run: the files a resume rebuilds from first, checkpoints after the files
// they describe, the console and report last.
StageListeners make_stage_listeners(const StageListenerContext& context, StageProgress& progress);

}  // namespace exprun

// The validated experiment: what every stage will do, with every default filled in. Built
// once from the TOML file (plus --set overrides); nothing downstream reads TOML again.
#pragma once

#include <exprun/sdk/params.hpp>
#include <exprun/sdk/plugin_kind.hpp>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace exprun {

struct PluginChoice {
  sdk::PluginKind kind = sdk::PluginKind::Dataset;
  std::string name;    // "adaptive_wing"
  sdk::Params params;  // resolved against the plugin's schema
  // The schema's default of each parameter that declares one: a run recorded before the plugin
  // declared a parameter resumes when that parameter is at its default (config/config_compat).
  std::map<std::string, sdk::ParamValue> defaults;
  std::string where;  // "q.toml:14:8" of the table, for errors found later (at build time)
  std::string key_path;
};

struct AugmentConfig {
  bool enabled = true;
  double rotation_deg = 10.0;    // uniform in [-r, r]
  double scale = 0.1;            // factor uniform in [1 - s, 1 + s]
  double shift = 0.05;           // fraction of the input size, uniform in [-s, s] per axis
  double brightness = 0.1;       // added, uniform in [-b, b]
  double contrast = 0.1;         // factor uniform in [1 - c, 1 + c] about mid-grey
  double gamma = 0.0;            // exponent uniform in [1 - g, 1 + g]: pixel^gamma
  double clahe = 0.0;            // probability of CLAHE (contrast-limited adaptive equalisation)
  double clahe_clip = 2.0;       // CLAHE clip limit (OpenCV's clipLimit)
  std::int64_t clahe_tiles = 8;  // CLAHE grid: tiles x tiles
};

struct DataConfig {
  PluginChoice reader;
  std::int64_t input_width = 256;
  std::int64_t input_height = 256;
  double sigma = 2.0;  // Gaussian target's standard deviation, in heatmap pixels
  // data.workers: a count, or "auto" (workers_auto), which the stage's build resolves for the
  // machine and device (BuiltStage::data_workers); `workers` is unused then.
  std::int64_t workers = 0;
  bool workers_auto = true;
  bool cache = true;  // the decoded-film cache (data/film_cache.hpp)
  // "idle": worker threads run at SCHED_IDLE, on the cores the training step leaves idle;
  // "normal": at the process's own priority.
  std::string worker_priority = "idle";
  std::int64_t channels = 1;
  std::string train_split = "train";
  std::string val_split = "valid";
  AugmentConfig augment;
};

// eval: how validation and `exprun eval` turn heatmaps into coordinates.
struct EvalConfig {
  std::string decode = "argmax";  // argmax (+ quadratic sub-pixel) | dark (Zhang et al. 2020)
};

// memory.effective_batch's largest value, and `exprun bench --plans`'s.
inline constexpr std::int64_t kMaxEffectiveBatch = 1 << 20;

struct MemoryConfig {
  std::vector<PluginChoice> strategies;
  std::int64_t effective_batch = 8;
  std::int64_t micro_batch = 8;              // with micro_batch_auto: effective_batch until tuned
  bool micro_batch_auto = false;             // micro_batch = "auto": the batch tuner chooses
  std::optional<std::int64_t> budget_bytes;  // memory.budget; unset: the device's free memory
  double margin = 0.1;                       // memory.margin: share of the budget kept free
  double speed_tolerance = 0.05;             // memory.speed_tolerance: speeds counted as equal
};

struct OptimizerConfig {
  std::string name = "adam";  // adam | adamw | sgd
  double lr = 1e-3;
  double weight_decay = 0.0;
  double momentum = 0.9;  // sgd only
  bool nesterov = false;  // sgd only
  std::vector<double> betas = {0.9, 0.999};
  bool fused = true;  // adam, adamw: one pass over each parameter on CPU (train/fused_adam)
};

struct ScheduleConfig {
  double warmup_epochs = 0.0;
  std::string decay = "cosine";  // cosine | constant
  double min_lr = 0.0;
};

// loss.weights: how much each landmark's heatmap counts in the loss, by symbol ("Go"); landmarks
// not named weigh 1. Checked against the dataset's symbols when the stage is built.
struct LandmarkWeights {
  std::map<std::string, double> by_symbol;
  std::map<std::string, std::string> where;  // symbol -> file:line:column of its value
  std::string key_path;                      // "stages.finetune.loss.weights"
};

// init: where a stage's starting weights come from. Unset: the model's own initialisation.
struct StageInit {
  std::string from_stage;  // "pretrain_768" in "pretrain_768:best"; empty for a path
  std::string which;       // "best" | "latest" with from_stage
  std::string path;        // a checkpoint file, resolved against the experiment file's folder
  std::string text;        // as written, for messages and the report
  std::string where;       // file:line:column of the value
  bool empty() const { return text.empty(); }
};

// loss.focus: weight the K landmarks the init stage found hardest (by its best validation MRE
// per landmark) by `weight`, on top of loss.weights.
struct FocusConfig {
  std::int64_t worst = 0;  // 0: no focus
  double weight = 3.0;     // used only with worst > 0
  std::string where;
};

// checkpoint: which checkpoint is "best", and how many epoch_N files are kept.
struct CheckpointConfig {
  std::string monitor = "val_mre_mm";  // a metrics.jsonl field: val_mre_mm, val_sdr_2mm, ...
  std::string mode = "min";            // min | max: which direction is better
  std::int64_t every = 0;              // epoch_N every `every` epochs; 0: none
  std::int64_t keep_last = 0;          // epoch_N files kept; 0: all
};

struct StageConfig {
  std::string name;
  std::int64_t epochs = 1;
  std::string device = "auto";
  bool cudnn_benchmark = false;  // cuDNN tries its algorithms per input shape, keeps the fastest
  bool channels_last = false;    // 4-d weights and the input batches in NHWC memory format
  DataConfig data;
  PluginChoice model;
  PluginChoice loss;
  LandmarkWeights loss_weights;
  FocusConfig focus;
  StageInit init;
  CheckpointConfig checkpoint;
  MemoryConfig memory;
  OptimizerConfig optimizer;
  ScheduleConfig schedule;
  EvalConfig eval;
  std::string where;  // file:line of the [[stage]] header
};

struct Experiment {
  std::string name;
  std::uint64_t seed = 0;
  std::int64_t threads = 0;  // 0: all cores
  std::string output_dir = "results";
  std::string description;
  std::string source_file;
  std::string source_text;             // the file as written, copied into every run
  std::vector<std::string> overrides;  // --set arguments, in order
  std::vector<StageConfig> stages;
};

nlohmann::json to_json(const sdk::ParamValue& value);
nlohmann::json to_json(const PluginChoice& choice);
nlohmann::json to_json(const StageConfig& stage);
// to_json(stage) with every plugin's parameters at their declared defaults, those without one
// left out: where a recorded configuration lacking a parameter can look up its default.
nlohmann::json plugin_defaults_json(StageConfig stage);
// The resolved configuration: what the run actually used, defaults included.
nlohmann::json to_json(const Experiment& experiment);

}  // namespace exprun

#include "config/runner_keys.hpp"

#include <set>

#include "config/byte_size.hpp"
#include "config/config_error.hpp"
#include "config/names.hpp"
#include "config/plugin_table_reader.hpp"
#include "util/text.hpp"

namespace exprun {
namespace {

using sdk::ParamType;
using Json = nlohmann::json;

constexpr double kNoMax = TableReader::kNoMax;

// Largest data.image_size side. HRNet's activations at 8192 x 8192 already take tens of GiB
// per image; a larger value is a typo, and would overflow the tensor sizes computed from it.
constexpr std::int64_t kMaxImageSide = 8192;

const std::vector<std::string> kMonitors = {"val_mre_mm",    "val_sd_mm",   "val_sdr_2mm",
                                            "val_sdr_2.5mm", "val_sdr_3mm", "val_sdr_4mm",
                                            "train_loss"};

const SchemaSource& plugins_of(const ReadContext& context) { return *context.plugins; }

// A key that, like every runner key, goes into the table's JSON, but is read elsewhere.
template <typename Config>
Key<Config> not_affecting_training(Key<Config> key) {
  key.info.affects_training = false;
  return key;
}

// ---- data.augment ----------------------------------------------------------------------

void read_augment(TableReader& data, DataConfig& out, const ReadContext& context) {
  const toml::node* node = data.take("augment");
  if (!node) return;
  if (node->is_boolean()) {
    out.augment.enabled = node->as_boolean()->get();
    return;
  }
  if (!node->is_table()) {
    data.fail("augment", "expected true, false or a table { rotation = 10.0, ... }, found " +
                             describe_node(*node));
  }
  TableReader r(data.layered().sub_table("augment"));
  augment_keys().read(r, out.augment, context);
  if (r.has("flip")) {
    r.fail("flip",
           "exprun does not flip: lateral cephalograms are not left-right symmetric, so a "
           "flipped film is not a plausible film (and landmark sides would swap)");
  }
  r.reject_unknown();
}

// ---- loss --------------------------------------------------------------------------------

// loss.weights = { Go = 3.0, Ar = 3.0 }: a runner key, so that every loss plugin gets the
// weights the same way (as Loss::compute's landmark_weights). Symbols are checked at build
// time, against the dataset.
void read_landmark_weights(TableReader& loss, StageConfig& stage, const ReadContext&) {
  LandmarkWeights& out = stage.loss_weights;
  out.key_path = loss.key_path("weights");
  const toml::node* node = loss.take("weights");
  if (!node) return;
  if (!node->is_table()) {
    loss.fail("weights", "expected a table of landmark symbol = weight, e.g. { Go = 3.0 }, found " +
                             describe_node(*node));
  }
  TableReader weights(loss.layered().sub_table("weights"));
  for (const auto& symbol : weights.unread()) {
    out.where[symbol] = describe_source(weights.layered().find(symbol)->source());
    out.by_symbol[symbol] = weights.required_number(symbol, 0, 1000);
  }
}

void read_focus(TableReader& loss, StageConfig& stage, const ReadContext& context) {
  FocusConfig& out = stage.focus;
  const toml::node* node = loss.take("focus");
  if (!node) return;
  out.where = describe_source(node->source());
  if (!node->is_table()) {
    loss.fail("focus",
              "expected a table { worst = 12, weight = 3.0 }, found " + describe_node(*node));
  }
  TableReader r(loss.layered().sub_table("focus"));
  // A misspelt key is named before "worst" is reported missing.
  r.allow(focus_keys().names());
  r.reject_unknown();
  focus_keys().read(r, out, context);
}

// ---- memory ------------------------------------------------------------------------------

void read_micro_batch(TableReader& r, MemoryConfig& out, const ReadContext&) {
  out.micro_batch = out.effective_batch;
  const toml::node* micro = r.take("micro_batch");
  if (!micro) return;
  if (micro->is_string()) {
    if (micro->as_string()->get() != "auto") {
      r.fail("micro_batch",
             "expected \"auto\" or an integer between 1 and "
             "memory.effective_batch, found " +
                 describe_node(*micro));
    }
    out.micro_batch_auto = true;
  } else {
    out.micro_batch = r.int_or("micro_batch", 1, 1, static_cast<double>(out.effective_batch));
  }
}

void read_workers(TableReader& r, DataConfig& out, const ReadContext&) {
  const toml::node* workers = r.take("workers");
  if (!workers) return;
  if (workers->is_string()) {
    if (workers->as_string()->get() != "auto") {
      r.fail("workers",
             "expected \"auto\" or an integer in [0, 64], found " + describe_node(*workers));
    }
    out.workers_auto = true;
  } else {
    out.workers = r.int_or("workers", 0, 0, 64);
    out.workers_auto = false;
  }
}

void read_budget(TableReader& r, MemoryConfig& out, const ReadContext&) {
  const toml::node* budget = r.take("budget");
  if (!budget) return;
  const auto bytes = parse_byte_size(*budget);
  if (!bytes) {
    r.fail("budget",
           "expected a memory size: bytes as an integer, or a string such as "
           "\"6GiB\", \"512MiB\" or \"8GB\", found " +
               describe_node(*budget));
  }
  out.budget_bytes = *bytes;
}

// The strategies' names are read with the other keys; their plugin tables once the batch keys
// are known to be consistent (resolve_strategies).
void read_strategy_names(TableReader& r, MemoryConfig& out, const ReadContext&) {
  for (const auto& name : r.string_list_or("strategies", {})) {
    PluginChoice choice;
    choice.kind = sdk::PluginKind::Memory;
    choice.name = name;
    out.strategies.push_back(std::move(choice));
  }
}

void resolve_strategies(TableReader& r, MemoryConfig& out, const ReadContext& context) {
  std::set<std::string> seen;
  for (auto& choice : out.strategies) {
    const std::string& name = choice.name;
    if (!seen.insert(name).second) r.fail("strategies", "lists \"" + name + "\" twice");
    choice.key_path = r.key_path(name);
    sdk::ParamSchema schema;
    try {
      schema = plugins_of(context).schema(sdk::PluginKind::Memory, name);
    } catch (const std::runtime_error& e) {
      r.fail("strategies", e.what());
    }
    TableReader params(r.table(name));
    choice.where = describe_source(params.layered().where());
    choice.params = read_plugin_params(params, schema, "memory/" + name, {});
    choice.defaults = declared_defaults(schema);
  }
}

void write_strategies(const MemoryConfig& m, Json& out) {
  out["strategies"] = Json::array();
  for (const auto& s : m.strategies) {
    out["strategies"].push_back(s.name);
    Json params = to_json(s);
    params.erase("plugin");
    out[s.name] = params;
  }
}

void read_memory_keys(TableReader& stage, StageConfig& config, const ReadContext& context) {
  MemoryConfig& out = config.memory;
  TableReader r(stage.table("memory"));
  memory_keys().read(r, out, context);
  if (!out.micro_batch_auto) {
    for (const char* key : {"budget", "margin", "speed_tolerance"}) {
      if (r.layered().find(key)) {
        r.fail(key, std::string("only applies to micro_batch = \"auto\" (the batch tuner); set "
                                "micro_batch = \"auto\" or remove ") +
                        key);
      }
    }
  }
  resolve_strategies(r, out, context);
  for (const auto& key : r.unread()) {
    const toml::node* node = r.layered().find(key);
    if (node && node->is_table()) {
      r.fail(key, "configures a strategy that memory.strategies does not list (add \"" + key +
                      "\" to memory.strategies, or remove this table)");
    }
  }
  r.reject_unknown();
}

// ---- optimizer ---------------------------------------------------------------------------

bool is_sgd(const OptimizerConfig& o) { return o.name == "sgd"; }

// momentum and nesterov belong to sgd, betas to adam and adamw: the other optimizer's key is
// an error that says whose it is.
void reject_other_optimizers_key(TableReader& r, const OptimizerConfig& o, const std::string& key) {
  if (!r.has(key)) return;
  if (is_sgd(o)) {
    r.fail(key, "'" + key +
                    "' is a setting of adam and adamw, but optimizer.name is \"sgd\" "
                    "(sgd takes momentum and nesterov)");
  }
  r.fail(key, "'" + key + "' is a setting of sgd, but optimizer.name is \"" + o.name +
                  "\" (adam and adamw take betas)");
}

void read_optimizer(TableReader& stage, StageConfig& config, const ReadContext& context) {
  TableReader r(stage.table("optimizer"));
  if (r.layered().empty()) {
    stage.fail("optimizer",
               "missing required table (e.g. optimizer = { name = \"adam\", lr = 1e-3 })");
  }
  optimizer_keys().read(r, config.optimizer, context);
  r.reject_unknown();
}

// ---- stage-level keys ---------------------------------------------------------------------

std::string read_device_value(TableReader& stage) {
  std::string device = stage.string_or("device", "auto");
  const bool numbered = device.rfind("cuda:", 0) == 0 && device.size() > 5 &&
                        device.find_first_not_of("0123456789", 5) == std::string::npos;
  if (device != "auto" && device != "cpu" && device != "cuda" && !numbered) {
    stage.fail("device", "expected \"auto\", \"cpu\", \"cuda\" or \"cuda:N\", found " +
                             quote_for_message(device));
  }
  return device;
}

// "NAME:WORD" with NAME a stage name and WORD of the same characters: the shape of a stage
// reference (anything else is a path, so a WORD other than best or latest can be named).
// A text whose NAME no stage could have, such as "a.b:best", is a path.
bool split_stage_reference(const std::string& text, std::string& name, std::string& which) {
  const auto colon = text.find(':');
  if (colon == std::string::npos) return false;
  name = text.substr(0, colon);
  which = text.substr(colon + 1);
  return is_stage_name(name) && is_stage_name(which);
}

// init = "stage:best" | "stage:latest" | "path/to/checkpoint.pt". Stage references are checked
// against the other stages once all are read (the loader's check_stage_chain).
void read_init(TableReader& stage, StageConfig& config, const ReadContext&) {
  StageInit& out = config.init;
  const toml::node* node = stage.take("init");
  if (!node) return;
  if (!node->is_string() || node->as_string()->get().empty()) {
    stage.fail("init", "expected \"STAGE:best\", \"STAGE:latest\" or a checkpoint path, found " +
                           describe_node(*node));
  }
  out.text = node->as_string()->get();
  out.where = describe_source(node->source());
  std::string stage_name, which;
  if (split_stage_reference(out.text, stage_name, which)) {
    if (which != "best" && which != "latest") {
      stage.fail("init", "expected \"" + stage_name + ":best\" or \"" + stage_name +
                             ":latest\", found \"" + out.text + "\"");
    }
    out.from_stage = stage_name;
    out.which = which;
  } else {
    out.path = out.text;
  }
}

// A stage key holding one of the runner's tables: read through `table`'s declarations, then
// any key nobody declared is an error.
template <typename Sub>
Key<StageConfig> runner_table(const std::string& name, bool required, const std::string& doc,
                              const KeyTable<Sub>& (*table)(), Sub StageConfig::*member) {
  return table_key<StageConfig>(
      name, doc, required ? "" : "see below",
      [name, table, member](TableReader& stage, StageConfig& c, const ReadContext& context) {
        TableReader r(stage.table(name));
        table().read(r, c.*member, context);
        r.reject_unknown();
      },
      [name, table, member](const StageConfig& c, Json& out) {
        out[name] = table().to_json(c.*member);
      });
}

}  // namespace

const KeyTable<Experiment>& experiment_keys() {
  static const KeyTable<Experiment> table(
      "experiment",
      {
          custom<Experiment>(
              string_spec("name", std::nullopt, {}, "names the folder <output>/<name>/"), "",
              [](TableReader& r, Experiment& e, const ReadContext&) {
                e.name = r.required_string("name");
                if (!is_experiment_name(e.name)) {
                  r.fail("name", "expected " + experiment_name_rule() + ", found " +
                                     quote_for_message(e.name));
                }
              },
              [](const Experiment& e, Json& out) { out["name"] = e.name; }),
          custom<Experiment>(
              int_spec("seed", 0, 0, 9.0e15, "seeds initialisation, shuffling and augmentation"),
              "",
              [](TableReader& r, Experiment& e, const ReadContext&) {
                e.seed = static_cast<std::uint64_t>(r.int_or("seed", 0, 0, 9.0e15));
              },
              [](const Experiment& e, Json& out) { out["seed"] = e.seed; }),
          field(int_spec("threads", 0, 0, 1024, "LibTorch compute threads; 0: every core"),
                &Experiment::threads),
          field(string_spec("output", "results", {}, "where runs go: <output>/<name>/<run-id>/"),
                &Experiment::output_dir),
          field(string_spec("description", "", {}, "free text, copied into the report"),
                &Experiment::description),
      });
  return table;
}

const KeyTable<StageConfig>& stage_keys() {
  static const KeyTable<StageConfig> table(
      "",
      {
          custom<StageConfig>(
              string_spec("name", std::nullopt, {}, "the stage's name; names its folder"), "",
              [](TableReader& r, StageConfig& s, const ReadContext&) {
                s.name = r.required_string("name");
                if (!is_stage_name(s.name)) {
                  r.fail("name",
                         "expected " + stage_name_rule() + ", found " + quote_for_message(s.name));
                }
              },
              [](const StageConfig& s, Json& out) { out["name"] = s.name; }),
          field(int_spec("epochs", std::nullopt, 1, 1e6, "full passes over the training split"),
                &StageConfig::epochs),
          custom<StageConfig>(
              string_spec("device", "auto", {}, "auto, cpu, cuda or cuda:N"), "",
              [](TableReader& r, StageConfig& s, const ReadContext&) {
                s.device = read_device_value(r);
              },
              [](const StageConfig& s, Json& out) { out["device"] = s.device; }),
          field(bool_spec("cudnn_benchmark", false,
                          "CUDA: cuDNN times its convolution algorithms, keeps the fastest"),
                &StageConfig::cudnn_benchmark),
          field(bool_spec("channels_last", false,
                          "weights and input batches in channels-last (NHWC) memory format"),
                &StageConfig::channels_last),
          table_key<StageConfig>(
              "data", "the dataset plugin and the runner's pipeline", "",
              [](TableReader& stage, StageConfig& s, const ReadContext& context) {
                TableReader r(stage.table("data"));
                data_keys().read(r, s.data, context);
              },
              [](const StageConfig& s, Json& out) { out["data"] = data_keys().to_json(s.data); }),
          table_key<StageConfig>(
              "model", "plugin = \"...\" and that model's parameters", "",
              [](TableReader& stage, StageConfig& s, const ReadContext& context) {
                TableReader r(stage.table("model"));
                s.model =
                    read_plugin_table(r, sdk::PluginKind::Model, plugins_of(context), {"plugin"});
                r.reject_unknown();
              },
              [](const StageConfig& s, Json& out) { out["model"] = to_json(s.model); }),
          table_key<StageConfig>(
              "loss", "plugin = \"...\", that loss's parameters, weights and focus", "",
              [](TableReader& stage, StageConfig& s, const ReadContext& context) {
                TableReader r(stage.table("loss"));
                loss_keys().read(r, s, context);
                r.reject_unknown();
              },
              [](const StageConfig& s, Json& out) { out["loss"] = loss_keys().to_json(s); }),
          table_key<StageConfig>("memory", "batch sizes and memory strategies", "see below",
                                 read_memory_keys,
                                 [](const StageConfig& s, Json& out) {
                                   out["memory"] = memory_keys().to_json(s.memory);
                                 }),
          table_key<StageConfig>("optimizer", "the optimiser and its settings", "", read_optimizer,
                                 [](const StageConfig& s, Json& out) {
                                   out["optimizer"] = optimizer_keys().to_json(s.optimizer);
                                 }),
          table_key<StageConfig>(
              "schedule", "learning-rate warm-up and decay", "see below",
              [](TableReader& stage, StageConfig& s, const ReadContext& context) {
                TableReader r(stage.table("schedule"));
                schedule_keys().read(r, s.schedule, context);
                if (s.schedule.warmup_epochs > static_cast<double>(s.epochs)) {
                  r.fail("warmup_epochs", "expected at most the stage's " +
                                              std::to_string(s.epochs) + " epochs, found " +
                                              format_number(s.schedule.warmup_epochs));
                }
                // The cosine runs from lr down to min_lr; above lr it would run upwards.
                // "constant" ignores min_lr.
                if (s.schedule.decay == "cosine" && s.schedule.min_lr > s.optimizer.lr) {
                  r.fail("min_lr", "expected at most the stage's optimizer.lr (" +
                                       format_number(s.optimizer.lr) +
                                       ") with decay = \"cosine\", found " +
                                       format_number(s.schedule.min_lr));
                }
                r.reject_unknown();
              },
              [](const StageConfig& s, Json& out) {
                out["schedule"] = schedule_keys().to_json(s.schedule);
              }),
          runner_table<EvalConfig>("eval", false, "how validation decodes heatmaps", eval_keys,
                                   &StageConfig::eval),
          custom<StageConfig>(custom_spec("init", ParamType::String, std::nullopt,
                                          "\"STAGE:best\", \"STAGE:latest\" or a checkpoint path"),
                              "none", read_init,
                              [](const StageConfig& s, Json& out) {
                                if (!s.init.empty()) out["init"] = s.init.text;
                              }),
          table_key<StageConfig>(
              "checkpoint", "which checkpoint is best; epoch_N files", "see below",
              [](TableReader& stage, StageConfig& s, const ReadContext& context) {
                TableReader r(stage.table("checkpoint"));
                checkpoint_keys().read(r, s.checkpoint, context);
                if (s.checkpoint.keep_last > 0 && s.checkpoint.every == 0) {
                  r.fail("keep_last",
                         "keep_last counts epoch_N checkpoints, but checkpoint.every is 0 (none "
                         "are written); set every = N as well");
                }
                r.reject_unknown();
              },
              [](const StageConfig& s, Json& out) {
                out["checkpoint"] = checkpoint_keys().to_json(s.checkpoint);
              }),
      });
  return table;
}

const KeyTable<DataConfig>& data_keys() {
  static const KeyTable<DataConfig> table(
      "data",
      {
          custom<DataConfig>(
              [] {
                sdk::ParamSpec spec = custom_spec("image_size", ParamType::IntList,
                                                  std::vector<std::int64_t>{256, 256},
                                                  "[width, height] of the network input");
                spec.min = 16;
                spec.max = static_cast<double>(kMaxImageSide);
                spec.length = 2;
                return spec;
              }(),
              "",
              [](TableReader& r, DataConfig& d, const ReadContext&) {
                const auto size = r.int_list_or("image_size", {256, 256}, 2, 16,
                                                static_cast<double>(kMaxImageSide));
                d.input_width = size[0];
                d.input_height = size[1];
              },
              [](const DataConfig& d, Json& out) {
                out["image_size"] = {d.input_width, d.input_height};
              }),
          field(number_spec("sigma", 2.0, 0.1, 64, "target Gaussian's std, in heatmap pixels"),
                &DataConfig::sigma),
          // Each sample's augmentation comes from its own seed, so the batches do not depend on
          // how many threads prepare them.
          [] {
            auto key = custom<DataConfig>(
                custom_spec("workers", ParamType::String, std::string("auto"),
                            "batch-preparation threads: an integer in [0, 64], or \"auto\""),
                "", read_workers, [](const DataConfig& d, Json& out) {
                  if (d.workers_auto) {
                    out["workers"] = "auto";
                  } else {
                    out["workers"] = d.workers;
                  }
                });
            key.info.affects_training = false;
            return key;
          }(),
          // The cache holds the exact arrays the pipeline makes, so it does not change results.
          field(bool_spec("cache", true,
                          "keep films decoded and resized in the decoded-film cache "
                          "(EXPRUN_CACHE_DIR); false decodes every film every time"),
                &DataConfig::cache, false),
          // Only when a batch is made changes: its contents are a function of its seed.
          field(string_spec("worker_priority", "idle", {"idle", "normal"},
                            "the workers' CPU priority: idle (the cores the training step "
                            "leaves idle) or normal"),
                &DataConfig::worker_priority, false),
          custom<DataConfig>(
              int_spec("channels", 1, 1, 3, "model input channels: 1 grey, 3 grey repeated"), "",
              [](TableReader& r, DataConfig& d, const ReadContext&) {
                d.channels = r.int_or("channels", 1, 1, 3);
                if (d.channels == 2) {
                  r.fail("channels", "expected 1 (grey) or 3 (grey repeated), found 2");
                }
              },
              [](const DataConfig& d, Json& out) { out["channels"] = d.channels; }),
          field(string_spec("train_split", "train", {}, "split the dataset trains on"),
                &DataConfig::train_split),
          field(string_spec("val_split", "valid", {}, "split scored after every epoch"),
                &DataConfig::val_split),
          custom<DataConfig>(
              bool_spec("augment", true, "true, false, or a table of augmentation settings"), "",
              read_augment,
              [](const DataConfig& d, Json& out) {
                out["augment"] = augment_keys().to_json(d.augment);
              }),
          // Last: every key the runner has not taken is the dataset plugin's.
          custom<DataConfig>(
              string_spec("plugin", std::nullopt, {}, "the dataset plugin"), "",
              [](TableReader& r, DataConfig& d, const ReadContext& context) {
                d.reader = read_plugin_table(r, sdk::PluginKind::Dataset, plugins_of(context),
                                             data_keys().names());
              },
              [](const DataConfig& d, Json& out) { out.update(to_json(d.reader)); }),
      });
  return table;
}

const KeyTable<AugmentConfig>& augment_keys() {
  using A = AugmentConfig;
  static const KeyTable<AugmentConfig> table(
      "data.augment",
      {
          field(bool_spec("enabled", true, "false turns augmentation off"), &A::enabled),
          field(number_spec("rotation", 10.0, 0, 180, "degrees, uniform in [-r, r]"),
                &A::rotation_deg),
          field(number_spec("scale", 0.1, 0, 0.9, "factor uniform in [1 - s, 1 + s]"), &A::scale),
          field(number_spec("shift", 0.05, 0, 0.5, "fraction of the input size per axis"),
                &A::shift),
          field(number_spec("brightness", 0.1, 0, 1, "added, uniform in [-b, b]"), &A::brightness),
          field(number_spec("contrast", 0.1, 0, 0.9, "factor uniform in [1 - c, 1 + c]"),
                &A::contrast),
          field(number_spec("gamma", 0.0, 0, 0.9, "exponent uniform in [1 - g, 1 + g]"), &A::gamma),
          field(number_spec("clahe", 0.0, 0, 1, "probability of CLAHE"), &A::clahe),
          field(number_spec("clahe_clip", 2.0, 0.1, 100, "CLAHE clip limit"), &A::clahe_clip),
          field(int_spec("clahe_tiles", 8, 1, 64, "CLAHE grid: tiles x tiles"), &A::clahe_tiles),
      });
  return table;
}

const KeyTable<StageConfig>& loss_keys() {
  static const KeyTable<StageConfig> table(
      "loss", {
                  custom<StageConfig>(
                      custom_spec("weights", ParamType::FloatMap, std::map<std::string, double>{},
                                  "weight per landmark symbol, in [0, 1000]; others weigh 1"),
                      "", read_landmark_weights,
                      [](const StageConfig& s, Json& out) {
                        if (!s.loss_weights.by_symbol.empty())
                          out["weights"] = s.loss_weights.by_symbol;
                      }),
                  table_key<StageConfig>("focus", "weight the init stage's hardest landmarks",
                                         "none", read_focus,
                                         [](const StageConfig& s, Json& out) {
                                           if (s.focus.worst > 0)
                                             out["focus"] = focus_keys().to_json(s.focus);
                                         }),
                  // Last: every key the runner has not taken is the loss plugin's.
                  custom<StageConfig>(
                      string_spec("plugin", std::nullopt, {}, "the loss plugin"), "",
                      [](TableReader& r, StageConfig& s, const ReadContext& context) {
                        s.loss = read_plugin_table(r, sdk::PluginKind::Loss, plugins_of(context),
                                                   loss_keys().names());
                      },
                      [](const StageConfig& s, Json& out) { out.update(to_json(s.loss)); }),
              });
  return table;
}

const KeyTable<FocusConfig>& focus_keys() {
  static const KeyTable<FocusConfig> table(
      "loss.focus", {
                        field(int_spec("worst", std::nullopt, 1, 1000, "how many landmarks"),
                              &FocusConfig::worst),
                        field(number_spec("weight", 3.0, 0, 1000, "multiplies their loss weights"),
                              &FocusConfig::weight),
                    });
  return table;
}

const KeyTable<MemoryConfig>& memory_keys() {
  static const KeyTable<MemoryConfig> table(
      "memory",
      {
          custom<MemoryConfig>(
              custom_spec("strategies", ParamType::StringList, std::vector<std::string>{},
                          "memory plugins, applied in this order"),
              "", read_strategy_names, write_strategies),
          field(int_spec("effective_batch", 8, 1, kMaxEffectiveBatch, "images per optimiser step"),
                &MemoryConfig::effective_batch),
          custom<MemoryConfig>(int_spec("micro_batch", std::nullopt, 1, kNoMax,
                                        "images per forward/backward pass, or \"auto\""),
                               "= `effective_batch`", read_micro_batch,
                               [](const MemoryConfig& m, Json& out) {
                                 if (m.micro_batch_auto) {
                                   out["micro_batch"] = "auto";
                                 } else {
                                   out["micro_batch"] = m.micro_batch;
                                 }
                               }),
          custom<MemoryConfig>(
              custom_spec("budget", ParamType::String, std::nullopt,
                          "memory the batch tuner may plan for: bytes or \"6GiB\""),
              "CUDA: the device's free memory; CPU: **required**", read_budget,
              [](const MemoryConfig& m, Json& out) {
                if (m.micro_batch_auto && m.budget_bytes) out["budget"] = *m.budget_bytes;
              }),
          custom<MemoryConfig>(
              number_spec("margin", 0.1, 0.0, 0.9, "share of the budget kept free"), "",
              [](TableReader& r, MemoryConfig& m, const ReadContext&) {
                m.margin = r.number_or("margin", 0.1, 0.0, 0.9);
              },
              [](const MemoryConfig& m, Json& out) {
                if (m.micro_batch_auto) out["margin"] = m.margin;
              }),
          custom<MemoryConfig>(
              number_spec("speed_tolerance", 0.05, 0.0, 1.0,
                          "speeds within this share of the fastest count as equal"),
              "",
              [](TableReader& r, MemoryConfig& m, const ReadContext&) {
                m.speed_tolerance = r.number_or("speed_tolerance", 0.05, 0.0, 1.0);
              },
              [](const MemoryConfig& m, Json& out) {
                if (m.micro_batch_auto) out["speed_tolerance"] = m.speed_tolerance;
              }),
      });
  return table;
}

const KeyTable<OptimizerConfig>& optimizer_keys() {
  using O = OptimizerConfig;
  static const KeyTable<OptimizerConfig> table(
      "optimizer",
      {
          field(string_spec("name", "adam", {"adam", "adamw", "sgd"}, "the LibTorch optimiser"),
                &O::name),
          custom<O>(
              number_spec("lr", std::nullopt, 0, 10, "base learning rate, > 0"), "",
              [](TableReader& r, O& o, const ReadContext&) {
                o.lr = r.required_number("lr", 0, 10);
                if (o.lr == 0) r.fail("lr", "expected a learning rate > 0, found 0");
              },
              [](const O& o, Json& out) { out["lr"] = o.lr; }),
          custom<O>(
              number_spec("weight_decay", 0.0, 0, 1, "L2 (adam, sgd) or decoupled (adamw)"),
              "`0.0`, but `0.01` for adamw",
              [](TableReader& r, O& o, const ReadContext&) {
                o.weight_decay = r.number_or("weight_decay", o.name == "adamw" ? 1e-2 : 0.0, 0, 1);
              },
              [](const O& o, Json& out) { out["weight_decay"] = o.weight_decay; }),
          custom<O>(
              [] {
                sdk::ParamSpec spec =
                    custom_spec("betas", ParamType::FloatList, std::vector<double>{0.9, 0.999},
                                "adam's beta1, beta2, each in [0, 1)");
                spec.min = 0;
                spec.length = 2;
                return spec;
              }(),
              "",
              [](TableReader& r, O& o, const ReadContext&) {
                if (is_sgd(o)) return reject_other_optimizers_key(r, o, "betas");
                o.betas = r.number_list_or("betas", {0.9, 0.999}, 2, 0);
                for (double b : o.betas)
                  if (b >= 1) r.fail("betas", "expected two numbers in [0, 1)");
              },
              [](const O& o, Json& out) {
                if (!is_sgd(o)) out["betas"] = o.betas;
              }),
          custom<O>(
              number_spec("momentum", 0.9, 0, 1, "sgd's momentum"), "",
              [](TableReader& r, O& o, const ReadContext&) {
                if (!is_sgd(o)) return reject_other_optimizers_key(r, o, "momentum");
                o.momentum = r.number_or("momentum", 0.9, 0, 1);
              },
              [](const O& o, Json& out) {
                if (is_sgd(o)) out["momentum"] = o.momentum;
              }),
          custom<O>(
              bool_spec("nesterov", false, "sgd's Nesterov momentum"), "",
              [](TableReader& r, O& o, const ReadContext&) {
                if (!is_sgd(o)) return reject_other_optimizers_key(r, o, "nesterov");
                o.nesterov = r.bool_or("nesterov", false);
              },
              [](const O& o, Json& out) {
                if (is_sgd(o)) out["nesterov"] = o.nesterov;
              }),
          custom<O>(
              bool_spec("fused", true,
                        "adam and adamw: the step in one pass over each parameter (CPU)"),
              "",
              [](TableReader& r, O& o, const ReadContext&) {
                if (is_sgd(o)) return reject_other_optimizers_key(r, o, "fused");
                o.fused = r.bool_or("fused", true);
              },
              [](const O& o, Json& out) {
                if (!is_sgd(o)) out["fused"] = o.fused;
              }),
      });
  return table;
}

const KeyTable<ScheduleConfig>& schedule_keys() {
  static const KeyTable<ScheduleConfig> table(
      "schedule",
      {
          field(number_spec("warmup_epochs", 0.0, 0, 1e6, "linear warm-up, at most epochs"),
                &ScheduleConfig::warmup_epochs),
          field(string_spec("decay", "cosine", {"cosine", "constant"}, "after the warm-up"),
                &ScheduleConfig::decay),
          field(number_spec("min_lr", 0.0, 0, 10, "floor of the cosine, at most lr"),
                &ScheduleConfig::min_lr),
      });
  return table;
}

const KeyTable<EvalConfig>& eval_keys() {
  static const KeyTable<EvalConfig> table(
      "eval", {
                  field(string_spec("decode", "argmax", {"argmax", "dark"},
                                    "how heatmaps become coordinates"),
                        &EvalConfig::decode),
              });
  return table;
}

const KeyTable<CheckpointConfig>& checkpoint_keys() {
  using C = CheckpointConfig;
  static const KeyTable<CheckpointConfig> table(
      "checkpoint",
      {
          field(string_spec("monitor", "val_mre_mm", kMonitors, "the metric that picks best"),
                &C::monitor),
          custom<C>(
              string_spec("mode", "min", {"min", "max"}, "whether lower or higher is better"),
              "`\"max\"` for the SDR monitors, else `\"min\"`",
              [](TableReader& r, C& c, const ReadContext&) {
                // Detection rates are better high; errors and losses low.
                const std::string natural = c.monitor.rfind("val_sdr_", 0) == 0 ? "max" : "min";
                c.mode = r.string_or("mode", natural, {"min", "max"});
              },
              [](const C& c, Json& out) { out["mode"] = c.mode; }),
          // Which epoch_N files exist changes no weight: resume ignores both.
          field(int_spec("every", 0, 0, 1e6, "write epoch_N.pt every N epochs; 0: none"), &C::every,
                false),
          field(int_spec("keep_last", 0, 0, 1e6, "epoch_N.pt files kept; 0: all"), &C::keep_last,
                false),
      });
  return table;
}

const KeyInfo* TableInfo::find(const std::string& name) const {
  for (const auto& key : keys)
    if (key.spec.name == name) return &key;
  return nullptr;
}

const std::vector<TableInfo>& runner_key_reference() {
  static const std::vector<TableInfo> tables = {
      {experiment_keys().path(), experiment_keys().infos()},
      {stage_keys().path(), stage_keys().infos()},
      {data_keys().path(), data_keys().infos()},
      {augment_keys().path(), augment_keys().infos()},
      {loss_keys().path(), loss_keys().infos()},
      {focus_keys().path(), focus_keys().infos()},
      {memory_keys().path(), memory_keys().infos()},
      {optimizer_keys().path(), optimizer_keys().infos()},
      {schedule_keys().path(), schedule_keys().infos()},
      {eval_keys().path(), eval_keys().infos()},
      {checkpoint_keys().path(), checkpoint_keys().infos()},
  };
  return tables;
}

const TableInfo* find_stage_table(const std::string& path) {
  for (const auto& table : runner_key_reference())
    if (table.path == path && path != experiment_keys().path()) return &table;
  return nullptr;
}

StageConfig read_stage_keys(const LayeredTable& table, const ReadContext& context) {
  TableReader r(table);
  StageConfig out;
  out.where = describe_source(table.where());
  stage_keys().read(r, out, context);
  if (out.focus.worst > 0 && out.init.empty()) {
    throw ConfigError(out.focus.where + ": " + r.key_path("loss") +
                      ".focus: focus ranks the landmarks of the stage this one starts from, but "
                      "the stage has no init (e.g. init = \"pretrain:best\")");
  }
  r.reject_unknown();
  return out;
}

void read_experiment_keys(TableReader& reader, Experiment& out) {
  experiment_keys().read(reader, out, {});
  reader.reject_unknown();
}

}  // namespace exprun

#include "config/experiment_loader.hpp"

#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "config/byte_size.hpp"
#include "config/checkpoint_path.hpp"
#include "config/config_error.hpp"
#include "config/names.hpp"
#include "config/table_reader.hpp"
#include "config/toml_limits.hpp"
#include "util/text.hpp"

namespace exprun {
namespace {

const std::vector<std::string> kStageKeys = {"name",     "epochs", "device", "data",
                                             "model",    "loss",   "memory", "optimizer",
                                             "schedule", "eval",   "init",   "checkpoint"};
// Largest data.image_size side. HRNet's activations at 8192 x 8192 already take tens of GiB
// per image; a larger value is a typo, and would overflow the tensor sizes computed from it.
constexpr std::int64_t kMaxImageSide = 8192;
const std::vector<std::string> kDataRunnerKeys = {
    "plugin", "image_size", "sigma", "workers", "channels", "train_split", "val_split", "augment"};

// --set arguments, parsed into small TOML documents that act as the highest layers.
struct Overrides {
  std::deque<toml::table> docs;  // deque: layers point into it
  std::vector<const toml::table*> experiment, defaults, every_stage;
  std::vector<std::pair<std::string, const toml::table*>> one_stage;  // stage name, layer
  std::vector<std::pair<std::string, std::string>> stage_names_used;  // name, argument
};

toml::table parse_override_value(const std::string& key, const std::string& value,
                                 const std::string& argument) {
  const std::string source = "--set " + argument;
  check_toml_limits(key + " = " + value, source);
  try {
    return toml::parse(key + " = " + value, source);
  } catch (const toml::parse_error&) {
    // Not a TOML value: take it as a string, so that --set data.root=data/Aariz works unquoted.
  }
  std::string escaped;
  for (char c : value) {
    if (c == '"' || c == '\\') escaped += '\\';
    escaped += c;
  }
  try {
    return toml::parse(key + " = \"" + escaped + "\"", source);
  } catch (const toml::parse_error& e) {
    throw ConfigError(source + ": cannot read '" + key + "' as a key path (" +
                      std::string(e.description()) + ")");
  }
}

Overrides parse_overrides(const std::vector<std::string>& arguments) {
  Overrides out;
  // Later arguments win, so each layer list is built latest first.
  for (auto it = arguments.rbegin(); it != arguments.rend(); ++it) {
    const std::string& argument = *it;
    const auto eq = argument.find('=');
    if (eq == std::string::npos || eq == 0) {
      throw ConfigError("--set " + argument + ": expected key.path=value, e.g. --set epochs=2");
    }
    std::string key = argument.substr(0, eq);
    const std::string value = argument.substr(eq + 1);
    auto starts = [&](const std::string& prefix) { return key.rfind(prefix, 0) == 0; };
    if (starts("experiment.")) {
      out.docs.push_back(parse_override_value(key.substr(11), value, argument));
      out.experiment.push_back(&out.docs.back());
    } else if (starts("defaults.")) {
      out.docs.push_back(parse_override_value(key.substr(9), value, argument));
      // As in the file's [defaults]: every stage would take this name.
      if (out.docs.back().contains("name")) {
        throw ConfigError("--set " + argument +
                          ": defaults.name: a stage's name cannot be inherited; rename one stage "
                          "with --set stages.<stage name>.name=NEW");
      }
      out.defaults.push_back(&out.docs.back());
    } else if (starts("stages.")) {
      const auto dot = key.find('.', 7);
      if (dot == std::string::npos) {
        throw ConfigError(
            "--set " + argument +
            ": expected stages.<stage name>.<key>=value, e.g. stages.finetune.epochs=2");
      }
      const std::string stage = key.substr(7, dot - 7);
      out.docs.push_back(parse_override_value(key.substr(dot + 1), value, argument));
      out.one_stage.emplace_back(stage, &out.docs.back());
      out.stage_names_used.emplace_back(stage, argument);
    } else {
      out.docs.push_back(parse_override_value(key, value, argument));
      out.every_stage.push_back(&out.docs.back());
    }
  }
  return out;
}

// A TOML value as a plugin parameter; the spec check that follows decides if it is right.
std::optional<sdk::ParamValue> to_param_value(const toml::node& node) {
  if (node.is_boolean()) return sdk::ParamValue(node.as_boolean()->get());
  if (node.is_integer()) return sdk::ParamValue(node.as_integer()->get());
  if (node.is_floating_point()) return sdk::ParamValue(node.as_floating_point()->get());
  if (node.is_string()) return sdk::ParamValue(std::string(node.as_string()->get()));
  if (const auto* array = node.as_array()) {
    if (array->empty()) return sdk::ParamValue(std::vector<double>{});
    if (array->is_homogeneous(toml::node_type::integer)) {
      std::vector<std::int64_t> ints;
      for (const auto& item : *array) ints.push_back(item.as_integer()->get());
      return sdk::ParamValue(std::move(ints));
    }
    if (array->is_homogeneous(toml::node_type::string)) {
      std::vector<std::string> strings;
      for (const auto& item : *array) strings.emplace_back(item.as_string()->get());
      return sdk::ParamValue(std::move(strings));
    }
    std::vector<double> numbers;
    for (const auto& item : *array) {
      if (item.is_integer()) {
        numbers.push_back(static_cast<double>(item.as_integer()->get()));
      } else if (item.is_floating_point()) {
        numbers.push_back(item.as_floating_point()->get());
      } else {
        return std::nullopt;
      }
    }
    return sdk::ParamValue(std::move(numbers));
  }
  if (const auto* table = node.as_table()) {
    std::map<std::string, double> map;
    for (const auto& [key, item] : *table) {
      if (item.is_integer()) {
        map[std::string(key.str())] = static_cast<double>(item.as_integer()->get());
      } else if (item.is_floating_point()) {
        map[std::string(key.str())] = item.as_floating_point()->get();
      } else {
        return std::nullopt;
      }
    }
    return sdk::ParamValue(std::move(map));
  }
  return std::nullopt;
}

std::vector<std::string> schema_names(const sdk::ParamSchema& schema) {
  std::vector<std::string> names;
  for (const auto& spec : schema.specs()) names.push_back(spec.name);
  return names;
}

// Reads the plugin's own parameters: every key of `reader` not yet taken by the runner.
sdk::Params read_plugin_params(TableReader& reader, const sdk::ParamSchema& schema,
                               const std::string& full_name,
                               const std::vector<std::string>& runner_keys) {
  std::map<std::string, sdk::ParamValue> given;
  for (const auto& key : reader.unread()) {
    const sdk::ParamSpec* spec = schema.find(key);
    if (!spec) {
      std::vector<std::string> candidates = schema_names(schema);
      candidates.insert(candidates.end(), runner_keys.begin(), runner_keys.end());
      reader.fail(key, "unknown key '" + key + "': " + full_name + " has no such parameter" +
                           did_you_mean(key, candidates) + " (exprun describe " + full_name +
                           " lists them)");
    }
    const toml::node* node = reader.take(key);
    auto value = to_param_value(*node);
    if (!value) {
      reader.fail(key,
                  "expected " + sdk::type_name(spec->type) + ", found " + describe_node(*node));
    }
    if (auto error = sdk::check_and_convert(*spec, *value)) reader.fail(key, *error);
    given[key] = std::move(*value);
  }
  for (const auto& spec : schema.specs()) {
    if (spec.required() && !given.count(spec.name)) {
      fail_at(reader.layered().where(), reader.layered().path(),
              "missing required parameter '" + spec.name + "' of " + full_name + " (" +
                  sdk::type_name(spec.type) + ": " + spec.doc + ")");
    }
  }
  try {
    return sdk::Params::resolve(schema, std::move(given));
  } catch (const sdk::ParamError& e) {
    fail_at(reader.layered().where(), reader.layered().path(), e.what());
  }
}

PluginChoice read_plugin_table(TableReader& reader, sdk::PluginKind kind,
                               const SchemaSource& plugins,
                               const std::vector<std::string>& runner_keys) {
  PluginChoice choice;
  choice.kind = kind;
  choice.key_path = reader.layered().path();
  choice.where = describe_source(reader.layered().where());
  if (reader.layered().empty()) {
    fail_at(reader.layered().where(), reader.layered().path(),
            "missing required table (needs at least plugin = \"...\"; `exprun plugins " +
                std::string(sdk::kind_folder(kind)) + "` lists the choices)");
  }
  choice.name = reader.required_string("plugin");
  sdk::ParamSchema schema;
  try {
    schema = plugins.schema(kind, choice.name);
  } catch (const std::runtime_error& e) {
    reader.fail("plugin", e.what());
  }
  const std::string full_name = std::string(sdk::kind_folder(kind)) + "/" + choice.name;
  choice.params = read_plugin_params(reader, schema, full_name, runner_keys);
  return choice;
}

AugmentConfig read_augment(TableReader& data) {
  AugmentConfig out;
  const toml::node* node = data.take("augment");
  if (!node) return out;
  if (node->is_boolean()) {
    out.enabled = node->as_boolean()->get();
    return out;
  }
  if (!node->is_table()) {
    data.fail("augment", "expected true, false or a table { rotation = 10.0, ... }, found " +
                             describe_node(*node));
  }
  TableReader r(data.layered().sub_table("augment"));
  out.enabled = r.bool_or("enabled", out.enabled);
  out.rotation_deg = r.number_or("rotation", out.rotation_deg, 0, 180);
  out.scale = r.number_or("scale", out.scale, 0, 0.9);
  out.shift = r.number_or("shift", out.shift, 0, 0.5);
  out.brightness = r.number_or("brightness", out.brightness, 0, 1);
  out.contrast = r.number_or("contrast", out.contrast, 0, 0.9);
  out.gamma = r.number_or("gamma", out.gamma, 0, 0.9);
  out.clahe = r.number_or("clahe", out.clahe, 0, 1);
  out.clahe_clip = r.number_or("clahe_clip", out.clahe_clip, 0.1, 100);
  out.clahe_tiles = r.int_or("clahe_tiles", out.clahe_tiles, 1, 64);
  if (r.has("flip")) {
    r.fail("flip",
           "exprun does not flip: lateral cephalograms are not left-right symmetric, so a "
           "flipped film is not a plausible film (and landmark sides would swap)");
  }
  r.reject_unknown();
  return out;
}

// loss.weights = { Go = 3.0, Ar = 3.0 }: a runner key, so that every loss plugin gets the
// weights the same way (as Loss::compute's landmark_weights). Symbols are checked at build
// time, against the dataset.
LandmarkWeights read_landmark_weights(TableReader& loss) {
  LandmarkWeights out;
  out.key_path = loss.key_path("weights");
  const toml::node* node = loss.take("weights");
  if (!node) return out;
  if (!node->is_table()) {
    loss.fail("weights", "expected a table of landmark symbol = weight, e.g. { Go = 3.0 }, found " +
                             describe_node(*node));
  }
  TableReader weights(loss.layered().sub_table("weights"));
  for (const auto& symbol : weights.unread()) {
    out.where[symbol] = describe_source(weights.layered().find(symbol)->source());
    out.by_symbol[symbol] = weights.required_number(symbol, 0, 1000);
  }
  return out;
}

DataConfig read_data(TableReader& stage, const SchemaSource& plugins) {
  DataConfig out;
  TableReader r(stage.table("data"));
  const auto size = r.int_list_or("image_size", {out.input_width, out.input_height}, 2, 16,
                                  static_cast<double>(kMaxImageSide));
  out.input_width = size[0];
  out.input_height = size[1];
  out.sigma = r.number_or("sigma", out.sigma, 0.1, 64);
  out.workers = r.int_or("workers", out.workers, 0, 64);
  out.channels = r.int_or("channels", out.channels, 1, 3);
  if (out.channels == 2) r.fail("channels", "expected 1 (grey) or 3 (grey repeated), found 2");
  out.train_split = r.string_or("train_split", out.train_split);
  out.val_split = r.string_or("val_split", out.val_split);
  out.augment = read_augment(r);
  out.reader = read_plugin_table(r, sdk::PluginKind::Dataset, plugins, kDataRunnerKeys);
  return out;
}

MemoryConfig read_memory(TableReader& stage, const SchemaSource& plugins) {
  MemoryConfig out;
  TableReader r(stage.table("memory"));
  const auto names = r.string_list_or("strategies", {});
  out.effective_batch = r.int_or("effective_batch", out.effective_batch, 1, 1 << 20);
  out.micro_batch = out.effective_batch;
  if (const toml::node* micro = r.take("micro_batch")) {
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
  if (const toml::node* budget = r.take("budget")) {
    const auto bytes = parse_byte_size(*budget);
    if (!bytes) {
      r.fail("budget",
             "expected a memory size: bytes as an integer, or a string such as "
             "\"6GiB\", \"512MiB\" or \"8GB\", found " +
                 describe_node(*budget));
    }
    out.budget_bytes = *bytes;
  }
  out.margin = r.number_or("margin", out.margin, 0.0, 0.9);
  if (!out.micro_batch_auto) {
    for (const char* key : {"budget", "margin"}) {
      if (r.layered().find(key)) {
        r.fail(key, std::string("only applies to micro_batch = \"auto\" (the batch tuner); set "
                                "micro_batch = \"auto\" or remove ") +
                        key);
      }
    }
  }
  std::set<std::string> seen;
  for (const auto& name : names) {
    if (!seen.insert(name).second) r.fail("strategies", "lists \"" + name + "\" twice");
    PluginChoice choice;
    choice.kind = sdk::PluginKind::Memory;
    choice.name = name;
    choice.key_path = r.key_path(name);
    sdk::ParamSchema schema;
    try {
      schema = plugins.schema(sdk::PluginKind::Memory, name);
    } catch (const std::runtime_error& e) {
      r.fail("strategies", e.what());
    }
    TableReader params(r.table(name));
    choice.where = describe_source(params.layered().where());
    choice.params = read_plugin_params(params, schema, "memory/" + name, {});
    out.strategies.push_back(std::move(choice));
  }
  for (const auto& key : r.unread()) {
    const toml::node* node = r.layered().find(key);
    if (node && node->is_table()) {
      r.fail(key, "configures a strategy that memory.strategies does not list (add \"" + key +
                      "\" to memory.strategies, or remove this table)");
    }
  }
  r.reject_unknown();
  return out;
}

OptimizerConfig read_optimizer(TableReader& stage) {
  OptimizerConfig out;
  TableReader r(stage.table("optimizer"));
  if (r.layered().empty()) {
    stage.fail("optimizer",
               "missing required table (e.g. optimizer = { name = \"adam\", lr = 1e-3 })");
  }
  out.name = r.string_or("name", out.name, {"adam", "adamw", "sgd"});
  out.lr = r.required_number("lr", 0, 10);
  if (out.lr == 0) r.fail("lr", "expected a learning rate > 0, found 0");
  out.weight_decay = r.number_or("weight_decay", out.name == "adamw" ? 1e-2 : 0.0, 0, 1);
  if (out.name == "sgd") {
    out.momentum = r.number_or("momentum", out.momentum, 0, 1);
    out.nesterov = r.bool_or("nesterov", out.nesterov);
    if (r.has("betas")) {
      r.fail("betas",
             "'betas' is a setting of adam and adamw, but optimizer.name is \"sgd\" "
             "(sgd takes momentum and nesterov)");
    }
    r.reject_unknown();
  } else {
    out.betas = r.number_list_or("betas", out.betas, 2, 0);
    for (double b : out.betas)
      if (b >= 1) r.fail("betas", "expected two numbers in [0, 1)");
    for (const char* key : {"momentum", "nesterov"}) {
      if (r.has(key)) {
        r.fail(key, "'" + std::string(key) + "' is a setting of sgd, but optimizer.name is \"" +
                        out.name + "\" (adam and adamw take betas)");
      }
    }
    r.reject_unknown();
  }
  return out;
}

ScheduleConfig read_schedule(TableReader& stage, std::int64_t epochs, double lr) {
  ScheduleConfig out;
  TableReader r(stage.table("schedule"));
  out.warmup_epochs = r.number_or("warmup_epochs", out.warmup_epochs, 0, 1e6);
  if (out.warmup_epochs > static_cast<double>(epochs)) {
    r.fail("warmup_epochs", "expected at most the stage's " + std::to_string(epochs) +
                                " epochs, found " + format_number(out.warmup_epochs));
  }
  out.decay = r.string_or("decay", out.decay, {"cosine", "constant"});
  out.min_lr = r.number_or("min_lr", out.min_lr, 0, 10);
  // The cosine runs from lr down to min_lr; above lr it would run upwards. "constant" ignores
  // min_lr.
  if (out.decay == "cosine" && out.min_lr > lr) {
    r.fail("min_lr", "expected at most the stage's optimizer.lr (" + format_number(lr) +
                         ") with decay = \"cosine\", found " + format_number(out.min_lr));
  }
  r.reject_unknown();
  return out;
}

EvalConfig read_eval(TableReader& stage) {
  EvalConfig out;
  TableReader r(stage.table("eval"));
  out.decode = r.string_or("decode", out.decode, {"argmax", "dark"});
  r.reject_unknown();
  return out;
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
// against the other stages once all are read (check_stage_chain).
StageInit read_init(TableReader& stage) {
  StageInit out;
  const toml::node* node = stage.take("init");
  if (!node) return out;
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
  return out;
}

FocusConfig read_focus(TableReader& loss) {
  FocusConfig out;
  const toml::node* node = loss.take("focus");
  if (!node) return out;
  out.where = describe_source(node->source());
  if (!node->is_table()) {
    loss.fail("focus",
              "expected a table { worst = 12, weight = 3.0 }, found " + describe_node(*node));
  }
  TableReader r(loss.layered().sub_table("focus"));
  // A misspelt key is named before "worst" is reported missing.
  r.allow({"worst", "weight"});
  r.reject_unknown();
  out.worst = r.required_int("worst", 1, 1000);
  out.weight = r.number_or("weight", 3.0, 0, 1000);
  return out;
}

const std::vector<std::string> kMonitors = {"val_mre_mm",    "val_sd_mm",   "val_sdr_2mm",
                                            "val_sdr_2.5mm", "val_sdr_3mm", "val_sdr_4mm",
                                            "train_loss"};

CheckpointConfig read_checkpoint(TableReader& stage) {
  CheckpointConfig out;
  TableReader r(stage.table("checkpoint"));
  out.monitor = r.string_or("monitor", out.monitor, kMonitors);
  // Detection rates are better high; errors and losses low.
  const std::string natural = out.monitor.rfind("val_sdr_", 0) == 0 ? "max" : "min";
  out.mode = r.string_or("mode", natural, {"min", "max"});
  out.every = r.int_or("every", out.every, 0, 1e6);
  out.keep_last = r.int_or("keep_last", out.keep_last, 0, 1e6);
  if (out.keep_last > 0 && out.every == 0) {
    r.fail("keep_last",
           "keep_last counts epoch_N checkpoints, but checkpoint.every is 0 (none "
           "are written); set every = N as well");
  }
  r.reject_unknown();
  return out;
}

std::string read_device(TableReader& stage) {
  std::string device = stage.string_or("device", "auto");
  const bool numbered = device.rfind("cuda:", 0) == 0 && device.size() > 5 &&
                        device.find_first_not_of("0123456789", 5) == std::string::npos;
  if (device != "auto" && device != "cpu" && device != "cuda" && !numbered) {
    stage.fail("device", "expected \"auto\", \"cpu\", \"cuda\" or \"cuda:N\", found " +
                             quote_for_message(device));
  }
  return device;
}

StageConfig read_stage(const LayeredTable& table, const SchemaSource& plugins) {
  TableReader r(table);
  StageConfig out;
  out.where = describe_source(table.where());
  out.name = r.required_string("name");
  if (!is_stage_name(out.name)) {
    r.fail("name", "expected " + stage_name_rule() + ", found " + quote_for_message(out.name));
  }
  out.epochs = r.required_int("epochs", 1, 1e6);
  out.device = read_device(r);
  out.data = read_data(r, plugins);
  TableReader model(r.table("model"));
  out.model = read_plugin_table(model, sdk::PluginKind::Model, plugins, {"plugin"});
  model.reject_unknown();
  TableReader loss(r.table("loss"));
  out.loss_weights = read_landmark_weights(loss);
  out.focus = read_focus(loss);
  out.loss =
      read_plugin_table(loss, sdk::PluginKind::Loss, plugins, {"plugin", "weights", "focus"});
  loss.reject_unknown();
  out.memory = read_memory(r, plugins);
  out.optimizer = read_optimizer(r);
  out.schedule = read_schedule(r, out.epochs, out.optimizer.lr);
  out.eval = read_eval(r);
  out.init = read_init(r);
  out.checkpoint = read_checkpoint(r);
  if (out.focus.worst > 0 && out.init.empty()) {
    throw ConfigError(out.focus.where + ": " + loss.key_path("focus") +
                      ": focus ranks the landmarks of the stage this one starts from, but the "
                      "stage has no init (e.g. init = \"pretrain:best\")");
  }
  r.reject_unknown();
  return out;
}

// Stages run in file order, so a stage can only start from one that runs before it. A cycle is
// named as such (it is the likelier mistake than a misordering); a checkpoint path must exist.
void check_stage_chain(const std::vector<StageConfig>& stages) {
  std::map<std::string, std::size_t> position;
  std::vector<std::string> names;
  for (std::size_t i = 0; i < stages.size(); ++i) {
    position[stages[i].name] = i;
    names.push_back(stages[i].name);
  }
  for (std::size_t i = 0; i < stages.size(); ++i) {
    const StageInit& init = stages[i].init;
    const std::string where = init.where + ": stages." + stages[i].name + ".init: ";
    if (init.empty()) continue;
    if (!init.path.empty()) {
      const CheckpointPathStatus found = look_up_checkpoint_path(init.path);
      if (!found.problem.empty()) throw ConfigError(where + found.problem);
      if (!std::filesystem::is_regular_file(found.status)) {
        throw ConfigError(where + "no checkpoint file " + quote_for_message(init.path, 120) +
                          " (expected \"STAGE:best\", \"STAGE:latest\" or the path of a .pt "
                          "checkpoint, relative to the working directory)");
      }
      continue;
    }
    const auto found = position.find(init.from_stage);
    if (found == position.end()) {
      throw ConfigError(where + "no stage is named " + quote_for_message(init.from_stage) +
                        did_you_mean(init.from_stage, names) + " (stages: " + join(names, ", ") +
                        ")");
    }
    // Follow the chain from this stage; coming back to it is a cycle.
    std::vector<std::string> chain = {stages[i].name};
    std::size_t at = found->second;
    while (true) {
      chain.push_back(stages[at].name);
      if (at == i) {
        throw ConfigError(where +
                          "the stages start from each other in a cycle: " + join(chain, " -> "));
      }
      const StageInit& next = stages[at].init;
      if (next.from_stage.empty() || !position.count(next.from_stage)) break;
      at = position[next.from_stage];
      if (chain.size() > stages.size() + 1) break;
    }
    if (found->second > i) {
      throw ConfigError(where + "stage \"" + init.from_stage + "\" runs after \"" + stages[i].name +
                        "\" (stages run in file order); move it before");
    }
  }
}

}  // namespace

std::string read_experiment_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ConfigError(path + ": cannot open the experiment file");
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

Experiment parse_experiment(const std::string& text, const std::string& source_name,
                            const std::vector<std::string>& override_args,
                            const SchemaSource& plugins) {
  check_toml_limits(text, source_name);
  toml::table doc;
  try {
    doc = toml::parse(text, source_name);
  } catch (const toml::parse_error& e) {
    fail_at(e.source(), "", "TOML syntax error: " + std::string(e.description()));
  }
  const Overrides overrides = parse_overrides(override_args);

  Experiment out;
  out.source_file = source_name;
  out.source_text = text;
  out.overrides = override_args;

  TableReader top(LayeredTable({&doc}, ""));
  const toml::node* stage_node = top.take("stage");
  {
    std::vector<const toml::table*> layers = overrides.experiment;
    if (const toml::node* e = top.take("experiment")) {
      if (!e->is_table()) top.fail("experiment", "expected a table [experiment]");
      layers.push_back(e->as_table());
    }
    TableReader r(LayeredTable(layers, "experiment"));
    if (!top.has("experiment")) {
      fail_at(doc.source(), "experiment",
              "missing required table [experiment] with name = \"...\"");
    }
    out.name = r.required_string("name");
    if (!is_experiment_name(out.name)) {
      r.fail("name",
             "expected " + experiment_name_rule() + ", found " + quote_for_message(out.name));
    }
    out.seed = static_cast<std::uint64_t>(r.int_or("seed", 0, 0, 9.0e15));
    out.threads = r.int_or("threads", 0, 0, 1024);
    out.output_dir = r.string_or("output", out.output_dir);
    out.description = r.string_or("description", "");
    r.reject_unknown();
  }

  std::vector<const toml::table*> default_layers = overrides.defaults;
  if (const toml::node* d = top.take("defaults")) {
    if (!d->is_table()) top.fail("defaults", "expected a table [defaults]");
    const toml::table* defaults = d->as_table();
    if (defaults->contains("name")) {
      fail_at(defaults->get("name")->source(), "defaults.name",
              "a stage's name cannot be inherited; give each [[stage]] its own name");
    }
    TableReader check(LayeredTable({defaults}, "defaults"));
    check.allow(kStageKeys);
    check.reject_unknown();
    default_layers.push_back(defaults);
  }
  // [sweep] belongs to the sweep runner (sweep/sweep_spec.hpp), which applies each trial as
  // --set overrides; one configuration is the file without it.
  top.allow({"sweep"});
  top.reject_unknown();

  if (!stage_node) {
    fail_at(doc.source(), "stage", "missing [[stage]]: an experiment needs at least one stage");
  }
  if (!stage_node->is_array_of_tables()) {
    top.fail("stage", "expected one or more [[stage]] tables, found " + describe_node(*stage_node));
  }
  std::set<std::string> names;
  std::size_t stage_index = 0;
  for (const auto& item : *stage_node->as_array()) {
    const toml::table* stage = item.as_table();
    std::string stage_name;
    if (const auto* n = stage->get("name"); n && n->is_string()) stage_name = n->as_string()->get();
    // A stage without a usable name is named by its position, as TOML paths write it.
    const std::string stage_path = is_stage_name(stage_name)
                                       ? "stages." + stage_name
                                       : "stage[" + std::to_string(stage_index) + "]";
    ++stage_index;
    std::vector<const toml::table*> layers;
    for (const auto& [name, layer] : overrides.one_stage)
      if (name == stage_name) layers.push_back(layer);
    layers.insert(layers.end(), overrides.every_stage.begin(), overrides.every_stage.end());
    layers.push_back(stage);
    layers.insert(layers.end(), default_layers.begin(), default_layers.end());
    StageConfig config = read_stage(LayeredTable(layers, stage_path), plugins);
    if (!names.insert(config.name).second) {
      fail_at(stage->source(), "stages." + config.name,
              "two stages are named \"" + config.name + "\"; stage names must be unique");
    }
    out.stages.push_back(std::move(config));
  }
  for (const auto& [name, argument] : overrides.stage_names_used) {
    if (!names.count(name)) {
      throw ConfigError("--set " + argument + ": no stage is named " + quote_for_message(name) +
                        did_you_mean(name, {names.begin(), names.end()}));
    }
  }
  check_stage_chain(out.stages);
  return out;
}

Experiment load_experiment(const std::string& path, const std::vector<std::string>& overrides,
                           const SchemaSource& plugins) {
  return parse_experiment(read_experiment_file(path), path, overrides, plugins);
}

}  // namespace exprun

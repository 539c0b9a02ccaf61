#include "config/experiment_loader.hpp"

#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "config/checkpoint_path.hpp"
#include "config/config_error.hpp"
#include "config/names.hpp"
#include "config/runner_keys.hpp"
#include "config/table_reader.hpp"
#include "config/toml_limits.hpp"
#include "util/file_kind.hpp"
#include "util/text.hpp"

namespace exprun {
namespace {

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

StageConfig read_stage(const LayeredTable& table, const SchemaSource& plugins) {
  return read_stage_keys(table, ReadContext{&plugins});
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
  // A folder reads as an empty file ("missing required table [experiment]"). A pipe is fine:
  // `exprun plan <(sed ... exp.toml)`.
  if (irregular_file_kind(path) == "a folder") {
    throw ConfigError(path + ": is a folder; expected an experiment file (.toml)");
  }
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
    read_experiment_keys(r, out);
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
    check.allow(stage_keys().names());
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
  // --set stages.NAME.KEY names a stage as the file does, also when it renames it
  // (stages.NAME.name=NEW).
  std::set<std::string> file_names;
  std::size_t stage_index = 0;
  for (const auto& item : *stage_node->as_array()) {
    const toml::table* stage = item.as_table();
    std::string stage_name;
    if (const auto* n = stage->get("name"); n && n->is_string()) stage_name = n->as_string()->get();
    file_names.insert(stage_name);
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
    if (!file_names.count(name)) {
      throw ConfigError("--set " + argument + ": no stage is named " + quote_for_message(name) +
                        did_you_mean(name, {file_names.begin(), file_names.end()}));
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

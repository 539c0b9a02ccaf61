#include "sweep/sweep_loader.hpp"

#include <toml++/toml.h>

#include <algorithm>

#include <nlohmann/json.hpp>

#include "config/config_error.hpp"
#include "config/toml_limits.hpp"
#include "util/text.hpp"

namespace exprun {

SweepFile read_sweep_file(const std::string& path) {
  SweepFile file;
  file.path = path;
  file.text = read_experiment_file(path);
  // Before TOML++ and read_sweep's walk over [sweep] recurse into it.
  check_toml_limits(file.text, path);
  toml::table doc;
  try {
    doc = toml::parse(file.text, path);
  } catch (const toml::parse_error& e) {
    fail_at(e.source(), "", "TOML syntax error: " + std::string(e.description()));
  }
  file.spec = read_sweep(doc);
  return file;
}

std::string trial_values_text(const SweepTrial& trial) { return join(trial.set_arguments(), ", "); }

std::string trial_error(const SweepTrial& trial, const std::string& message) {
  return "sweep trial " + std::to_string(trial.index) + " (" + trial_values_text(trial) +
         "): " + message;
}

namespace {

// Loads the file with `arguments` as its --set overrides, naming the trial in any error.
Experiment parse_trial(const SweepFile& file, const SweepTrial& trial,
                       const std::vector<std::string>& arguments, const SchemaSource& plugins) {
  try {
    return parse_experiment(file.text, file.path, arguments, plugins);
  } catch (const ConfigError& e) {
    const std::string message = e.what();
    for (const auto& value : trial.values) {
      // The loader names an override's position as "--set ARGUMENT".
      const std::string applied_as = "--set " + value.set_argument() + ": ";
      if (message.rfind(applied_as, 0) == 0) {
        throw ConfigError("sweep trial " + std::to_string(trial.index) + " (" +
                          value.set_argument() + "): " + value.where + ": " +
                          message.substr(applied_as.size()));
      }
    }
    throw ConfigError(trial_error(trial, message));
  }
}

// The resolved configuration without the --set list, which names every swept value.
nlohmann::json resolved_settings(const Experiment& experiment) {
  nlohmann::json settings = to_json(experiment);
  settings.erase("overrides");
  return settings;
}

// A swept key that a more specific one overrides wherever it would apply (a stages.NAME key
// given by --set or swept too, or the stage's own value under a swept defaults key) changes
// nothing: the sweep would run identical trials and report values that none of them used. The
// precedence itself is the documented one, so this is checked by its effect: trial 0 loaded
// again with only that key's value changed must resolve differently.
void check_every_axis_takes_effect(const SweepFile& file, const std::vector<std::string>& overrides,
                                   const SchemaSource& plugins) {
  const SweepSpec& spec = file.spec.value();
  const SweepTrial first = spec.trials().front();
  nlohmann::json settings;
  try {
    settings = resolved_settings(load_trial(file, first, overrides, plugins));
  } catch (const ConfigError&) {
    return;  // reported where trial 0 loads, if it is chosen; another chosen one may be fine
  }
  for (std::size_t i = 0; i < first.values.size(); ++i) {
    const SweepValue& taken = first.values[i];
    const SweepAxis* axis = nullptr;
    for (const auto* table : {&spec.zip, &spec.grid})
      for (const auto& a : *table)
        if (a.key == taken.key) axis = &a;
    if (axis == nullptr) continue;
    const auto other = std::find_if(axis->values.begin(), axis->values.end(),
                                    [&](const std::string& v) { return v != taken.value; });
    if (other == axis->values.end()) continue;  // one value, however often listed
    SweepTrial changed = first;
    changed.values[i].value = *other;
    nlohmann::json changed_settings;
    try {
      changed_settings = resolved_settings(load_trial(file, changed, overrides, plugins));
    } catch (const ConfigError&) {
      // Not a trial of the sweep (a zip row's keys move together): its errors are not the
      // sweep's. The trials themselves are checked when they load.
      continue;
    }
    if (changed_settings != settings) continue;
    throw ConfigError(axis->where + ": sweep." + axis->table + "." + axis->key +
                      ": changes nothing: trial 0 with " + axis->key + "=" + *other +
                      " in place of " + taken.value +
                      " resolves to the same configuration, because a more specific key "
                      "overrides it in every stage (a stages.NAME key given by --set or swept, "
                      "or the stage's own value under a defaults key); sweep that key instead");
  }
}

}  // namespace

Experiment load_trial(const SweepFile& file, const SweepTrial& trial,
                      const std::vector<std::string>& overrides, const SchemaSource& plugins) {
  std::vector<std::string> arguments = overrides;
  for (const auto& argument : trial.set_arguments()) arguments.push_back(argument);
  return parse_trial(file, trial, arguments, plugins);
}

std::vector<LoadedTrial> load_trials(const SweepFile& file, const std::vector<std::size_t>& chosen,
                                     const std::vector<std::string>& overrides,
                                     const SchemaSource& plugins) {
  const SweepSpec& spec = file.spec.value();
  check_sweep_against_overrides(spec, overrides);
  check_every_axis_takes_effect(file, overrides, plugins);
  const std::vector<SweepTrial> trials = spec.trials();
  // Trials run in index order, each once, however --trial listed them.
  std::vector<std::size_t> indices = chosen;
  std::sort(indices.begin(), indices.end());
  indices.erase(std::unique(indices.begin(), indices.end()), indices.end());
  if (indices.empty()) {
    for (std::size_t i = 0; i < trials.size(); ++i) indices.push_back(i);
  }
  for (const std::size_t index : indices) {
    if (index >= trials.size()) {
      throw ConfigError("--trial " + std::to_string(index) + ": " + file.path + " sweeps " +
                        std::to_string(trials.size()) + " trials, numbered 0 to " +
                        std::to_string(trials.size() - 1));
    }
  }
  std::vector<LoadedTrial> out;
  for (const std::size_t index : indices) {
    out.push_back({trials[index], load_trial(file, trials[index], overrides, plugins)});
  }
  return out;
}

Experiment load_first_trial(const std::string& path, const std::vector<std::string>& overrides,
                            const SchemaSource& plugins, bool* swept) {
  const SweepFile file = read_sweep_file(path);
  if (swept) *swept = file.spec.has_value();
  if (!file.spec) return parse_experiment(file.text, file.path, overrides, plugins);
  const SweepTrial first = file.spec->trials().front();
  // Later overrides win, so the user's --set come after the trial's values here.
  std::vector<std::string> arguments = first.set_arguments();
  arguments.insert(arguments.end(), overrides.begin(), overrides.end());
  return parse_trial(file, first, arguments, plugins);
}

}  // namespace exprun

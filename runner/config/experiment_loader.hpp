// Reads an experiment file into a validated Experiment: TOML syntax, the schema of the runner's
// own keys, every plugin's declared parameters, defaults inherited key by key, --set overrides.
#pragma once

#include <exprun/sdk/params.hpp>
#include <exprun/sdk/plugin_kind.hpp>

#include <string>
#include <vector>

#include "config/experiment.hpp"

namespace exprun {

// Where plugin schemas come from (the registry); kept abstract so the parser does not
// depend on how plugins are loaded.
class SchemaSource {
 public:
  virtual ~SchemaSource() = default;
  // Throws std::runtime_error whose message lists close names when no plugin matches.
  virtual sdk::ParamSchema schema(sdk::PluginKind kind, const std::string& name) const = 0;
};

// The experiment file's text; throws ConfigError "PATH: cannot open the experiment file".
std::string read_experiment_file(const std::string& path);

// overrides: "key.path=value" as given to --set. Throws ConfigError.
Experiment load_experiment(const std::string& path, const std::vector<std::string>& overrides,
                           const SchemaSource& plugins);
Experiment parse_experiment(const std::string& text, const std::string& source_name,
                            const std::vector<std::string>& overrides, const SchemaSource& plugins);

}  // namespace exprun

// Plugin tables (data, model, loss, a memory strategy's table): `plugin = "..."` and the
// parameters that plugin declares, checked against its schema.
#pragma once

#include <exprun/sdk/params.hpp>
#include <exprun/sdk/plugin_kind.hpp>

#include <map>
#include <string>
#include <vector>

#include "config/experiment.hpp"
#include "config/experiment_loader.hpp"
#include "config/table_reader.hpp"

namespace exprun {

// Reads the plugin's own parameters: every key of `reader` not yet taken by the runner.
// runner_keys: the runner's keys of this table, offered as suggestions for a misspelt key.
sdk::Params read_plugin_params(TableReader& reader, const sdk::ParamSchema& schema,
                               const std::string& full_name,
                               const std::vector<std::string>& runner_keys);

// The default of each parameter of `schema` that declares one.
std::map<std::string, sdk::ParamValue> declared_defaults(const sdk::ParamSchema& schema);

// `plugin` (required) and the plugin's parameters.
PluginChoice read_plugin_table(TableReader& reader, sdk::PluginKind kind,
                               const SchemaSource& plugins,
                               const std::vector<std::string>& runner_keys);

}  // namespace exprun

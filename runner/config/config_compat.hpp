// Whether a checkpoint's recorded stage configuration still describes the stage about to
// resume from it. Only what changes the training counts: a key added to exprun since the
// checkpoint was written, now at its declared default, a plugin parameter added to the plugin
// since then, now at the default the plugin declares, and the keys declared as not affecting
// training (data.workers, checkpoint.every, checkpoint.keep_last) do not stop a resume.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace exprun {

// The key paths ("/optimizer/lr") at which `current` (to_json of the stage now) differs from
// `written` (the stage configuration recorded in the checkpoint) in a way that changes the
// training; empty when the stage may resume. Plugin parameters are compared as written, except
// one that `written` lacks and that is at its default in `plugin_defaults`
// (plugin_defaults_json of the stage now).
std::vector<std::string> resume_config_differences(const nlohmann::json& written,
                                                   const nlohmann::json& current,
                                                   const nlohmann::json& plugin_defaults);

}  // namespace exprun

// Whether a checkpoint's recorded stage configuration still describes the stage about to
// resume from it. Only what changes the training counts: a key added to exprun since the
// checkpoint was written, now at its declared default, and the keys declared as not affecting
// training (data.workers, checkpoint.every, checkpoint.keep_last) do not stop a resume.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace exprun {

// The key paths ("/optimizer/lr") at which `current` (to_json of the stage now) differs from
// `written` (the stage configuration recorded in the checkpoint) in a way that changes the
// training; empty when the stage may resume. Plugin parameters are compared as written: a
// plugin's schema is not part of the recorded configuration.
std::vector<std::string> resume_config_differences(const nlohmann::json& written,
                                                   const nlohmann::json& current);

}  // namespace exprun

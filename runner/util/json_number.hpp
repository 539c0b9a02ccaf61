// Numbers in the JSON exprun writes (reports, checkpoints' progress).
#pragma once

#include <nlohmann/json.hpp>

namespace exprun {

// JSON has no NaN or infinity (nlohmann writes either as null anyway): an empty summary or a
// value not measured is null, so a reader sees "unknown" rather than a made-up number.
nlohmann::json number_or_null(double value);

}  // namespace exprun

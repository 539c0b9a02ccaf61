// Time stamps for names: run ids, tune/bench file names and the "created" field of reports.
#pragma once

#include <string>

namespace exprun {

// Now, in UTC, as YYYYMMDD-HHMMSS.
std::string utc_timestamp();

}  // namespace exprun

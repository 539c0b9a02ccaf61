// Time stamps for names: run ids, tune/bench file names and the "created" field of reports.
#pragma once

#include <ctime>
#include <string>

namespace exprun {

// Now, or the given time, in UTC, as YYYYMMDD-HHMMSS.
std::string utc_timestamp();
std::string utc_timestamp(std::time_t when);

}  // namespace exprun

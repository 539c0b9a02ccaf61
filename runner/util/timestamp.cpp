#include "util/timestamp.hpp"

#include "util/text.hpp"

namespace exprun {

std::string utc_timestamp(std::time_t when) { return format_utc(when, "%Y%m%d-%H%M%S"); }
std::string utc_timestamp() { return utc_timestamp(std::time(nullptr)); }

}  // namespace exprun

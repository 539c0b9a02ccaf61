#include "util/timestamp.hpp"

#include "util/text.hpp"

namespace exprun {

std::string utc_timestamp() { return format_utc_now("%Y%m%d-%H%M%S"); }

}  // namespace exprun

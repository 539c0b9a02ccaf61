// This machine's name, as lock files and a sweep's trial status record who holds or ran what.
#pragma once

#include <string>

namespace exprun {

// gethostname(2); "unknown" in the unlikely case it fails, so a record still has its field.
std::string host_name();

}  // namespace exprun

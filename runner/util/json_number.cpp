#include "util/json_number.hpp"

#include <cmath>

namespace exprun {

nlohmann::json number_or_null(double value) {
  return std::isfinite(value) ? nlohmann::json(value) : nlohmann::json(nullptr);
}

}  // namespace exprun

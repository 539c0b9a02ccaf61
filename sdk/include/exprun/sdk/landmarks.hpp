// Landmark sets that several plugins share, so that a synthetic dataset and the Aariz reader
// name landmarks identically.
#pragma once

#include <vector>

#include "exprun/sdk/dataset.hpp"

namespace exprun::sdk {

// The 29 Aariz landmarks in the dataset's file order.
const std::vector<LandmarkInfo>& aariz_landmarks();

}  // namespace exprun::sdk

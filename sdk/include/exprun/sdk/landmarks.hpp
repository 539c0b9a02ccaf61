// Landmark sets that several plugins share, so that a synthetic dataset and the Aariz reader
// name landmarks identically.
#pragma once

#include <vector>

#include "exprun/sdk/dataset.hpp"

namespace exprun::sdk {

// The 29 Aariz landmarks in the dataset's file order.
const std::vector<LandmarkInfo>& aariz_landmarks();

// The 19 ISBI 2015 landmarks in the challenge's order (line i of an annotation file is
// landmark i). Where a landmark is also an Aariz one, it carries the Aariz symbol (the lips
// are Ls and Li, soft-tissue pogonion Pog`), so results compare across the two datasets.
const std::vector<LandmarkInfo>& isbi2015_landmarks();

}  // namespace exprun::sdk

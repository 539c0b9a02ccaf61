// The middle of a benchmark's rounds, which one slow round (a busy machine) does not move.
#pragma once

#include <vector>

namespace exprun {

// The median of `values`: the mean of the middle two for an even count, 0 for none.
double median(std::vector<double> values);

}  // namespace exprun

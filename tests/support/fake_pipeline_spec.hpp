// The sample pipeline that the data tests run FakeDataset's films through: a small input, its
// two landmarks, augmentation on.
#pragma once

#include "data/sample_pipeline.hpp"

namespace exprun::test {

inline PipelineSpec fake_pipeline_spec() {
  PipelineSpec s;
  s.input_width = 64;
  s.input_height = 80;
  s.stride = 4;
  s.num_landmarks = 2;
  s.sigma = 1.5;
  s.augment.enabled = true;
  return s;
}

}  // namespace exprun::test

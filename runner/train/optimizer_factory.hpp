// Builds the optimiser a stage asks for, and sets its learning rate step by step.
#pragma once

#include <torch/torch.h>

#include <memory>

#include "config/experiment.hpp"

namespace exprun {

std::unique_ptr<torch::optim::Optimizer> make_optimizer(const OptimizerConfig& config,
                                                        std::vector<torch::Tensor> parameters);
void set_learning_rate(torch::optim::Optimizer& optimizer, double lr);

// Linear warm-up to the base rate, then cosine decay to min_lr (or constant), per step.
class LrSchedule {
 public:
  LrSchedule(const OptimizerConfig& optimizer, const ScheduleConfig& schedule,
             std::int64_t steps_per_epoch, std::int64_t epochs);
  double at(std::int64_t step) const;
  std::int64_t warmup_steps() const { return warmup_steps_; }
  std::int64_t total_steps() const { return total_steps_; }

 private:
  double base_;
  double min_;
  bool cosine_;
  std::int64_t warmup_steps_;
  std::int64_t total_steps_;
};

}  // namespace exprun

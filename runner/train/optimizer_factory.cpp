#include "train/optimizer_factory.hpp"

#include <cmath>

#include "train/fused_adam.hpp"

namespace exprun {

std::unique_ptr<torch::optim::Optimizer> make_optimizer(const OptimizerConfig& c,
                                                        std::vector<torch::Tensor> parameters) {
  if (c.name == "adam") {
    auto options = torch::optim::AdamOptions(c.lr)
                       .betas({c.betas.at(0), c.betas.at(1)})
                       .weight_decay(c.weight_decay);
    if (c.fused) return std::make_unique<FusedAdam>(parameters, options);
    return std::make_unique<torch::optim::Adam>(parameters, options);
  }
  if (c.name == "adamw") {
    auto options = torch::optim::AdamWOptions(c.lr)
                       .betas({c.betas.at(0), c.betas.at(1)})
                       .weight_decay(c.weight_decay);
    if (c.fused) return std::make_unique<FusedAdamW>(parameters, options);
    return std::make_unique<torch::optim::AdamW>(parameters, options);
  }
  if (c.name == "sgd") {
    return std::make_unique<torch::optim::SGD>(parameters, torch::optim::SGDOptions(c.lr)
                                                               .momentum(c.momentum)
                                                               .nesterov(c.nesterov)
                                                               .weight_decay(c.weight_decay));
  }
  throw std::invalid_argument("unknown optimizer \"" + c.name + "\"");
}

void set_learning_rate(torch::optim::Optimizer& optimizer, double lr) {
  for (auto& group : optimizer.param_groups()) group.options().set_lr(lr);
}

LrSchedule::LrSchedule(const OptimizerConfig& optimizer, const ScheduleConfig& schedule,
                       std::int64_t steps_per_epoch, std::int64_t epochs)
    : base_(optimizer.lr),
      min_(std::min(schedule.min_lr, optimizer.lr)),
      cosine_(schedule.decay == "cosine"),
      warmup_steps_(std::llround(schedule.warmup_epochs * static_cast<double>(steps_per_epoch))),
      total_steps_(std::max<std::int64_t>(1, steps_per_epoch * epochs)) {}

double LrSchedule::at(std::int64_t step) const {
  if (step < warmup_steps_) {
    return base_ * static_cast<double>(step + 1) / static_cast<double>(warmup_steps_);
  }
  if (!cosine_) return base_;
  const double span = static_cast<double>(std::max<std::int64_t>(1, total_steps_ - warmup_steps_));
  const double progress = std::min(1.0, static_cast<double>(step - warmup_steps_) / span);
  return min_ + (base_ - min_) * 0.5 * (1.0 + std::cos(M_PI * progress));
}

}  // namespace exprun

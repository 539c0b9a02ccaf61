// A stage's side of data-parallel training: this rank's model kept in step with the others.
// Parameters and buffers come from rank 0 at the start; gradients, views into buckets, are
// summed across ranks once per optimiser step, after the last micro-batch (each rank weights
// its losses by its share of the global batch, so the sum is the global batch's gradient);
// BatchNorm statistics, which each rank updates from its own slice, are replaced by rank 0's
// after every step, as PyTorch's DDP broadcasts buffers; and one small all-reduce per step
// agrees the batch's loss, whether the step was skipped (fp16 overflow) and whether to stop.
#pragma once

#include <torch/torch.h>
#include <exprun/sdk/model.hpp>
#include <nlohmann/json.hpp>

#include <memory>
#include <string>

#include "dist/process_group.hpp"
#include "train/gradient_buckets.hpp"

namespace exprun {

// What all ranks agreed after a step.
struct AgreedStep {
  double loss_sum = 0;   // over the global batch's images
  bool skipped = false;  // some rank's strategies skipped the step: all skipped
  int stop_signal = 0;   // a stop signal one of the ranks received, or 0
};

// report.json's environment.distributed: {world_size 1, launcher "single"} without a group.
nlohmann::json describe_distribution(const dist::ProcessGroup* group);

class DataParallel {
 public:
  DataParallel(std::shared_ptr<dist::ProcessGroup> group, sdk::Model& model);

  int rank() const { return group_->rank(); }
  int world_size() const { return group_->world_size(); }
  dist::ProcessGroup& group() { return *group_; }

  // Rank 0's parameters and buffers on every rank (at the start of a stage, after a resume).
  void broadcast_model();
  // Instead of the optimiser's zero_grad: gradients stay bucket views.
  void zero_gradients();
  // Sums the gradients over the ranks (the caller weighted each rank's losses).
  void reduce_gradients();
  // Rank 0's buffers (BatchNorm running statistics) on every rank.
  void broadcast_buffers();
  // loss_sum: this rank's share; skipped: whether its strategies skipped the step. Throws
  // when the ranks disagree on skipping: their strategies' state would drift apart.
  AgreedStep agree_step(double loss_sum, bool skipped, int stop_signal, std::int64_t step);
  // The largest stop signal any rank received (0: none), at a point between steps.
  int agree_stop(int stop_signal);
  // Throws when the parameters of the ranks differ (checked at the end of a stage).
  void check_in_step(const std::string& when);

 private:
  std::shared_ptr<dist::ProcessGroup> group_;
  sdk::Model& model_;
  GradientBuckets buckets_;
  std::vector<torch::Tensor> buffers_;
};

}  // namespace exprun

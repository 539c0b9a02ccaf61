// Memory strategies change how one optimisation step uses memory (precision, activation
// checkpointing). The trainer calls every strategy of a stage at each hook, in the order the
// experiment lists them. Splitting a step into micro-batches is the trainer's own job
// (memory.micro_batch), not a strategy's.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "exprun/sdk/model.hpp"

namespace exprun::sdk {

struct MemoryContext {
  std::int64_t effective_batch = 1;  // images per optimiser step
  std::int64_t micro_batch = 1;      // images per forward/backward pass
  torch::Device device = torch::kCPU;
};

// Held for the duration of a forward pass and the loss; released before backward.
class ForwardScope {
 public:
  virtual ~ForwardScope() = default;
};

class MemoryStrategy {
 public:
  using PluginInterface = MemoryStrategy;  // its kind: PluginKindTraits<MemoryStrategy>
  virtual ~MemoryStrategy() = default;

  // Called once after the model is built and moved to its device.
  virtual void prepare(Model& model) { (void)model; }
  virtual std::unique_ptr<ForwardScope> enter_forward() { return nullptr; }
  // The loss that backward() is called on; e.g. multiplied by a loss scale.
  virtual torch::Tensor scale_loss(const torch::Tensor& loss) { return loss; }
  // After all backward passes of a step; false skips the optimiser step (inf/NaN gradients).
  virtual bool before_step(torch::optim::Optimizer& optimizer) {
    (void)optimizer;
    return true;
  }
  virtual void after_step() {}
  // State that must survive a resume (a loss scale, say).
  virtual void save(torch::serialize::OutputArchive& archive) const { (void)archive; }
  virtual void load(torch::serialize::InputArchive& archive) { (void)archive; }
};

}  // namespace exprun::sdk

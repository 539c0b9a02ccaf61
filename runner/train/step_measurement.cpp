#include "train/step_measurement.hpp"

#include <algorithm>
#include <chrono>
#include <stdexcept>

#include "data/batch_loader.hpp"
#include "memory/memory_tracker.hpp"
#include "train/optimizer_factory.hpp"
#include "train/train_step.hpp"

namespace exprun {
namespace {

using Clock = std::chrono::steady_clock;

// Augmentation draws of the measured batches; any fixed value does.
constexpr std::uint64_t kMeasurementSeed = 0x7u;

void synchronize(const torch::Device& device) {
  if (device.is_cuda()) torch::cuda::synchronize(device.index() < 0 ? -1 : device.index());
}

}  // namespace

StepMeasurement measure_training_steps(BuiltStage& stage, const StageConfig& config,
                                       std::int64_t micro_batch, int warmup_steps,
                                       int timed_steps) {
  StepMeasurement out;
  auto strategies = stage.make_strategies(micro_batch);
  out.passes = micro_batch_passes(config.memory.effective_batch, micro_batch);
  auto optimizer = make_optimizer(config.optimizer, stage.model->parameters());
  StepParts parts{*stage.model,           *stage.loss,  strategies,
                  stage.landmark_weights, stage.device, stage.input_format};

  // Real batches from the stage's training split through its pipeline and loader, so the
  // peak includes what the workers hold and the speed includes waiting for data.
  const int steps = warmup_steps + timed_steps;
  const auto batch = static_cast<std::size_t>(config.memory.effective_batch);
  std::vector<std::size_t> order(batch * static_cast<std::size_t>(steps));
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i % stage.train->size();
  release_cached_memory(stage.device);
  synchronize(stage.device);
  reset_peak_memory(stage.device);
  BatchLoader loader(stage.train, *stage.pipeline, std::move(order), config.memory.effective_batch,
                     config.data.workers, /*augment=*/true, kMeasurementSeed);
  stage.model->train();
  auto step = [&] {
    auto next = loader.next();
    optimisation_step(parts, *optimizer, micro_batch, next->images, next->heatmaps);
  };
  for (int i = 0; i < warmup_steps; ++i) step();
  synchronize(stage.device);
  const auto start = Clock::now();
  for (int i = 0; i < timed_steps; ++i) step();
  synchronize(stage.device);
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  const auto reading = read_memory(stage.device);
  if (!reading) {
    throw std::runtime_error("cannot measure memory on " + stage.device.str() +
                             " (no allocator statistics)");
  }
  out.peak_bytes = reading->peak_bytes;
  out.step_seconds = seconds / std::max(1, timed_steps);
  out.images_per_second =
      static_cast<double>(config.memory.effective_batch) / std::max(out.step_seconds, 1e-12);
  return out;
}

}  // namespace exprun

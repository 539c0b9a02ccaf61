#include "train/step_measurement.hpp"

#include <algorithm>
#include <chrono>
#include <functional>
#include <optional>
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

// Times warm-up + timed steps, each on the batch `next_batch` hands over; the peak counts from
// just before batches: `next_batch` is a std::function<const Batch&()> so that what it holds
// is made after the reset.
StepMeasurement time_steps(BuiltStage& stage, const StageConfig& config, std::int64_t micro_batch,
                           int warmup_steps, int timed_steps,
                           const std::function<std::function<const Batch&()>()>& batches) {
  StepMeasurement out;
  auto strategies = stage.make_strategies(micro_batch);
  out.passes = micro_batch_passes(config.memory.effective_batch, micro_batch);
  auto optimizer = make_optimizer(config.optimizer, stage.model->parameters());
  StepParts parts{*stage.model,           *stage.loss,  strategies,
                  stage.landmark_weights, stage.device, stage.input_format};
  release_cached_memory(stage.device);
  synchronize(stage.device);
  reset_peak_memory(stage.device);
  const auto next_batch = batches();
  stage.model->train();
  auto step = [&] {
    const Batch& batch = next_batch();
    optimisation_step(parts, *optimizer, micro_batch, batch.images, batch.heatmaps);
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

}  // namespace

StepMeasurement measure_training_steps(BuiltStage& stage, const StageConfig& config,
                                       std::int64_t micro_batch, int warmup_steps,
                                       int timed_steps) {
  // Real batches from the stage's training split through its pipeline and loader, so the
  // peak includes what the workers hold and the speed includes waiting for data.
  const int steps = warmup_steps + timed_steps;
  const auto batch = static_cast<std::size_t>(config.memory.effective_batch);
  std::vector<std::size_t> order(batch * static_cast<std::size_t>(steps));
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i % stage.train->size();
  std::optional<BatchLoader> loader;
  std::optional<Batch> current;
  return time_steps(stage, config, micro_batch, warmup_steps, timed_steps, [&] {
    loader.emplace(stage.train, *stage.pipeline, std::move(order), config.memory.effective_batch,
                   stage.data_workers, /*augment=*/true, kMeasurementSeed);
    return [&]() -> const Batch& {
      current = loader->next();
      return *current;
    };
  });
}

StepMeasurement measure_bare_steps(BuiltStage& stage, const StageConfig& config,
                                   std::int64_t micro_batch, int warmup_steps, int timed_steps) {
  std::vector<std::size_t> order(static_cast<std::size_t>(config.memory.effective_batch));
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i % stage.train->size();
  Batch batch = *BatchLoader(stage.train, *stage.pipeline, std::move(order),
                             config.memory.effective_batch, 0, true, kMeasurementSeed)
                     .next();
  // On the device and in the model's memory format already: a step then copies nothing.
  batch.images = batch.images.to(stage.device).contiguous(stage.input_format);
  batch.heatmaps = batch.heatmaps.to(stage.device);
  return time_steps(stage, config, micro_batch, warmup_steps, timed_steps,
                    [&] { return [&]() -> const Batch& { return batch; }; });
}

}  // namespace exprun

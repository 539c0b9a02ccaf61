#include "train/batch_tuner.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <mutex>

#include "config/config_error.hpp"
#include "memory/memory_tracker.hpp"
#include "train/step_measurement.hpp"
#include "train/train_step.hpp"
#include "util/text.hpp"

namespace exprun {
namespace {

using Clock = std::chrono::steady_clock;

// Everything a trial step changes in the model, to put back afterwards.
class ModelSnapshot {
 public:
  explicit ModelSnapshot(torch::nn::Module& model) : model_(model) {
    torch::NoGradGuard no_grad;
    for (const auto& p : model.named_parameters(true)) {
      parameters_[p.key()] = p.value().detach().clone();
      if (p.value().grad().defined()) gradients_[p.key()] = p.value().grad().detach().clone();
    }
    for (const auto& b : model.named_buffers(true)) buffers_[b.key()] = b.value().detach().clone();
    training_ = model.is_training();
  }

  void restore() {
    torch::NoGradGuard no_grad;
    for (auto& p : model_.named_parameters(true)) {
      p.value().copy_(parameters_.at(p.key()));
      auto it = gradients_.find(p.key());
      p.value().mutable_grad() = it == gradients_.end() ? torch::Tensor() : it->second.clone();
    }
    for (auto& b : model_.named_buffers(true)) b.value().copy_(buffers_.at(b.key()));
    model_.train(training_);
  }

 private:
  torch::nn::Module& model_;
  std::map<std::string, torch::Tensor> parameters_;
  std::map<std::string, torch::Tensor> gradients_;
  std::map<std::string, torch::Tensor> buffers_;
  bool training_ = true;
};

// The default CPU generator, saved and put back: trials must not shift the random stream that
// training (dropout, plugins) draws from afterwards.
class RandomStateGuard {
 public:
  RandomStateGuard() : generator_(at::detail::getDefaultCPUGenerator()) {
    std::lock_guard<std::mutex> lock(generator_.mutex());
    state_ = generator_.get_state();
  }
  ~RandomStateGuard() {
    std::lock_guard<std::mutex> lock(generator_.mutex());
    generator_.set_state(state_);
  }

 private:
  at::Generator generator_;
  torch::Tensor state_;
};

void measure(TuneTrial& trial, BuiltStage& stage, const StageConfig& config,
             const TuneOptions& options) {
  trial.tried = true;
  const auto m = measure_training_steps(stage, config, trial.micro_batch, options.warmup_steps,
                                        options.timed_steps);
  trial.passes = m.passes;
  trial.accumulation = static_cast<std::int64_t>(m.passes.size());
  trial.peak_bytes = m.peak_bytes;
  trial.step_seconds = m.step_seconds;
  trial.images_per_second = m.images_per_second;
  trial.epoch_seconds = trial.step_seconds * static_cast<double>(options.steps_per_epoch);
  trial.fits = *trial.peak_bytes <= options.limit_bytes();
  if (!trial.fits) {
    trial.note = "peak " + format_bytes(*trial.peak_bytes) + " > limit " +
                 format_bytes(options.limit_bytes());
  }
}

}  // namespace

std::int64_t TuneOptions::limit_bytes() const {
  return static_cast<std::int64_t>(static_cast<double>(budget_bytes) * (1.0 - margin));
}

TuneOptions tune_options_for(const StageConfig& config, const BuiltStage& stage) {
  TuneOptions options;
  options.margin = config.memory.margin;
  options.speed_tolerance = config.memory.speed_tolerance;
  if (config.memory.budget_bytes) {
    options.budget_bytes = *config.memory.budget_bytes;
    options.budget_source = "memory.budget";
  } else if (auto free = free_device_memory(stage.device)) {
    options.budget_bytes = *free;
    options.budget_source = "free device memory";
  } else {
    throw ConfigError(config.where + ": stages." + config.name + ".memory.budget: the batch " +
                      "tuner on " + stage.device.str() + " needs a memory budget (e.g. budget = " +
                      "\"4GiB\"): no allocator there knows a limit");
  }
  const auto batch = static_cast<std::size_t>(config.memory.effective_batch);
  options.steps_per_epoch = static_cast<std::int64_t>((stage.train->size() + batch - 1) / batch);
  return options;
}

std::vector<std::int64_t> candidate_micro_batches(std::int64_t effective_batch) {
  std::vector<std::int64_t> out;
  for (std::int64_t m = 1; m <= effective_batch; ++m) {
    const bool power_of_two = (m & (m - 1)) == 0;
    if (effective_batch % m == 0 || power_of_two) out.push_back(m);
  }
  return out;
}

std::optional<std::int64_t> choose_micro_batch(const std::vector<TuneTrial>& trials,
                                               double speed_tolerance) {
  const TuneTrial* best = nullptr;
  for (const auto& t : trials)
    if (t.fits && (!best || t.images_per_second > best->images_per_second)) best = &t;
  if (!best) return std::nullopt;
  // Timing a few steps is not more precise than a few per cent, and of equal speeds the larger
  // micro-batch is better: fewer passes, and batch-norm statistics over more images.
  const double fastest = best->images_per_second;
  for (const auto& t : trials)
    if (t.fits && t.images_per_second >= (1 - speed_tolerance) * fastest &&
        t.micro_batch > best->micro_batch)
      best = &t;
  return best->micro_batch;
}

TuneResult tune_micro_batch(BuiltStage& stage, const StageConfig& config,
                            const TuneOptions& options,
                            const std::function<void(const TuneTrial&)>& on_trial) {
  const auto start = Clock::now();
  TuneResult result;
  result.stage = config.name;
  result.device = stage.device.str();
  result.effective_batch = config.memory.effective_batch;
  result.options = options;
  ModelSnapshot snapshot(*stage.model);
  RandomStateGuard random_state;

  bool exceeded = false;
  for (std::int64_t m : candidate_micro_batches(config.memory.effective_batch)) {
    TuneTrial trial;
    trial.micro_batch = m;
    if (exceeded) {
      // Memory grows with the micro-batch: past the first that does not fit, none does.
      trial.accumulation = (config.memory.effective_batch + m - 1) / m;
      trial.note = "not tried: a smaller micro-batch already exceeds the limit";
    } else {
      try {
        measure(trial, stage, config, options);
      } catch (const std::exception& e) {
        if (!is_out_of_memory(e)) {
          snapshot.restore();
          throw;
        }
        trial.fits = false;
        trial.note = "out of memory";
        release_cached_memory(stage.device);
      }
      snapshot.restore();
      exceeded = !trial.fits;
    }
    result.trials.push_back(trial);
    if (on_trial) on_trial(result.trials.back());
  }

  const auto chosen = choose_micro_batch(result.trials, options.speed_tolerance);
  if (!chosen) {
    const auto& first = result.trials.front();
    throw std::runtime_error(
        "stage " + config.name + ": no micro-batch fits the memory limit " +
        format_bytes(options.limit_bytes()) + " (" + options.budget_source + " " +
        format_bytes(options.budget_bytes) + " less a " + format_number(100 * options.margin) +
        "% margin); micro-batch 1: " + first.note +
        ". Raise memory.budget, lower the margin, or make the model or input smaller");
  }
  result.chosen_micro_batch = *chosen;
  for (auto& t : result.trials) t.chosen = t.micro_batch == result.chosen_micro_batch;
  result.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return result;
}

void apply_tuning(BuiltStage& stage, const TuneResult& result) {
  stage.micro_batch = result.chosen_micro_batch;
  stage.strategies = stage.make_strategies(stage.micro_batch);
}

nlohmann::json TuneResult::to_json() const {
  nlohmann::json trials_json = nlohmann::json::array();
  for (const auto& t : trials) {
    trials_json.push_back(
        {{"micro_batch", t.micro_batch},
         {"accumulation", t.accumulation},
         {"passes", t.passes},
         {"tried", t.tried},
         {"peak_bytes", t.peak_bytes ? nlohmann::json(*t.peak_bytes) : nullptr},
         {"step_seconds", t.tried ? nlohmann::json(t.step_seconds) : nullptr},
         {"images_per_second", t.tried ? nlohmann::json(t.images_per_second) : nullptr},
         {"epoch_seconds", t.tried ? nlohmann::json(t.epoch_seconds) : nullptr},
         {"fits", t.fits},
         {"chosen", t.chosen},
         {"note", t.note}});
  }
  return {{"stage", stage},
          {"device", device},
          {"effective_batch", effective_batch},
          {"budget_bytes", options.budget_bytes},
          {"budget_source", options.budget_source},
          {"margin", options.margin},
          {"speed_tolerance", options.speed_tolerance},
          {"limit_bytes", options.limit_bytes()},
          {"warmup_steps", options.warmup_steps},
          {"timed_steps", options.timed_steps},
          {"trials", trials_json},
          {"chosen_micro_batch", chosen_micro_batch},
          {"chosen_accumulation", (effective_batch + chosen_micro_batch - 1) /
                                      std::max<std::int64_t>(1, chosen_micro_batch)},
          {"seconds", seconds}};
}

std::string tune_table(const TuneResult& result) {
  std::string out;
  char line[256];
  std::snprintf(line, sizeof line, "%-6s %-6s %11s %10s %9s %12s %-5s %s\n", "micro", "accum",
                "peak", "step", "img/s", "epoch", "fits", "");
  out += line;
  for (const auto& t : result.trials) {
    if (!t.tried) {
      std::snprintf(line, sizeof line, "%-6lld %-6lld %11s %10s %9s %12s %-5s %s\n",
                    static_cast<long long>(t.micro_batch), static_cast<long long>(t.accumulation),
                    "-", "-", "-", "-", "no", t.note.c_str());
    } else {
      std::snprintf(line, sizeof line, "%-6lld %-6lld %11s %9.3fs %9.2f %12s %-5s %s\n",
                    static_cast<long long>(t.micro_batch), static_cast<long long>(t.accumulation),
                    t.peak_bytes ? format_bytes(*t.peak_bytes).c_str() : "?", t.step_seconds,
                    t.images_per_second, format_duration(t.epoch_seconds).c_str(),
                    t.fits ? "yes" : "no", t.chosen ? "<- chosen" : t.note.c_str());
    }
    out += line;
  }
  return out;
}

}  // namespace exprun

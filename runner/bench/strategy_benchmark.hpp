// `exprun bench`: the same stage trained a few steps at several micro-batch x accumulation
// plans, each with and without mixed precision and activation checkpointing, measuring peak
// memory and images/s. The memory strategies' trade-offs, measured instead of guessed.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "config/experiment.hpp"
#include "plugins/registry.hpp"

namespace exprun {

struct BenchPlan {
  std::int64_t micro_batch = 1;
  std::int64_t accumulation = 1;
  std::int64_t effective_batch() const { return micro_batch * accumulation; }
};

// The strategies a case adds to the stage's own (those are kept, except the ones a variant
// decides: mixed_precision, activation_checkpointing, gradient_accumulation).
using BenchVariant = std::vector<std::string>;

struct BenchCase {
  BenchPlan plan;
  BenchVariant variant;
  std::vector<std::string> strategies;  // what the stage ran with, in order
  bool ok = false;
  std::string error;  // when not ok: out of memory, or why the stage could not be built
  std::int64_t peak_bytes = 0;
  double step_seconds = 0;
  double images_per_second = 0;
};

struct BenchOptions {
  std::vector<BenchPlan> plans;
  std::vector<BenchVariant> variants;
  int warmup_steps = 1;
  int timed_steps = 3;
};

struct BenchResult {
  std::string experiment;
  std::string stage;
  std::string device;
  BenchOptions options;
  std::vector<BenchCase> cases;
  nlohmann::json to_json() const;
};

// "4x1,2x2,1x4": micro-batch x accumulation. Throws std::invalid_argument naming the bad item.
std::vector<BenchPlan> parse_bench_plans(const std::string& text);
// Every plan m x a with m x a = effective_batch, largest micro-batch first.
std::vector<BenchPlan> plans_for_effective_batch(std::int64_t effective_batch);
// "none,mixed_precision,activation_checkpointing,mixed_precision+activation_checkpointing".
std::vector<BenchVariant> parse_bench_variants(const std::string& text);
std::string variant_name(const BenchVariant& variant);

// The stage as one case runs it: batch sizes from the plan, strategies from the variant
// (configured as the stage configures them, else with their defaults).
StageConfig stage_for_case(const StageConfig& stage, const BenchPlan& plan,
                           const BenchVariant& variant, const SchemaSource& plugins);

// Each case builds the stage afresh (same seed, so the same initial weights) and measures
// warm-up + timed steps. A case that runs out of memory or fails is recorded and the others go
// on. on_case sees each case as soon as it is measured.
BenchResult run_strategy_benchmark(const Experiment& experiment, std::size_t stage_index,
                                   const Registry& registry, const BenchOptions& options,
                                   const std::function<void(const BenchCase&)>& on_case = {});

// Header and one line per case; memory and speed also relative to the first case that ran.
std::string bench_table_header();
std::string bench_table_row(const BenchCase& c, const BenchCase* reference);

}  // namespace exprun

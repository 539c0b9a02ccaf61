#include "bench/strategy_benchmark.hpp"

#include <algorithm>
#include <cstdio>
#include <stdexcept>

#include "memory/memory_tracker.hpp"
#include "train/stage_builder.hpp"
#include "train/step_measurement.hpp"
#include "util/text.hpp"

namespace exprun {
namespace {

const std::vector<std::string> kVariantStrategies = {"mixed_precision", "activation_checkpointing"};
const std::string kAccumulation = "gradient_accumulation";

std::vector<std::string> split_without_spaces(const std::string& text, char separator) {
  std::vector<std::string> out;
  std::string item;
  for (char ch : text + separator) {
    if (ch == separator) {
      out.push_back(item);
      item.clear();
    } else if (ch != ' ') {
      item += ch;
    }
  }
  return out;
}

std::int64_t positive(const std::string& text, const std::string& item) {
  std::size_t used = 0;
  long long value = 0;
  try {
    value = std::stoll(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != text.size() || value < 1 || value > kMaxEffectiveBatch) {
    throw std::invalid_argument("'" + item + "': expected MICROxACCUMULATION with integers from " +
                                "1 to " + std::to_string(kMaxEffectiveBatch) + ", e.g. 2x2");
  }
  return value;
}

// The stage's own parameters for a strategy it lists; defaults otherwise.
PluginChoice strategy_choice(const StageConfig& stage, const std::string& name,
                             const SchemaSource& plugins) {
  for (const auto& c : stage.memory.strategies)
    if (c.name == name) return c;
  PluginChoice choice;
  choice.kind = sdk::PluginKind::Memory;
  choice.name = name;
  choice.params = sdk::Params::resolve(plugins.schema(sdk::PluginKind::Memory, name), {});
  choice.where = stage.where;
  choice.key_path = "stages." + stage.name + ".memory." + name;
  return choice;
}

}  // namespace

std::vector<BenchPlan> parse_bench_plans(const std::string& text) {
  std::vector<BenchPlan> plans;
  for (const auto& item : split_without_spaces(text, ',')) {
    const auto x = item.find('x');
    if (x == std::string::npos) {
      throw std::invalid_argument("'" + item + "': expected MICROxACCUMULATION, e.g. 4x1,2x2,1x4");
    }
    plans.push_back({positive(item.substr(0, x), item), positive(item.substr(x + 1), item)});
    if (plans.back().effective_batch() > kMaxEffectiveBatch) {
      throw std::invalid_argument(
          "'" + item + "': " + std::to_string(plans.back().effective_batch()) +
          " images per step; expected at most " + std::to_string(kMaxEffectiveBatch) +
          " (memory.effective_batch's bound)");
    }
  }
  return plans;
}

std::vector<BenchPlan> plans_for_effective_batch(std::int64_t effective_batch) {
  std::vector<BenchPlan> plans;
  for (std::int64_t m = effective_batch; m >= 1; --m)
    if (effective_batch % m == 0) plans.push_back({m, effective_batch / m});
  return plans;
}

std::vector<BenchVariant> parse_bench_variants(const std::string& text) {
  std::vector<BenchVariant> variants;
  for (const auto& item : split_without_spaces(text, ',')) {
    BenchVariant variant;
    if (item != "none") {
      for (const auto& name : split_without_spaces(item, '+')) {
        if (std::find(kVariantStrategies.begin(), kVariantStrategies.end(), name) ==
            kVariantStrategies.end()) {
          throw std::invalid_argument("'" + item + "': expected none, or " +
                                      "mixed_precision and/or activation_checkpointing joined " +
                                      "by '+'; found '" + name + "'");
        }
        if (std::find(variant.begin(), variant.end(), name) == variant.end())
          variant.push_back(name);
      }
    }
    variants.push_back(variant);
  }
  return variants;
}

std::string variant_name(const BenchVariant& variant) {
  if (variant.empty()) return "none";
  std::string out;
  for (const auto& name : variant) out += (out.empty() ? "" : "+") + name;
  return out;
}

StageConfig stage_for_case(const StageConfig& stage, const BenchPlan& plan,
                           const BenchVariant& variant, const SchemaSource& plugins) {
  StageConfig out = stage;
  out.memory.effective_batch = plan.effective_batch();
  out.memory.micro_batch = plan.micro_batch;
  out.memory.micro_batch_auto = false;
  // Autocast wraps the whole step and checkpointing acts inside the model: the order the
  // runner documents for them. gradient_accumulation does nothing (the step splits the plan's
  // micro-batches itself) but stays listed, so cases read as the files that list it.
  out.memory.strategies.clear();
  auto has = [&](const std::string& name) {
    return std::find(variant.begin(), variant.end(), name) != variant.end();
  };
  if (has("mixed_precision"))
    out.memory.strategies.push_back(strategy_choice(stage, "mixed_precision", plugins));
  out.memory.strategies.push_back(strategy_choice(stage, kAccumulation, plugins));
  if (has("activation_checkpointing"))
    out.memory.strategies.push_back(strategy_choice(stage, "activation_checkpointing", plugins));
  for (const auto& c : stage.memory.strategies) {
    const bool decided = c.name == kAccumulation ||
                         std::find(kVariantStrategies.begin(), kVariantStrategies.end(), c.name) !=
                             kVariantStrategies.end();
    if (!decided) out.memory.strategies.push_back(c);
  }
  return out;
}

BenchResult run_strategy_benchmark(const Experiment& experiment, std::size_t stage_index,
                                   const Registry& registry, const BenchOptions& options,
                                   const std::function<void(const BenchCase&)>& on_case) {
  const StageConfig& base = experiment.stages.at(stage_index);
  BenchResult result;
  result.experiment = experiment.name;
  result.stage = base.name;
  result.device = resolve_device(base.device).str();
  result.options = options;
  for (const auto& plan : options.plans) {
    for (const auto& variant : options.variants) {
      BenchCase c;
      c.plan = plan;
      c.variant = variant;
      const StageConfig config = stage_for_case(base, plan, variant, registry);
      for (const auto& s : config.memory.strategies) c.strategies.push_back(s.name);
      try {
        // Built inside the try and dropped before the next case, so no case's model, data or
        // optimiser state counts in another's peak.
        BuiltStage built = build_stage(experiment, config, stage_index, registry);
        const auto m = measure_training_steps(built, config, plan.micro_batch, options.warmup_steps,
                                              options.timed_steps);
        c.ok = true;
        c.peak_bytes = m.peak_bytes;
        c.step_seconds = m.step_seconds;
        c.images_per_second = m.images_per_second;
      } catch (const std::exception& e) {
        c.error = is_out_of_memory(e) ? "out of memory" : e.what();
        release_cached_memory(resolve_device(base.device));
      }
      result.cases.push_back(c);
      if (on_case) on_case(result.cases.back());
    }
  }
  return result;
}

nlohmann::json BenchResult::to_json() const {
  nlohmann::json cases_json = nlohmann::json::array();
  for (const auto& c : cases) {
    cases_json.push_back(
        {{"micro_batch", c.plan.micro_batch},
         {"accumulation", c.plan.accumulation},
         {"effective_batch", c.plan.effective_batch()},
         {"variant", variant_name(c.variant)},
         {"strategies", c.strategies},
         {"ok", c.ok},
         {"error", c.error},
         {"peak_bytes", c.ok ? nlohmann::json(c.peak_bytes) : nullptr},
         {"step_seconds", c.ok ? nlohmann::json(c.step_seconds) : nullptr},
         {"images_per_second", c.ok ? nlohmann::json(c.images_per_second) : nullptr}});
  }
  return {{"experiment", experiment},
          {"stage", stage},
          {"device", device},
          {"warmup_steps", options.warmup_steps},
          {"timed_steps", options.timed_steps},
          {"cases", cases_json}};
}

std::string bench_table_header() {
  char line[256];
  std::snprintf(line, sizeof line, "%-6s %-45s %10s %8s %9s %9s %8s\n", "plan", "strategies",
                "peak", "vs first", "step", "img/s", "vs first");
  return line;
}

std::string bench_table_row(const BenchCase& c, const BenchCase* reference) {
  char line[512];
  const std::string plan =
      std::to_string(c.plan.micro_batch) + "x" + std::to_string(c.plan.accumulation);
  if (!c.ok) {
    std::snprintf(line, sizeof line, "%-6s %-45s %10s %8s %9s %9s %8s  %s\n", plan.c_str(),
                  variant_name(c.variant).c_str(), "-", "", "-", "-", "", c.error.c_str());
    return line;
  }
  auto relative = [](double value, double base) {
    char out[32];
    if (base <= 0) return std::string();
    std::snprintf(out, sizeof out, "%+.0f%%", 100.0 * (value / base - 1.0));
    return std::string(out);
  };
  const bool has_ref = reference && reference->ok;
  std::snprintf(line, sizeof line, "%-6s %-45s %10s %8s %8.3fs %9.2f %8s\n", plan.c_str(),
                variant_name(c.variant).c_str(), format_bytes(c.peak_bytes).c_str(),
                has_ref ? relative(static_cast<double>(c.peak_bytes),
                                   static_cast<double>(reference->peak_bytes))
                              .c_str()
                        : "",
                c.step_seconds, c.images_per_second,
                has_ref ? relative(c.images_per_second, reference->images_per_second).c_str() : "");
  return line;
}

}  // namespace exprun

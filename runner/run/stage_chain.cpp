#include "run/stage_chain.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "config/checkpoint_path.hpp"
#include "config/names.hpp"
#include "train/checkpoint.hpp"
#include "train/progress.hpp"
#include "util/text.hpp"

namespace exprun {
namespace fs = std::filesystem;
namespace {

struct RankedLandmark {
  std::size_t index = 0;
  std::string symbol;
  double mre_mm = 0;
};

// Landmarks by the init stage's best validation MRE, worst first; ties by dataset order so the
// choice is stable.
std::vector<RankedLandmark> rank_by_best_mre(const CheckpointInfo& info, const fs::path& file) {
  const nlohmann::json& per_landmark = info.trainer_state.at("best_metrics")["per_landmark"];
  if (!per_landmark.is_object()) {
    throw std::runtime_error("loss.focus: checkpoint " + file.string() +
                             " has no validation result to rank landmarks by (stage " + info.stage +
                             " has not finished an epoch)");
  }
  std::vector<RankedLandmark> ranked;
  for (std::size_t k = 0; k < info.landmark_symbols.size(); ++k) {
    const auto& entry = per_landmark[info.landmark_symbols[k]];
    // null with a count: predictions that were not points (eval/radial_error.hpp), the worst;
    // null without one: no ground truth to rank it by.
    double mre = -1.0;
    if (entry["mre"].is_number()) {
      mre = entry["mre"].get<double>();
    } else if (entry["count"].is_number_integer() && entry["count"].get<std::int64_t>() > 0) {
      mre = std::numeric_limits<double>::infinity();
    }
    ranked.push_back({k, info.landmark_symbols[k], mre});
  }
  std::stable_sort(ranked.begin(), ranked.end(),
                   [](const auto& a, const auto& b) { return a.mre_mm > b.mre_mm; });
  return ranked;
}

}  // namespace

fs::path init_checkpoint_path(const StageInit& init, const fs::path& run_dir) {
  if (!init.path.empty()) return init.path;
  return run_dir / init.from_stage / "checkpoints" / (init.which + ".pt");
}

nlohmann::json apply_stage_chain(const StageConfig& stage, BuiltStage& built,
                                 const fs::path& run_dir, bool load_weights) {
  nlohmann::json sections = nlohmann::json::object();
  if (stage.init.empty()) return sections;
  const fs::path file = init_checkpoint_path(stage.init, run_dir);
  const std::string at = stage.init.where + ": stages." + stage.name + ".init: ";
  const CheckpointPathStatus found = look_up_checkpoint_path(file);
  if (!found.problem.empty()) throw std::runtime_error(at + found.problem);
  if (!fs::exists(found.status)) {
    throw std::runtime_error(at + "there is no " + quote_for_message(file.string(), 120) +
                             (stage.init.from_stage.empty()
                                  ? ""
                                  : " (stage " + stage.init.from_stage + " wrote no " +
                                        stage.init.which + " checkpoint)"));
  }
  const CheckpointInfo info =
      load_weights ? load_model_weights(file, *built.model) : read_checkpoint_info(file);
  if (info.landmark_symbols != built.symbols()) {
    throw std::runtime_error(at + "checkpoint " + file.string() + " predicts the landmarks " +
                             join(info.landmark_symbols, ",") + ", but this stage's dataset has " +
                             join(built.symbols(), ","));
  }
  sections["init"] = {{"from", stage.init.text},
                      {"checkpoint", file.generic_string()},
                      {"stage", info.stage},
                      {"epoch", info.epoch}};
  if (load_weights) {
    Progress::message("exprun: stage " + stage.name + ": starting from " + file.string() +
                      " (stage " + info.stage + ", epoch " + std::to_string(info.epoch) + ")");
  }
  if (stage.focus.worst <= 0) return sections;

  const auto count = static_cast<std::int64_t>(info.landmark_symbols.size());
  if (stage.focus.worst > count) {
    throw std::runtime_error(stage.focus.where +
                             ": loss.focus.worst = " + std::to_string(stage.focus.worst) +
                             ", but the dataset has only " + std::to_string(count) + " landmarks");
  }
  const auto ranked = rank_by_best_mre(info, file);
  auto weights = built.landmark_weights.to(torch::kCPU).clone();
  nlohmann::json chosen = nlohmann::json::array();
  std::vector<std::string> names;
  for (std::int64_t r = 0; r < stage.focus.worst; ++r) {
    const auto& landmark = ranked[static_cast<std::size_t>(r)];
    weights[static_cast<std::int64_t>(landmark.index)] *= stage.focus.weight;
    chosen.push_back({{"rank", r + 1}, {"symbol", landmark.symbol}, {"mre_mm", landmark.mre_mm}});
    names.push_back(landmark.symbol + " " + format_number(landmark.mre_mm));
  }
  built.landmark_weights = weights.to(built.landmark_weights.device());
  const std::int64_t best_epoch = info.best_epoch;
  sections["focus"] = {{"worst", stage.focus.worst},
                       {"weight", stage.focus.weight},
                       {"ranked_by", "best validation MRE per landmark of stage " + info.stage +
                                         " (epoch " + std::to_string(best_epoch) + ")"},
                       {"chosen", chosen}};
  Progress::message("exprun: stage " + stage.name + ": loss weight x" +
                    format_number(stage.focus.weight) + " on the " +
                    std::to_string(stage.focus.worst) + " worst landmarks of " + info.stage +
                    " (MRE mm): " + join(names, ", "));
  return sections;
}

}  // namespace exprun

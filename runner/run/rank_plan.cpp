#include "run/rank_plan.hpp"

#include <nlohmann/json.hpp>

namespace exprun {
namespace {

constexpr const char* kKey = "run-plan";

const char* action_name(RankPlan::Action action) {
  switch (action) {
    case RankPlan::Action::kRun:
      return "run";
    case RankPlan::Action::kNothingToDo:
      return "nothing";
    case RankPlan::Action::kFailed:
      break;
  }
  return "failed";
}

}  // namespace

void send_rank_plan(dist::ProcessGroup& group, const RankPlan& plan) {
  const nlohmann::json doc = {{"action", action_name(plan.action)},
                              {"run_dir", plan.run_dir.string()},
                              {"resume", plan.resume},
                              {"error", plan.error}};
  group.share_from_rank0(kKey, doc.dump());
}

RankPlan receive_rank_plan(dist::ProcessGroup& group) {
  const std::string text = group.share_from_rank0(kKey, "");
  RankPlan plan;
  try {
    const auto doc = nlohmann::json::parse(text);
    const std::string action = doc.at("action").get<std::string>();
    plan.action = action == "run"       ? RankPlan::Action::kRun
                  : action == "nothing" ? RankPlan::Action::kNothingToDo
                                        : RankPlan::Action::kFailed;
    plan.run_dir = doc.at("run_dir").get<std::string>();
    plan.resume = doc.at("resume").get<bool>();
    plan.error = doc.at("error").get<std::string>();
  } catch (const nlohmann::json::exception& e) {
    throw dist::RankError("rank " + std::to_string(group.rank()) +
                          ": rank 0's run plan is unreadable (" + e.what() +
                          "); are all ranks the same exprun version?");
  }
  if (plan.action == RankPlan::Action::kFailed) {
    throw dist::RankError("rank " + std::to_string(group.rank()) +
                          ": rank 0 could not start: " + plan.error);
  }
  return plan;
}

}  // namespace exprun

// What rank 0 tells the other ranks before a run, so that only one process decides (and
// creates, locks and writes) the run directory: where the run is, whether it resumes, or that
// there is nothing to do, or why rank 0 could not start. The others wait for it, at most the
// collective timeout.
#pragma once

#include <filesystem>
#include <string>

#include "dist/process_group.hpp"

namespace exprun {

struct RankPlan {
  enum class Action { kRun, kNothingToDo, kFailed };
  Action action = Action::kRun;
  std::filesystem::path run_dir;
  bool resume = false;
  std::string error;  // kFailed: rank 0's message
};

// Rank 0 calls send, every other rank receive, exactly once per process.
void send_rank_plan(dist::ProcessGroup& group, const RankPlan& plan);
// Throws RankError carrying rank 0's message when rank 0 failed.
RankPlan receive_rank_plan(dist::ProcessGroup& group);

}  // namespace exprun

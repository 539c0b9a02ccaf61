// Crash points for testing recovery: EXPRUN_FAULT=SIGNAL@POINT makes the process raise SIGNAL
// (KILL, TERM or INT) when it reaches POINT, so a test can kill a run at an exact moment
// (docs/cli.md, "Testing recovery"). Unset, fault_point costs one comparison.
//
// Points (the registry in fault_injection.cpp; a new call site adds its kind there):
//         step:STAGE:EPOCH:STEP       after that optimiser step (1-based epoch and step)
//         checkpoint:STAGE:EPOCH:NAME half-way through writing NAME.pt (best, latest, epoch_N)
//                                     with EPOCH epochs done
//         stage-end:STAGE             after the stage is complete, before the next one starts
#pragma once

#include <string>
#include <vector>

namespace exprun {

void fault_point(const std::string& point);

// Checks EXPRUN_FAULT before anything runs, so a misspelt point cannot let a recovery test pass
// by never firing: the signal, the point's kind and fields, and its STAGE against
// `stage_names` (the experiment's stages). Throws std::invalid_argument naming the value and
// listing the known points. Does nothing when EXPRUN_FAULT is unset or empty.
void check_fault_setting(const std::vector<std::string>& stage_names);

}  // namespace exprun

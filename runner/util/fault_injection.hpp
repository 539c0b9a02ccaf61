// Crash points for testing recovery: EXPRUN_FAULT=SIGNAL@POINT makes the process raise SIGNAL
// (KILL, TERM or INT) when it reaches POINT, so a test can kill a run at an exact moment
// (docs/cli.md, "Testing resume"). Unset, fault_point costs one comparison.
//
// Points: step:STAGE:EPOCH:STEP      after that optimiser step (1-based epoch and step)
//         checkpoint:STAGE:EPOCH:NAME half-way through writing NAME.pt (best, latest, epoch_N)
//         stage-end:STAGE            after the stage is complete, before the next one starts
#pragma once

#include <string>

namespace exprun {

void fault_point(const std::string& point);

}  // namespace exprun

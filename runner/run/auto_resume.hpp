// --resume=auto: continue a run directory if it holds an unfinished run, else start it there.
// What a requeued Slurm job needs, whose command line cannot know whether it ran before.
#pragma once

#include <filesystem>

namespace exprun {

enum class RunDirState {
  kNoRun,       // no folder, or one without report.json: a run starts there
  kUnfinished,  // report.json says anything but "completed": the run is resumed
  kCompleted,   // nothing to do
};

// Throws JsonInputError (naming the file) when report.json exists but cannot be read: starting
// over there would overwrite a run that may only be damaged.
RunDirState run_dir_state(const std::filesystem::path& run_dir);

}  // namespace exprun

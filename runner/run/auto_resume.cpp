#include "run/auto_resume.hpp"

#include "util/json_file.hpp"

namespace exprun {

RunDirState run_dir_state(const std::filesystem::path& run_dir) {
  const auto report_file = run_dir / "report.json";
  std::error_code ec;
  if (!std::filesystem::exists(report_file, ec)) return RunDirState::kNoRun;
  const nlohmann::json report = read_json_file(report_file);
  const auto status = report.find("status");
  if (!report.is_object() || status == report.end() || !status->is_string())
    throw JsonInputError(report_file.string() + ": expected \"status\" (string)");
  return *status == "completed" ? RunDirState::kCompleted : RunDirState::kUnfinished;
}

}  // namespace exprun

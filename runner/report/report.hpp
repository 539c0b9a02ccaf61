// report.json: the whole run in one versioned document (docs/report.md describes each field).
#pragma once

#include <nlohmann/json.hpp>

#include <chrono>
#include <ctime>
#include <filesystem>
#include <string>

#include "config/experiment.hpp"

namespace exprun {

// 2: stage status "interrupted", checkpoint.monitor decides best_epoch, resumes, chains.
inline constexpr int kReportSchemaVersion = 2;

// The environment a run saw: exprun and LibTorch versions, device, threads.
nlohmann::json environment_json(std::int64_t threads);

class RunReport {
 public:
  // threads: the thread count actually in use (threads = 0 resolved); started: the time the run
  // id was made from.
  RunReport(const Experiment& experiment, std::string run_id, std::filesystem::path path,
            std::int64_t threads, std::time_t started);
  // Continues a report written by an earlier, unfinished run of the same experiment: keeps its
  // start time, stages and wall time, and records this resume in "resumes".
  void continue_from(const nlohmann::json& previous);
  // environment.distributed: the ranks that train together (call before continue_from, so that
  // the resume records it too).
  void set_distributed(const nlohmann::json& distributed);
  // Replaces (or appends) the section of the stage with this name.
  void set_stage(const nlohmann::json& stage);
  // Marks a stage failed, keeping whatever it had reported before failing.
  void fail_stage(const std::string& name, const std::string& error);
  void set_status(const std::string& status, const std::string& error = "");
  // Writes report.json atomically.
  void write() const;
  // The document as write() writes it, wall_time_s included.
  nlohmann::json json() const;

 private:
  nlohmann::json doc_;
  std::filesystem::path path_;
  std::chrono::steady_clock::time_point start_;
  double earlier_wall_seconds_ = 0;  // of the runs this one continues
};

}  // namespace exprun

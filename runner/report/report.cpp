#include "report/report.hpp"

#include <torch/torch.h>

#include <chrono>
#include <ctime>
#include <thread>

#include "util/atomic_file.hpp"
#include "util/cuda_build.hpp"
#include "util/json_file.hpp"
#include "util/text.hpp"

namespace exprun {
nlohmann::json environment_json(std::int64_t threads) {
  const CudaBuildInfo cuda = cuda_build_info();
  nlohmann::json out = {{"exprun_version", EXPRUN_VERSION},
                        {"libtorch_version", TORCH_VERSION},
                        {"cuda_compiled", cuda.cuda_compiled},
                        {"cuda_available", cuda.cuda_available},
                        {"cuda_devices", cuda.cuda_devices},
                        {"threads", threads},
                        {"hardware_threads", std::thread::hardware_concurrency()}};
  if (cuda.cuda_version) out["cuda_version"] = *cuda.cuda_version;
  if (cuda.cudnn_version) out["cudnn_version"] = *cuda.cudnn_version;
  return out;
}

RunReport::RunReport(const Experiment& experiment, std::string run_id, std::filesystem::path path,
                     std::int64_t threads, std::time_t started)
    : path_(std::move(path)), start_(std::chrono::steady_clock::now()) {
  doc_ = {{"schema_version", kReportSchemaVersion},
          {"kind", "run"},
          {"experiment", experiment.name},
          {"run_id", std::move(run_id)},
          {"status", "running"},
          {"started_at", format_utc(started, kIsoUtc)},
          {"finished_at", nullptr},
          {"wall_time_s", 0.0},
          {"config", to_json(experiment)},
          {"environment", environment_json(threads)},
          {"stages", nlohmann::json::array()},
          {"resumes", nlohmann::json::array()}};
}

void RunReport::continue_from(const nlohmann::json& previous) {
  doc_["started_at"] = previous.value("started_at", doc_["started_at"]);
  doc_["stages"] = previous.value("stages", nlohmann::json::array());
  doc_["resumes"] = previous.value("resumes", nlohmann::json::array());
  earlier_wall_seconds_ = previous.value("wall_time_s", 0.0);
  doc_["resumes"].push_back({{"at", format_utc_now(kIsoUtc)},
                             {"previous_status", previous.value("status", "")},
                             {"environment", doc_["environment"]}});
}

void RunReport::set_distributed(const nlohmann::json& distributed) {
  doc_["environment"]["distributed"] = distributed;
}

void RunReport::set_stage(const nlohmann::json& stage) {
  for (auto& existing : doc_["stages"]) {
    if (existing["name"] == stage["name"]) {
      existing = stage;
      return;
    }
  }
  doc_["stages"].push_back(stage);
}

void RunReport::fail_stage(const std::string& name, const std::string& error) {
  nlohmann::json section = {{"name", name}};
  for (const auto& existing : doc_["stages"])
    if (existing["name"] == name) section = existing;
  section["status"] = "failed";
  section["error"] = error;
  set_stage(section);
  set_status("failed", "stage " + name + ": " + error);
}

void RunReport::set_status(const std::string& status, const std::string& error) {
  doc_["status"] = status;
  if (!error.empty()) doc_["error"] = error;
  if (status != "running") doc_["finished_at"] = format_utc_now(kIsoUtc);
}

nlohmann::json RunReport::json() const {
  nlohmann::json doc = doc_;
  doc["wall_time_s"] =
      earlier_wall_seconds_ +
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  return doc;
}

void RunReport::write() const { write_file_atomically(path_, json_file_text(json())); }

}  // namespace exprun

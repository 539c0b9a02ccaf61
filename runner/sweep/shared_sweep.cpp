#include "sweep/shared_sweep.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>

#include "config/config_error.hpp"
#include "run/auto_resume.hpp"
#include "run/rank_plan.hpp"
#include "run/run_lock.hpp"
#include "sweep/sweep_report.hpp"
#include "train/progress.hpp"
#include "util/atomic_file.hpp"
#include "util/host_name.hpp"
#include "util/json_file.hpp"
#include "util/text.hpp"

namespace exprun {
namespace fs = std::filesystem;
namespace {

// Held while sweep.json is read, merged and written, so that two trials ending at once cannot
// each write a sweep.json that misses the other. Blocking: the holder needs milliseconds.
// RunLock refuses a held lock instead, which is right for a run and wrong here.
class SweepFileLock {
 public:
  explicit SweepFileLock(const fs::path& sweep_dir) {
    const fs::path file = sweep_dir / "status" / ".lock";
    fd_ = ::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0)
      throw std::runtime_error("cannot create " + file.string() + ": " + std::strerror(errno));
    int result;
    do {
      result = ::flock(fd_, LOCK_EX);
    } while (result != 0 && errno == EINTR);
    if (result != 0) {
      const int error = errno;
      if (!flock_unsupported(error)) {
        ::close(fd_);
        throw std::runtime_error("cannot lock " + file.string() + ": " + std::strerror(error));
      }
      static std::atomic<bool> warned{false};
      if (!warned.exchange(true)) {
        Progress::message("exprun: warning: cannot lock " + file.string() + " (" +
                          std::strerror(error) +
                          "): trials ending at the same moment may leave sweep.json a trial "
                          "behind; exprun compare DIR rebuilds it");
      }
    }
  }
  ~SweepFileLock() { ::close(fd_); }  // closing the descriptor releases the flock
  SweepFileLock(const SweepFileLock&) = delete;
  SweepFileLock& operator=(const SweepFileLock&) = delete;

 private:
  int fd_ = -1;
};

std::string read_text(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// The status file of one trial: its sweep.json entry, and when and where this attempt ran.
void write_trial_status(const fs::path& sweep_dir, const nlohmann::json& entry,
                        const std::string& started_at, const nlohmann::json& finished_at) {
  const nlohmann::json status = {{"trial", entry},
                                 {"started_at", started_at},
                                 {"finished_at", finished_at},
                                 {"host", host_name()},
                                 {"pid", static_cast<std::int64_t>(::getpid())}};
  write_file_atomically(trial_status_file(sweep_dir, entry["index"].get<std::size_t>()),
                        json_file_text(status));
}

bool is_trial_status_name(const std::string& name) {
  return name.rfind("trial-", 0) == 0 && name.size() > 11 &&
         name.compare(name.size() - 5, 5, ".json") == 0;
}

std::string sweep_status(const nlohmann::json& trials) {
  bool interrupted = false, failed = false;
  for (const auto& t : trials) {
    const std::string status = t.value("status", "");
    if (status == "pending" || status == "running") return "running";
    interrupted = interrupted || status == "interrupted";
    failed = failed || status != "completed";
  }
  return interrupted ? "interrupted" : failed ? "failed" : "completed";
}

// Whether another process holds the trial's run lock: then its "running" status is that
// process's, and an error of ours about the lock must not overwrite it.
bool trial_held_elsewhere(const fs::path& trial_dir) {
  std::error_code ec;
  if (!fs::is_directory(trial_dir, ec)) return false;
  try {
    const RunLock probe(trial_dir);
    return false;
  } catch (const std::runtime_error&) {
    return true;
  }
}

}  // namespace

fs::path trial_status_file(const fs::path& sweep_dir, std::size_t index) {
  return sweep_dir / "status" / (trial_dir_name(index) + ".json");
}

bool is_shared_sweep(const fs::path& sweep_dir) {
  std::error_code ec;
  return fs::is_directory(sweep_dir / "status", ec);
}

void open_shared_sweep(const fs::path& sweep_dir, const SweepFile& file,
                       const std::vector<std::string>& overrides,
                       const std::string& experiment_name) {
  const std::string copy = sweep_file_copy(file, overrides);
  const fs::path copy_file = sweep_dir / "experiment.toml";
  auto check_copy = [&] {
    std::error_code ec;
    if (fs::exists(copy_file, ec) && !copies_of_one_sweep(read_text(copy_file), copy)) {
      throw ConfigError("--sweep-dir " + sweep_dir.string() + ": " + copy_file.string() +
                        " is another experiment file or was given other --set options than " +
                        file.path + " now; give a new --sweep-dir for a new sweep");
    }
  };
  check_copy();  // before anything is created in a folder that is not ours
  try {
    fs::create_directories(sweep_dir / "status");
  } catch (const fs::filesystem_error& e) {  // it names the folder, not the option
    throw std::runtime_error("--sweep-dir " + sweep_dir.string() + ": cannot create " +
                             e.path1().string() + ": " + e.code().message());
  }
  const SweepFileLock lock(sweep_dir);
  check_copy();  // again under the lock: another trial may have just created it
  std::error_code ec;
  if (!fs::exists(copy_file, ec)) write_file_atomically(copy_file, copy);
  if (!fs::exists(sweep_dir / "sweep.json", ec)) {
    const SweepReport listing(*file.spec, experiment_name, file.path, overrides,
                              file.spec->trials(), sweep_dir / "sweep.json", std::time(nullptr));
    listing.write();
  }
}

nlohmann::json rebuild_shared_sweep(const fs::path& sweep_dir) {
  const SweepFileLock lock(sweep_dir);
  const fs::path sweep_file = sweep_dir / "sweep.json";
  nlohmann::json doc = read_json_file(sweep_file);
  if (!doc.is_object() || !doc.contains("trials") || !doc["trials"].is_array())
    throw JsonInputError(sweep_file.string() + ": expected \"trials\" (array)");

  std::map<std::size_t, nlohmann::json> trials;
  for (const auto& t : doc["trials"]) {
    if (!t.contains("index") || !t["index"].is_number_unsigned())
      throw JsonInputError(sweep_file.string() + ": a trial without \"index\" (whole number)");
    trials[t["index"].get<std::size_t>()] = t;
  }
  std::optional<std::time_t> last_finish;
  std::vector<fs::path> status_files;
  for (const auto& entry : fs::directory_iterator(sweep_dir / "status")) {
    if (is_trial_status_name(entry.path().filename().string()))
      status_files.push_back(entry.path());
  }
  for (const auto& file : status_files) {
    const nlohmann::json status = read_json_file(file);
    const auto trial = status.find("trial");
    if (!status.is_object() || trial == status.end() || !trial->is_object() ||
        !trial->contains("index") || !(*trial)["index"].is_number_unsigned()) {
      throw JsonInputError(file.string() + ": expected \"trial\" with \"index\" (whole number)");
    }
    const auto index = (*trial)["index"].get<std::size_t>();
    const auto listed = trials.find(index);
    // An edited or damaged status file must not turn a valid sweep.json into an invalid one.
    if (const std::string problem =
            trial_entry_problem(*trial, listed == trials.end() ? nullptr : listed->second);
        !problem.empty()) {
      Progress::message("exprun: warning: " + file.string() + ": not merged into " +
                        sweep_file.string() + ": \"trial\": " + problem);
      continue;
    }
    listed->second = *trial;
    if (status.contains("finished_at") && status["finished_at"].is_string()) {
      if (const auto t = parse_utc(status["finished_at"].get<std::string>(), kIsoUtc))
        last_finish = std::max(last_finish.value_or(*t), *t);
    }
  }
  doc["trials"] = nlohmann::json::array();
  for (auto& [index, t] : trials) doc["trials"].push_back(std::move(t));

  doc["status"] = sweep_status(doc["trials"]);
  const bool ended = doc["status"] != "running";
  doc["finished_at"] = ended && last_finish ? nlohmann::json(format_utc(*last_finish, kIsoUtc))
                                            : nlohmann::json(nullptr);
  const auto started = parse_utc(doc.value("started_at", std::string()), kIsoUtc);
  const std::time_t until = ended && last_finish ? *last_finish : std::time(nullptr);
  doc["wall_time_s"] = started ? std::max<double>(0.0, std::difftime(until, *started)) : 0.0;
  write_file_atomically(sweep_file, json_file_text(doc));
  return doc;
}

SweepOutcome run_shared_sweep_trials(const fs::path& sweep_dir, const SweepFile& file,
                                     const std::vector<LoadedTrial>& trials,
                                     const std::vector<std::string>& overrides,
                                     const Registry& registry, bool resume_auto,
                                     std::shared_ptr<dist::ProcessGroup> group) {
  // Every trial directory is looked at before anything runs: without --resume=auto, one that
  // holds a run already is refused as a whole, not found hours into the sweep.
  std::vector<RunDirState> states;
  for (const auto& t : trials) {
    const fs::path trial_dir = sweep_dir / trial_dir_name(t.trial.index);
    states.push_back(run_dir_state(trial_dir));
    if (!resume_auto && states.back() != RunDirState::kNoRun) {
      throw ConfigError("--sweep-dir " + sweep_dir.string() + ": " + trial_dir.string() +
                        " holds a run already; --resume=auto continues it (or skips it when "
                        "it completed)");
    }
  }
  open_shared_sweep(sweep_dir, file, overrides, trials.front().experiment.name);

  SweepOutcome outcome;
  outcome.sweep_dir = sweep_dir;
  outcome.ok = true;
  for (std::size_t n = 0; n < trials.size(); ++n) {
    const SweepTrial& trial = trials[n].trial;
    const fs::path trial_dir = sweep_dir / trial_dir_name(trial.index);
    nlohmann::json entry = pending_trial_entry(trial);
    if (states[n] == RunDirState::kCompleted) {
      Progress::message("exprun: sweep trial " + std::to_string(trial.index) +
                        " completed already: " + trial_dir.string());
      if (group) send_rank_plan(*group, {RankPlan::Action::kNothingToDo, trial_dir, false, {}});
      // Its status file may be missing (a crash after the run, before the file was written).
      const nlohmann::json report = read_json_file(trial_dir / "report.json");
      record_trial_end(entry, report, "", report.value("wall_time_s", 0.0));
      write_trial_status(sweep_dir, entry, report.value("started_at", ""),
                         report.value("finished_at", nlohmann::json(nullptr)));
      continue;
    }
    const bool resume = states[n] == RunDirState::kUnfinished;
    Progress::message("exprun: sweep trial " + std::to_string(trial.index) + " (" +
                      std::to_string(n + 1) + "/" + std::to_string(trials.size()) +
                      "): " + (resume ? "resuming; " : "") + trial_values_text(trial));
    const std::string started_at = format_utc_now(kIsoUtc);
    entry["status"] = "running";
    write_trial_status(sweep_dir, entry, started_at, nullptr);
    rebuild_shared_sweep(sweep_dir);

    const TrialEnd end = run_trial(trials[n], registry, trial_dir, resume, group);
    if (!end.error.empty() && trial_held_elsewhere(trial_dir)) {
      // Another process is running this trial (the same array task started twice): its
      // status file is its own to write.
      Progress::message("exprun: sweep trial " + std::to_string(trial.index) + ": " + end.error);
      outcome.ok = false;
      continue;
    }
    // A resumed run's report adds up the wall time of every attempt; this attempt's is the
    // rest of what the trial cost.
    const double seconds =
        end.report.is_object() ? end.report.value("wall_time_s", end.seconds) : end.seconds;
    record_trial_end(entry, end.report, end.error, seconds);
    write_trial_status(sweep_dir, entry, started_at, format_utc_now(kIsoUtc));
    outcome.ok = outcome.ok && end.error.empty() && end.interrupted_by == 0;
    outcome.interrupted_by = end.interrupted_by;
    if (end.interrupted_by != 0) break;
    if (!end.error.empty())
      Progress::message("exprun: sweep trial " + std::to_string(trial.index) +
                        " failed: " + end.error);
  }
  outcome.sweep = rebuild_shared_sweep(sweep_dir);
  return outcome;
}

}  // namespace exprun

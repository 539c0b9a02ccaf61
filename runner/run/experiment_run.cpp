#include "run/experiment_run.hpp"

#include <toml++/toml.h>
#include <torch/torch.h>

#include <csignal>
#include <ctime>
#include <iterator>
#include <sstream>

#include "config/config_error.hpp"
#include "data/film_cache.hpp"
#include "data/worker_count.hpp"
#include "report/report.hpp"
#include "run/interrupt.hpp"
#include "run/plugin_record.hpp"
#include "run/rank_plan.hpp"
#include "run/resume.hpp"
#include "run/run_lock.hpp"
#include "run/stage_chain.hpp"
#include "train/batch_tuner.hpp"
#include "train/data_parallel.hpp"
#include "train/progress.hpp"
#include "train/stage_builder.hpp"
#include "train/stage_trainer.hpp"
#include "util/atomic_file.hpp"
#include "util/blas_library.hpp"
#include "util/fault_injection.hpp"
#include "util/interrupt_flag.hpp"
#include "util/text.hpp"
#include "util/timestamp.hpp"

namespace exprun {
namespace fs = std::filesystem;
namespace {

// TOML++ builds documents but does not convert from JSON; the mapping is direct.
toml::table to_toml_table(const nlohmann::json& object);

void insert_toml(toml::table& table, const std::string& key, const nlohmann::json& value);

toml::array to_toml_array(const nlohmann::json& array) {
  toml::array out;
  for (const auto& item : array) {
    if (item.is_object()) {
      out.push_back(to_toml_table(item));
    } else if (item.is_array()) {
      out.push_back(to_toml_array(item));
    } else if (item.is_boolean()) {
      out.push_back(item.get<bool>());
    } else if (item.is_number_integer()) {
      out.push_back(item.get<std::int64_t>());
    } else if (item.is_number()) {
      out.push_back(item.get<double>());
    } else if (item.is_string()) {
      out.push_back(item.get<std::string>());
    }
  }
  return out;
}

void insert_toml(toml::table& table, const std::string& key, const nlohmann::json& value) {
  if (value.is_object()) {
    table.insert(key, to_toml_table(value));
  } else if (value.is_array()) {
    table.insert(key, to_toml_array(value));
  } else if (value.is_boolean()) {
    table.insert(key, value.get<bool>());
  } else if (value.is_number_integer()) {
    table.insert(key, value.get<std::int64_t>());
  } else if (value.is_number()) {
    table.insert(key, value.get<double>());
  } else if (value.is_string()) {
    table.insert(key, value.get<std::string>());
  }
}

toml::table to_toml_table(const nlohmann::json& object) {
  toml::table out;
  for (const auto& [key, value] : object.items()) insert_toml(out, key, value);
  return out;
}

}  // namespace

std::int64_t apply_thread_count(std::int64_t threads, int ranks_on_machine) {
  const std::int64_t count = compute_thread_count(threads, usable_cores(), ranks_on_machine);
  at::set_num_threads(static_cast<int>(count));
  set_blas_threads(static_cast<int>(count));
  return count;
}

fs::path make_run_dir(const fs::path& output, const std::string& name, std::time_t started) {
  const std::string base = utc_timestamp(started);
  // filesystem_error names the folder but neither the key nor the option that chose it.
  try {
    for (int attempt = 1;; ++attempt) {
      fs::path dir = output / name / (attempt == 1 ? base : base + "-" + std::to_string(attempt));
      fs::create_directories(dir.parent_path());
      // create_directory reports whether it made the folder, so two runs never share one.
      if (fs::create_directory(dir)) return dir;
    }
  } catch (const fs::filesystem_error& e) {
    throw std::runtime_error("experiment.output = \"" + output.string() +
                             "\" (--output sets it): cannot create the run folder " +
                             e.path1().string() + ": " + e.code().message());
  }
}

std::string resolved_config_toml(const nlohmann::json& config) {
  toml::table doc;
  doc.insert("experiment", to_toml_table(config["experiment"]));
  toml::array stages;
  for (const auto& stage : config["stages"]) stages.push_back(to_toml_table(stage));
  doc.insert("stage", std::move(stages));
  std::ostringstream out;
  out << "# The configuration exprun resolved for this run: every default filled in.\n";
  out << doc << "\n";
  return out.str();
}

namespace {

// micro_batch = "auto": measure now, print the table, train with the choice. With several
// ranks each measures its own share of the global batch on its own device, and all take the
// smallest choice, so that every rank fits.
void tune_for_run(BuiltStage& built, const StageConfig& config, dist::ProcessGroup* group) {
  StageConfig share = config;
  if (group) {
    const std::int64_t ranks = group->world_size();
    share.memory.effective_batch = (config.memory.effective_batch + ranks - 1) / ranks;
  }
  const StageConfig& stage = share;
  const TuneOptions options = tune_options_for(stage, built);
  Progress::message(
      "exprun: stage " + stage.name + ": tuning the micro-batch for effective batch " +
      std::to_string(stage.memory.effective_batch) + " under " +
      format_bytes(options.limit_bytes()) + " (" + options.budget_source + " " +
      format_bytes(options.budget_bytes) + " less " + format_number(100 * options.margin) + "%)");
  const TuneResult result = tune_micro_batch(built, stage, options);
  apply_tuning(built, result);
  built.tuning = result.to_json();
  std::string table = tune_table(result);
  if (!table.empty() && table.back() == '\n') table.pop_back();
  Progress::message(table);
  if (group) {
    torch::Tensor negated = torch::tensor({-built.micro_batch}, torch::kInt64);
    group->all_reduce_max(negated, "agreeing the micro-batch");
    const std::int64_t smallest = -negated.item<std::int64_t>();
    if (smallest != built.micro_batch) {
      built.micro_batch = smallest;
      built.strategies = built.make_strategies(smallest);
    }
    built.tuning["ranks_agreed_micro_batch"] = smallest;
    Progress::message(
        "exprun: stage " + stage.name + ": each of " + std::to_string(group->world_size()) +
        " ranks trains " + std::to_string(stage.memory.effective_batch) + " of " +
        std::to_string(config.memory.effective_batch) + " images per step, micro-batch " +
        std::to_string(smallest) + " (the smallest any rank chose)");
    return;
  }
  Progress::message("exprun: stage " + stage.name + ": micro-batch " +
                    std::to_string(result.chosen_micro_batch) + " x " +
                    built.tuning["chosen_accumulation"].dump() + " accumulation");
}

// interrupt_signal(), agreed by all ranks: one of them may have been signalled alone.
int agreed_stop_signal(dist::ProcessGroup* group) {
  if (!group) return interrupt_signal();
  torch::Tensor value =
      torch::tensor({static_cast<std::int64_t>(interrupt_signal())}, torch::kInt64);
  group->all_reduce_max(value, "agreeing whether to stop");
  return static_cast<int>(value.item<std::int64_t>());
}

// The batch plan a resumed stage trained with: what the tuner chose then, not a new
// measurement, so the steps continue exactly as before.
void reuse_batch_plan(BuiltStage& built, const StageConfig& stage, const CheckpointInfo& info) {
  if (!stage.memory.micro_batch_auto) return;
  built.micro_batch = info.micro_batch;
  built.strategies = built.make_strategies(info.micro_batch);
  Progress::message("exprun: stage " + stage.name + ": micro-batch " +
                    std::to_string(info.micro_batch) + " as chosen before the interruption");
}

const nlohmann::json* section_of_stage(const nlohmann::json& report, const std::string& name) {
  for (const auto& section : report["stages"])
    if (section.value("name", "") == name) return &section;
  return nullptr;
}

}  // namespace

// The names below are those of run/, train/ and report/ writers; a user's `notes.tmp-2024` or
// an `eval-test.json` that `exprun eval` (which does not take the lock) is writing is not one.
bool is_atomic_run_file(const fs::path& relative) {
  const std::string name = relative.filename().string();
  const auto depth = std::distance(relative.begin(), relative.end());
  if (depth == 1)
    return name == "report.json" || name == "experiment.toml" || name == "resolved.toml" ||
           name == kPluginRecordFile;
  if (depth == 2) return name == "metrics.jsonl" || name == "curves.png";
  return depth == 3 && relative.parent_path().filename() == "checkpoints" &&
         relative.extension() == ".pt";
}

namespace {

// The film cache's environment (EXPRUN_CACHE_SIZE, a place for it) is read when a stage using
// it is built; read now too, so that a mistake there stops the run before any stage trains.
void check_film_cache_environment(const Experiment& experiment) {
  for (const auto& stage : experiment.stages) {
    if (stage.data.cache) {
      film_cache_settings_from_environment();
      return;
    }
  }
}

}  // namespace

void check_fault_points(const Experiment& experiment) {
  std::vector<std::string> stages;
  for (const auto& stage : experiment.stages) stages.push_back(stage.name);
  try {
    check_fault_setting(stages);
  } catch (const std::invalid_argument& e) {
    throw ConfigError(e.what());
  }
}

namespace {

// Rank 0's (or the only process's) choice of run directory: created, or shown to be a run of
// this experiment when resuming.
void choose_run_dir(const Experiment& experiment, const fs::path& run_dir, bool resume,
                    std::time_t started, RunOutcome& outcome) {
  if (resume) {
    if (!fs::is_directory(run_dir))
      throw std::runtime_error("cannot resume " + run_dir.string() + ": no such directory");
    // Before the lock file is made: --resume=DIR may name any folder by mistake, and one that is
    // not a run of this experiment must be left exactly as it was.
    read_run_to_resume(run_dir, experiment);
    outcome.run_dir = run_dir;
    return;
  }
  if (run_dir.empty()) {
    outcome.run_dir = make_run_dir(experiment.output_dir, experiment.name, started);
    return;
  }
  // filesystem_error names the folder but not the option that chose it.
  try {
    fs::create_directories(run_dir);
  } catch (const fs::filesystem_error& e) {
    throw std::runtime_error("--run-dir " + run_dir.string() + ": cannot create the run folder " +
                             e.path1().string() + ": " + e.code().message());
  }
  outcome.run_dir = run_dir;
}

}  // namespace

RunOutcome run_experiment(const Experiment& experiment, const Registry& registry,
                          const fs::path& run_dir, bool resume,
                          std::shared_ptr<dist::ProcessGroup> group) {
  // One process, or rank 0: the only writer of the run directory.
  const bool writer = !group || group->rank() == 0;
  RunOutcome outcome;
  nlohmann::json previous;
  std::optional<RunLock> lock;
  std::int64_t threads = 0;
  const std::time_t started = std::time(nullptr);
  if (writer) {
    try {
      check_fault_points(experiment);
      check_film_cache_environment(experiment);
      threads = apply_thread_count(experiment.threads, group ? group->ranks_on_machine() : 1);
      choose_run_dir(experiment, run_dir, resume, started, outcome);
      // Held until the run returns, every stage included: a second process (a --resume while
      // this one trains) is refused instead of writing the same files.
      lock.emplace(outcome.run_dir);
      // Again under the lock: a writer that ended since the check above may have changed it.
      if (resume) previous = read_run_to_resume(outcome.run_dir, experiment);
    } catch (const std::exception& e) {
      if (group) send_rank_plan(*group, {RankPlan::Action::kFailed, {}, false, e.what()});
      throw;
    }
    if (group) send_rank_plan(*group, {RankPlan::Action::kRun, outcome.run_dir, resume, {}});
  } else {
    check_fault_points(experiment);
    check_film_cache_environment(experiment);
    threads = apply_thread_count(experiment.threads, group ? group->ranks_on_machine() : 1);
    const RankPlan plan = receive_rank_plan(*group);
    outcome.run_dir = plan.run_dir;
    if (plan.action == RankPlan::Action::kNothingToDo) {
      outcome.ok = true;
      outcome.nothing_to_do = true;
      return outcome;
    }
    resume = plan.resume;
    if (resume) previous = read_run_to_resume(outcome.run_dir, experiment);
  }
  if (writer) {
    // A crash between writing a temporary file and renaming it leaves NAME.tmp-PID behind; with
    // the lock held, no other process can be writing one, not even one with our pid (in a
    // container every run may be pid 1), and this process has written nothing yet.
    for (const auto& stale : remove_stale_temporaries(outcome.run_dir, is_atomic_run_file)) {
      Progress::message("exprun: removed " + stale.string() + ", left by an interrupted write");
    }
  }
  const std::string run_id = outcome.run_dir.filename().string();

  if (!resume && writer) {
    std::string input = "# " + experiment.source_file + " as given";
    for (const auto& o : experiment.overrides) input += ", --set " + o;
    input += "\n" + experiment.source_text;
    write_file_atomically(outcome.run_dir / "experiment.toml", input);
    write_file_atomically(outcome.run_dir / "resolved.toml",
                          resolved_config_toml(to_json(experiment)));
    write_plugin_record(outcome.run_dir, plugins_used(experiment, registry));
  }

  RunReport report(experiment, run_id, outcome.run_dir / "report.json", threads, started);
  report.set_distributed(describe_distribution(group.get()));
  if (resume) report.continue_from(previous);
  auto write_report = [&] {
    if (writer) report.write();
  };
  write_report();
  Progress::message(std::string("exprun: ") + (resume ? "resuming" : "run") + " " +
                    outcome.run_dir.string() + " (" + std::to_string(threads) + " threads" +
                    (group ? ", " + std::to_string(group->world_size()) + " ranks" : "") + ")");
  const InterruptGuard interrupts;
  outcome.ok = true;
  int stop_signal = 0;  // that stopped the run before the last stage finished
  for (std::size_t i = 0; i < experiment.stages.size(); ++i) {
    const StageConfig& stage = experiment.stages[i];
    try {
      stop_signal = agreed_stop_signal(group.get());
      if (stop_signal != 0) break;
      if (resume) {
        const nlohmann::json* done = section_of_stage(previous, stage.name);
        if (done && done->value("status", "") == "completed") {
          Progress::message("exprun: stage " + stage.name + " completed before; skipped");
          continue;
        }
      }
      BuiltStage built = build_stage(experiment, stage, i, registry,
                                     group ? std::optional<int>(group->local_rank()) : std::nullopt,
                                     group ? group->ranks_on_machine() : 1);
      const fs::path stage_dir = outcome.run_dir / stage.name;
      // Rank 0 picks the checkpoint (and removes what crashed writes left); the others take its
      // choice, so that every rank continues from the same file.
      std::optional<fs::path> checkpoint;
      if (resume && writer) checkpoint = newest_valid_checkpoint(stage_dir);
      if (resume && group) {
        const std::string chosen = group->share_from_rank0("checkpoint/" + std::to_string(i),
                                                           checkpoint ? checkpoint->string() : "");
        if (!chosen.empty()) checkpoint = fs::path(chosen);
      }
      if (checkpoint) {
        reuse_batch_plan(built, stage, read_checkpoint_info(*checkpoint));
      } else if (stage.memory.micro_batch_auto) {
        tune_for_run(built, stage, group.get());
      }
      nlohmann::json chain = apply_stage_chain(stage, built, outcome.run_dir, !checkpoint);
      Progress::message("exprun: stage " + stage.name + " on " + built.device.str() + ": " +
                        std::to_string(built.train->size()) + " train / " +
                        std::to_string(built.valid->size()) + " validation images, " +
                        std::to_string(built.parameter_count) + " parameters, " +
                        std::to_string(built.data_workers) + " data workers" +
                        (stage.data.workers_auto ? " (auto)" : ""));
      StageTrainer trainer(
          experiment, stage, i, std::move(built), stage_dir,
          [&](const nlohmann::json& section) {
            report.set_stage(section);
            write_report();
          },
          std::move(chain), group);
      if (checkpoint) {
        const CheckpointInfo info = trainer.resume_from(*checkpoint);
        Progress::message("exprun: stage " + stage.name + ": continuing from " +
                          checkpoint->string() + " (epoch " + std::to_string(info.epoch) +
                          (info.step_in_epoch > 0
                               ? ", step " + std::to_string(info.step_in_epoch) + " of the next"
                               : "") +
                          " done)");
      }
      const nlohmann::json section = trainer.run();
      report.set_stage(section);
      write_report();
      if (section["status"] == "interrupted") {
        stop_signal = trainer.stop_signal();
        break;
      }
      fault_point("stage-end:" + stage.name);
    } catch (const c10::Error& e) {
      report.fail_stage(stage.name, e.what_without_backtrace());
      outcome.ok = false;
    } catch (const std::exception& e) {
      report.fail_stage(stage.name, e.what());
      outcome.ok = false;
    }
    if (!outcome.ok) break;
  }
  if (outcome.ok && stop_signal != 0) {
    outcome.ok = false;
    outcome.interrupted_by = stop_signal;
    report.set_status("interrupted", std::string("stopped by ") + stop_signal_name(stop_signal));
  } else if (outcome.ok) {
    report.set_status("completed");
  }
  write_report();
  outcome.report = report.json();
  if (!writer && !outcome.ok && outcome.interrupted_by == 0) {
    // Rank 0 records failures in the report; another rank has only its message to show.
    for (const auto& section : outcome.report["stages"])
      if (section.value("status", "") == "failed")
        Progress::message_always("exprun: rank " + std::to_string(group->rank()) + ": stage " +
                                 section.value("name", "") +
                                 " failed: " + section.value("error", ""));
  }
  return outcome;
}

}  // namespace exprun

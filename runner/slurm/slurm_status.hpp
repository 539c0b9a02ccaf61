// What `exprun slurm status DIR` prints: each trial's state from its status file, next to what
// Slurm's queue says of its array task. Pure functions of the documents and squeue's output.
#pragma once

#include <nlohmann/json.hpp>

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace exprun::slurm {

// squeue -h -r -o '%i %T' output ("77_0 RUNNING", one task a line) as id -> state. Lines that do
// not have two fields are skipped.
std::map<std::string, std::string> parse_squeue_states(const std::string& text);

// The job id `sbatch --parsable` printed: "77" or "77;cluster" -> "77". Empty when the first line
// is not a job id.
std::string parse_sbatch_job_id(const std::string& out);

// The id squeue shows for a trial's array task: "77_2".
std::string array_task_id(const std::string& job_id, std::size_t trial);

// One row per trial of a shared sweep's sweep.json: the trial, one column per swept key, its
// status, its Slurm state (only when `queue` is given: the task's state, "-" for a trial that
// ended, "not queued" for one that is pending or running in its status file but that the queue
// no longer holds), host and pid from its status file (`status_files`: index -> the file's
// document), and for a completed trial its last stage's best validation MRE.
std::string trial_status_table(const nlohmann::json& sweep,
                               const std::map<std::size_t, nlohmann::json>& status_files,
                               const std::optional<std::map<std::string, std::string>>& queue,
                               const std::string& job_id);

// The trials that are pending or running in sweep.json but not in the queue: their tasks ended
// without their status saying so (killed, or exprun refused to start: the log says why).
std::vector<std::size_t> trials_missing_from_queue(const nlohmann::json& sweep,
                                                   const std::map<std::string, std::string>& queue,
                                                   const std::string& job_id);

}  // namespace exprun::slurm

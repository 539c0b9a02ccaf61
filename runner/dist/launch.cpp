#include "dist/launch.hpp"

#include <unistd.h>

#include <charconv>
#include <climits>
#include <initializer_list>
#include <string_view>
#include <vector>

#include "dist/hostlist.hpp"
#include "dist/quoted.hpp"

extern char** environ;  // POSIX: the process's environment, NAME=VALUE strings

namespace exprun::dist {
namespace {

using Env = std::map<std::string, std::string>;

const std::string* find(const Env& env, const char* name) {
  const auto it = env.find(name);
  return it == env.end() ? nullptr : &it->second;
}

// NAME="VALUE", as every message shows a variable.
std::string shown(const char* name, const std::string& value) {
  return std::string(name) + "=" + quoted_value(value);
}

// "A", "A and B", "A, B and C".
std::string and_list(const std::vector<std::string>& items) {
  std::string text;
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i > 0) text += i + 1 == items.size() ? " and " : ", ";
    text += items[i];
  }
  return text;
}

// The first of `markers` that is set, as NAME="VALUE"; "" when none is.
std::string first_marker(const Env& env, std::initializer_list<const char*> markers) {
  for (const char* name : markers)
    if (const auto* value = find(env, name)) return shown(name, *value);
  return "";
}

// Throws unless every name is set. `launch` says which launcher the environment points to and
// why, so that a half-set environment reads as what it is.
void require(const Env& env, std::initializer_list<const char*> names, const std::string& launch) {
  std::vector<std::string> expected, missing;
  for (const char* name : names) {
    expected.emplace_back(name);
    if (!find(env, name)) missing.emplace_back(name);
  }
  if (missing.empty()) return;
  throw LaunchError(launch + ": expected " + and_list(expected) + ", but " + and_list(missing) +
                    (missing.size() == 1 ? " is" : " are") +
                    " not set; set EXPRUN_DIST=off to run as a single process");
}

// The whole value as a decimal number in [min, max]: no sign, no spaces, no suffix. Launchers
// write plain numbers; anything else is a mistake best reported, not half-read.
std::int64_t parse_number(const char* name, const std::string& value, std::int64_t min,
                          std::int64_t max, const std::string& what = "a whole number") {
  std::int64_t number = -1;
  const char* begin = value.data();
  const char* end = begin + value.size();
  const bool digits_only =
      !value.empty() && value.find_first_not_of("0123456789") == std::string::npos;
  const auto [stop, error] = std::from_chars(begin, end, number);
  if (!digits_only || error != std::errc() || stop != end || number < min || number > max) {
    throw LaunchError(shown(name, value) + ": expected " + what + " from " + std::to_string(min) +
                      " to " + std::to_string(max));
  }
  return number;
}

int int_var(const Env& env, const char* name, int min) {
  return static_cast<int>(parse_number(name, *find(env, name), min, INT_MAX));
}

std::optional<int> optional_int_var(const Env& env, const char* name, int min) {
  if (!find(env, name)) return std::nullopt;
  return int_var(env, name, min);
}

int port_var(const Env& env, const char* name) {
  return static_cast<int>(parse_number(name, *find(env, name), 1, 65535, "a port number"));
}

std::string address_var(const Env& env, const char* name) {
  const std::string& value = *find(env, name);
  if (value.empty() || value.find_first_of(" \t\n") != std::string::npos)
    throw LaunchError(shown(name, value) + ": expected a host name or IP address");
  return value;
}

// The names a launcher uses for the four numbers, for messages about how they relate.
struct RankNames {
  const char* rank;
  const char* world_size;
  const char* local_rank;
  const char* local_world_size;  // nullptr where the launcher gives none
};

void check_ranks(const Launch& launch, const RankNames& names) {
  auto fail = [](const char* name, int value, const std::string& expected) {
    throw LaunchError(shown(name, std::to_string(value)) + ": expected " + expected);
  };
  const std::string world = shown(names.world_size, std::to_string(launch.world_size));
  if (launch.rank >= launch.world_size)
    fail(names.rank, launch.rank, "less than " + world + " (ranks count from 0)");
  if (launch.local_world_size) {
    const std::string local_world =
        shown(names.local_world_size, std::to_string(*launch.local_world_size));
    if (*launch.local_world_size > launch.world_size)
      fail(names.local_world_size, *launch.local_world_size, "at most " + world);
    if (launch.local_rank >= *launch.local_world_size)
      fail(names.local_rank, launch.local_rank,
           "less than " + local_world + " (ranks count from 0)");
  } else if (launch.local_rank >= launch.world_size) {
    fail(names.local_rank, launch.local_rank, "less than " + world + " (ranks count from 0)");
  }
}

std::optional<SlurmJob> slurm_job(const Env& env) {
  if (!find(env, "SLURM_JOB_ID")) return std::nullopt;
  auto id = [&](const char* name) {
    return parse_number(name, *find(env, name), 0, INT64_MAX, "a job id");
  };
  SlurmJob job;
  job.job_id = id("SLURM_JOB_ID");
  if (find(env, "SLURM_ARRAY_JOB_ID")) job.array_job_id = id("SLURM_ARRAY_JOB_ID");
  if (find(env, "SLURM_ARRAY_TASK_ID")) job.array_task_id = id("SLURM_ARRAY_TASK_ID");
  if (find(env, "SLURM_RESTART_COUNT"))
    job.restart_count =
        parse_number("SLURM_RESTART_COUNT", *find(env, "SLURM_RESTART_COUNT"), 0, INT64_MAX);
  return job;
}

Launch torchrun_launch(const Env& env) {
  const std::string why =
      "torchrun launch (" +
      first_marker(env, {"TORCHELASTIC_RUN_ID", "TORCHELASTIC_USE_AGENT_STORE"}) + " is set)";
  require(env, {"RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"}, why);
  Launch launch;
  launch.launcher = Launcher::kTorchrun;
  launch.world_size = int_var(env, "WORLD_SIZE", 1);
  launch.rank = int_var(env, "RANK", 0);
  launch.local_rank = int_var(env, "LOCAL_RANK", 0);
  launch.local_world_size = optional_int_var(env, "LOCAL_WORLD_SIZE", 1);
  launch.master_addr = address_var(env, "MASTER_ADDR");
  launch.master_port = port_var(env, "MASTER_PORT");
  check_ranks(launch, {"RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE"});
  launch.elastic_restart_count = optional_int_var(env, "TORCHELASTIC_RESTART_COUNT", 0);
  // torchrun's workers compare with str(True), so only these two spellings mean anything.
  if (const auto* agent_store = find(env, "TORCHELASTIC_USE_AGENT_STORE")) {
    if (*agent_store != "True" && *agent_store != "False") {
      throw LaunchError(shown("TORCHELASTIC_USE_AGENT_STORE", *agent_store) +
                        ": expected True (join the agent's store) or False (rank 0 hosts one)");
    }
    launch.join_agent_store = *agent_store == "True";
  }
  if (launch.join_agent_store) {
    require(env, {"TORCHELASTIC_RESTART_COUNT"},
            "torchrun launch with its agent's store (TORCHELASTIC_USE_AGENT_STORE=\"True\")");
    // The agent keys each restart's rendezvous under this prefix; PyTorch's workers build it
    // from the variable's text, so the text is used here too.
    launch.store_prefix = "/worker/attempt_" + *find(env, "TORCHELASTIC_RESTART_COUNT");
  }
  return launch;
}

// The four variables by hand, or from a launcher exprun does not know by name.
Launch env_launch(const Env& env) {
  const std::string why =
      "env:// launch (" +
      first_marker(env, {"RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE"}) + " is set)";
  require(env, {"RANK", "WORLD_SIZE"}, why);
  Launch launch;
  launch.launcher = Launcher::kEnv;
  launch.world_size = int_var(env, "WORLD_SIZE", 1);
  launch.rank = int_var(env, "RANK", 0);
  launch.local_world_size = optional_int_var(env, "LOCAL_WORLD_SIZE", 1);
  if (find(env, "LOCAL_RANK")) {
    launch.local_rank = int_var(env, "LOCAL_RANK", 0);
  } else {
    // Without LOCAL_RANK all ranks are taken to share this machine, the usual hand-set case;
    // a LOCAL_WORLD_SIZE saying otherwise leaves the local rank unknowable.
    if (launch.local_world_size && *launch.local_world_size != launch.world_size) {
      throw LaunchError(
          why + ": expected LOCAL_RANK, since " +
          shown("LOCAL_WORLD_SIZE", std::to_string(*launch.local_world_size)) + " is not " +
          shown("WORLD_SIZE", std::to_string(launch.world_size)) +
          " (ranks on several machines); set EXPRUN_DIST=off to run as a single process");
    }
    launch.local_rank = launch.rank;
    launch.local_world_size = launch.world_size;
  }
  if (launch.world_size > 1) {
    require(env, {"MASTER_ADDR", "MASTER_PORT"},
            why + " with " + shown("WORLD_SIZE", *find(env, "WORLD_SIZE")));
  }
  if (find(env, "MASTER_ADDR")) launch.master_addr = address_var(env, "MASTER_ADDR");
  if (find(env, "MASTER_PORT")) launch.master_port = port_var(env, "MASTER_PORT");
  check_ranks(launch, {"RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE"});
  return launch;
}

// The first host of the step's node list. SLURM_NODELIST (the job's) only where a step gives no
// list of its own: srun always does.
std::string slurm_master_host(const Env& env, const std::string& why) {
  const char* name = find(env, "SLURM_STEP_NODELIST") ? "SLURM_STEP_NODELIST" : "SLURM_NODELIST";
  if (!find(env, name)) {
    throw LaunchError(why +
                      ": expected SLURM_STEP_NODELIST (or SLURM_NODELIST) to find the "
                      "master host, but neither is set; set MASTER_ADDR, or EXPRUN_DIST=off "
                      "to run as a single process");
  }
  try {
    return expand_hostlist(*find(env, name)).front();
  } catch (const std::invalid_argument& e) {
    throw LaunchError(std::string(name) + ": " + e.what());
  }
}

Launch slurm_step_launch(const Env& env) {
  const std::string why =
      "Slurm step (" + first_marker(env, {"SLURM_STEP_ID", "SLURM_STEP_NUM_TASKS"}) + " is set)";
  require(env, {"SLURM_PROCID", "SLURM_STEP_NUM_TASKS", "SLURM_LOCALID"}, why);
  Launch launch;
  launch.launcher = Launcher::kSlurm;
  launch.world_size = int_var(env, "SLURM_STEP_NUM_TASKS", 1);
  launch.rank = int_var(env, "SLURM_PROCID", 0);
  launch.local_rank = int_var(env, "SLURM_LOCALID", 0);
  check_ranks(launch, {"SLURM_PROCID", "SLURM_STEP_NUM_TASKS", "SLURM_LOCALID", nullptr});
  if (!launch.distributed()) return launch;
  launch.master_addr =
      find(env, "MASTER_ADDR") ? address_var(env, "MASTER_ADDR") : slurm_master_host(env, why);
  if (find(env, "MASTER_PORT")) {
    launch.master_port = port_var(env, "MASTER_PORT");
  } else {
    require(env, {"SLURM_JOB_ID"}, why + " without MASTER_PORT (the port derives from the job id)");
    launch.master_port = slurm_default_port(slurm_job(env)->job_id);
  }
  return launch;
}

// A batch script (or salloc shell) runs once for the whole job; its SLURM_PROCID=0 and
// SLURM_NTASKS=2 look like rank 0 of 2, which would wait forever for a rank 1 nobody starts.
void refuse_slurm_batch(const Env& env) {
  const auto* job = find(env, "SLURM_JOB_ID");
  const auto* tasks = find(env, "SLURM_NTASKS");
  if (!job || !tasks || parse_number("SLURM_NTASKS", *tasks, 1, INT_MAX) == 1) return;
  throw LaunchError(
      shown("SLURM_NTASKS", *tasks) + " in Slurm job " + *job +
      " without a job step (SLURM_STEP_ID is not set): this is the batch script or an salloc "
      "shell, which runs once, not once per task; start the ranks with srun (srun exprun run "
      "FILE.toml), or set EXPRUN_DIST=off to run a single process");
}

std::string slurm_text(const SlurmJob& job) {
  std::string text = "Slurm job " + std::to_string(job.job_id);
  if (job.array_job_id || job.array_task_id) {
    text += ", array task " + (job.array_job_id ? std::to_string(*job.array_job_id) : "?") + "_" +
            (job.array_task_id ? std::to_string(*job.array_task_id) : "?");
  }
  if (job.restart_count > 0) text += ", restart " + std::to_string(job.restart_count);
  return text;
}

std::string describe(const Launch& launch) {
  const std::string slurm = launch.slurm ? "; " + slurm_text(*launch.slurm) : "";
  const std::string label = launch.launcher == Launcher::kTorchrun ? "torchrun"
                            : launch.launcher == Launcher::kEnv    ? "env://"
                                                                   : "Slurm step";
  if (launch.launcher == Launcher::kSingle) return "single process" + slurm;
  if (!launch.distributed()) return "single process (" + label + " with world size 1)" + slurm;
  std::string local = "local " + std::to_string(launch.local_rank);
  if (launch.local_world_size) local += " of " + std::to_string(*launch.local_world_size);
  std::string store = "rank 0 hosts the store";
  if (launch.join_agent_store) {
    store = "joins the agent's store";
    if (launch.elastic_restart_count)
      store += " (attempt " + std::to_string(*launch.elastic_restart_count) + ")";
  }
  return label + " rank " + std::to_string(launch.rank) + " of " +
         std::to_string(launch.world_size) + " (" + local + "), master " + launch.master_addr +
         ":" + std::to_string(launch.master_port) + ", " + store + slurm;
}

}  // namespace

const char* launcher_name(Launcher launcher) {
  switch (launcher) {
    case Launcher::kSingle:
      return "single";
    case Launcher::kTorchrun:
      return "torchrun";
    case Launcher::kEnv:
      return "env";
    case Launcher::kSlurm:
      return "slurm";
  }
  return "single";
}

int slurm_default_port(std::int64_t job_id) { return 15000 + static_cast<int>(job_id % 10000); }

Launch detect_launch(const Env& env) {
  if (const auto* mode = find(env, "EXPRUN_DIST")) {
    if (*mode == "off") {
      Launch single;
      single.description = "single process (EXPRUN_DIST=off)";
      return single;
    }
    if (*mode != "auto") {
      throw LaunchError(shown("EXPRUN_DIST", *mode) +
                        ": expected off (one process, whatever a launcher set) or auto (detect "
                        "the launcher, as when it is unset)");
    }
  }
  Launch launch;
  if (find(env, "TORCHELASTIC_RUN_ID") || find(env, "TORCHELASTIC_USE_AGENT_STORE")) {
    launch = torchrun_launch(env);
  } else if (find(env, "RANK") || find(env, "WORLD_SIZE") || find(env, "LOCAL_RANK") ||
             find(env, "LOCAL_WORLD_SIZE")) {
    launch = env_launch(env);
  } else if (find(env, "SLURM_STEP_ID") || find(env, "SLURM_STEP_NUM_TASKS")) {
    launch = slurm_step_launch(env);
  } else {
    refuse_slurm_batch(env);
  }
  launch.slurm = slurm_job(env);
  launch.description = describe(launch);
  return launch;
}

Launch detect_launch_from_process() {
  Env env;
  for (char** entry = environ; entry && *entry; ++entry) {
    const std::string_view text(*entry);
    const std::size_t equals = text.find('=');
    if (equals == std::string_view::npos) continue;
    env.emplace(std::string(text.substr(0, equals)), std::string(text.substr(equals + 1)));
  }
  return detect_launch(env);
}

}  // namespace exprun::dist

// Launch detection on environment maps as torchrun, a hand-set env://, srun and sbatch leave
// them (the variables as observed in ../shared/design/DISTRIBUTED.md).
#include <gtest/gtest.h>

#include <cstdlib>
#include <map>
#include <stdexcept>
#include <string>

#include "dist/launch.hpp"
#include "test_support.hpp"

namespace exprun::dist {
namespace {

using Env = std::map<std::string, std::string>;

// torchrun --nproc-per-node 2 (static rendezvous, the default): the agent serves the store.
Env torchrun_static(int rank) {
  return {{"RANK", std::to_string(rank)},
          {"WORLD_SIZE", "2"},
          {"LOCAL_RANK", std::to_string(rank)},
          {"LOCAL_WORLD_SIZE", "2"},
          {"GROUP_RANK", "0"},
          {"MASTER_ADDR", "127.0.0.1"},
          {"MASTER_PORT", "29500"},
          {"TORCHELASTIC_RUN_ID", "none"},
          {"TORCHELASTIC_RESTART_COUNT", "0"},
          {"TORCHELASTIC_MAX_RESTARTS", "0"},
          {"TORCHELASTIC_USE_AGENT_STORE", "True"},
          {"PATH", "/usr/bin:/bin"}};
}

// torchrun --standalone: a free port, no agent store to join.
Env torchrun_standalone(int rank) {
  Env env = torchrun_static(rank);
  env["TORCHELASTIC_RUN_ID"] = "5f0c6c8e-8d2a-4b59-9a5c-3b0c1f7e9a11";
  env["TORCHELASTIC_USE_AGENT_STORE"] = "False";
  env["MASTER_PORT"] = "41237";
  return env;
}

// srun -N 3 -n 8 inside job 123456, on this task's node cn04.
Env slurm_step(int rank, int local) {
  return {{"SLURM_JOB_ID", "123456"},
          {"SLURM_JOBID", "123456"},
          {"SLURM_STEP_ID", "0"},
          {"SLURM_PROCID", std::to_string(rank)},
          {"SLURM_LOCALID", std::to_string(local)},
          {"SLURM_NODEID", "1"},
          {"SLURM_NTASKS", "8"},
          {"SLURM_STEP_NUM_TASKS", "8"},
          {"SLURM_STEP_NUM_NODES", "3"},
          {"SLURM_STEP_NODELIST", "cn[03-04,07]"},
          {"SLURM_NODELIST", "cn[03-04,07]"},
          {"SLURM_JOB_NODELIST", "cn[03-04,07]"}};
}

// The batch script of sbatch -n 2: looks like rank 0 of 2 but no step runs the other.
Env slurm_batch(const std::string& tasks) {
  return {{"SLURM_JOB_ID", "77"}, {"SLURM_PROCID", "0"},     {"SLURM_NTASKS", tasks},
          {"SLURM_LOCALID", "0"}, {"SLURM_NODELIST", "cn1"}, {"SLURM_JOB_NODELIST", "cn1"},
          {"SLURM_NNODES", "1"}};
}

// The LaunchError's message; a failure when none is thrown.
std::string launch_error(const Env& env) {
  try {
    const Launch launch = detect_launch(env);
    ADD_FAILURE() << "detected without error: " << launch.description;
  } catch (const LaunchError& e) {
    return e.what();
  }
  return "";
}

// ---------------------------------------------------------------- one process

TEST(LaunchDetection, NothingSetIsOneProcess) {
  const Launch launch = detect_launch({});
  EXPECT_EQ(launch.launcher, Launcher::kSingle);
  EXPECT_EQ(launch.rank, 0);
  EXPECT_EQ(launch.world_size, 1);
  EXPECT_EQ(launch.local_rank, 0);
  EXPECT_FALSE(launch.distributed());
  EXPECT_FALSE(launch.slurm);
  EXPECT_TRUE(launch.master_addr.empty());
  EXPECT_EQ(launch.description, "single process");
}

TEST(LaunchDetection, UnrelatedVariablesAndALoneMasterAreOneProcess) {
  // MASTER_ADDR/MASTER_PORT alone start nothing: they are often exported for srun to use.
  const Launch launch = detect_launch(
      {{"PATH", "/bin"}, {"HOME", "/root"}, {"MASTER_ADDR", "10.0.0.1"}, {"MASTER_PORT", "1"}});
  EXPECT_EQ(launch.launcher, Launcher::kSingle);
  EXPECT_EQ(launch.description, "single process");
}

TEST(LaunchDetection, LauncherNames) {
  EXPECT_STREQ(launcher_name(Launcher::kSingle), "single");
  EXPECT_STREQ(launcher_name(Launcher::kTorchrun), "torchrun");
  EXPECT_STREQ(launcher_name(Launcher::kEnv), "env");
  EXPECT_STREQ(launcher_name(Launcher::kSlurm), "slurm");
}

// ---------------------------------------------------------------- EXPRUN_DIST

TEST(LaunchDetection, DistOffIsOneProcessWhateverElseIsSet) {
  Env env = torchrun_static(1);
  env["RANK"] = "not a number";  // not even read
  env["SLURM_JOB_ID"] = "42";
  env["EXPRUN_DIST"] = "off";
  const Launch launch = detect_launch(env);
  EXPECT_EQ(launch.launcher, Launcher::kSingle);
  EXPECT_EQ(launch.world_size, 1);
  EXPECT_EQ(launch.rank, 0);
  EXPECT_FALSE(launch.slurm);
  EXPECT_EQ(launch.description, "single process (EXPRUN_DIST=off)");

  EXPECT_EQ(detect_launch({{"EXPRUN_DIST", "off"}}).launcher, Launcher::kSingle);
  Env batch = slurm_batch("4");
  batch["EXPRUN_DIST"] = "off";
  EXPECT_EQ(detect_launch(batch).description, "single process (EXPRUN_DIST=off)");
}

TEST(LaunchDetection, DistAutoIsTheDefault) {
  Env env = torchrun_static(0);
  env["EXPRUN_DIST"] = "auto";
  EXPECT_EQ(detect_launch(env).launcher, Launcher::kTorchrun);
  EXPECT_EQ(detect_launch({{"EXPRUN_DIST", "auto"}}).description, "single process");
}

TEST(LaunchDetection, DistOtherValuesAreErrors) {
  for (const std::string value : {"on", "OFF", "0", "", "off "}) {
    SCOPED_TRACE(value);
    EXPECT_EQ(launch_error({{"EXPRUN_DIST", value}}),
              "EXPRUN_DIST=\"" + value +
                  "\": expected off (one process, whatever a launcher set) or auto (detect the "
                  "launcher, as when it is unset)");
  }
}

// ---------------------------------------------------------------- torchrun

TEST(LaunchDetection, TorchrunStaticJoinsTheAgentsStore) {
  const Launch launch = detect_launch(torchrun_static(1));
  EXPECT_EQ(launch.launcher, Launcher::kTorchrun);
  EXPECT_EQ(launch.rank, 1);
  EXPECT_EQ(launch.world_size, 2);
  EXPECT_EQ(launch.local_rank, 1);
  EXPECT_EQ(launch.local_world_size, 2);
  EXPECT_EQ(launch.master_addr, "127.0.0.1");
  EXPECT_EQ(launch.master_port, 29500);
  EXPECT_TRUE(launch.join_agent_store);
  EXPECT_EQ(launch.store_prefix, "/worker/attempt_0");
  EXPECT_EQ(launch.elastic_restart_count, 0);
  EXPECT_TRUE(launch.distributed());
  EXPECT_FALSE(launch.slurm);
  EXPECT_EQ(launch.description,
            "torchrun rank 1 of 2 (local 1 of 2), master 127.0.0.1:29500, joins the agent's "
            "store (attempt 0)");
}

TEST(LaunchDetection, TorchrunRestartPicksTheAttemptsPrefix) {
  Env env = torchrun_static(0);
  env["TORCHELASTIC_RESTART_COUNT"] = "3";
  const Launch launch = detect_launch(env);
  EXPECT_EQ(launch.store_prefix, "/worker/attempt_3");
  EXPECT_EQ(launch.elastic_restart_count, 3);
}

TEST(LaunchDetection, TorchrunStandaloneRankZeroHostsTheStore) {
  const Launch launch = detect_launch(torchrun_standalone(0));
  EXPECT_EQ(launch.launcher, Launcher::kTorchrun);
  EXPECT_EQ(launch.rank, 0);
  EXPECT_EQ(launch.master_port, 41237);
  EXPECT_FALSE(launch.join_agent_store);
  EXPECT_EQ(launch.store_prefix, "");
  EXPECT_EQ(launch.description,
            "torchrun rank 0 of 2 (local 0 of 2), master 127.0.0.1:41237, rank 0 hosts the store");
}

TEST(LaunchDetection, TorchrunWithoutAgentStoreVariableHostsTheStore) {
  Env env = torchrun_static(0);
  env.erase("TORCHELASTIC_USE_AGENT_STORE");
  const Launch launch = detect_launch(env);
  EXPECT_EQ(launch.launcher, Launcher::kTorchrun);
  EXPECT_FALSE(launch.join_agent_store);
}

TEST(LaunchDetection, TorchrunIsRecognisedByTheAgentStoreVariableAlone) {
  Env env = torchrun_static(0);
  env.erase("TORCHELASTIC_RUN_ID");
  EXPECT_EQ(detect_launch(env).launcher, Launcher::kTorchrun);
}

TEST(LaunchDetection, TorchrunOfOneIsOneProcessRecordedAsTorchrun) {
  Env env = torchrun_static(0);
  env["WORLD_SIZE"] = "1";
  env["LOCAL_WORLD_SIZE"] = "1";
  const Launch launch = detect_launch(env);
  EXPECT_EQ(launch.launcher, Launcher::kTorchrun);
  EXPECT_FALSE(launch.distributed());
  EXPECT_EQ(launch.description, "single process (torchrun with world size 1)");
}

TEST(LaunchDetection, TorchrunMissingVariables) {
  Env env = torchrun_static(0);
  env.erase("LOCAL_RANK");
  env.erase("MASTER_PORT");
  EXPECT_EQ(launch_error(env),
            "torchrun launch (TORCHELASTIC_RUN_ID=\"none\" is set): expected RANK, WORLD_SIZE, "
            "LOCAL_RANK, MASTER_ADDR and MASTER_PORT, but LOCAL_RANK and MASTER_PORT are not "
            "set; set EXPRUN_DIST=off to run as a single process");
}

TEST(LaunchDetection, TorchrunAgentStoreNeedsTheRestartCount) {
  Env env = torchrun_static(0);
  env.erase("TORCHELASTIC_RESTART_COUNT");
  EXPECT_CONTAINS(launch_error(env), "TORCHELASTIC_RESTART_COUNT is not set");
}

TEST(LaunchDetection, TorchrunAgentStoreSpelling) {
  Env env = torchrun_static(0);
  env["TORCHELASTIC_USE_AGENT_STORE"] = "true";
  EXPECT_EQ(launch_error(env),
            "TORCHELASTIC_USE_AGENT_STORE=\"true\": expected True (join the agent's store) or "
            "False (rank 0 hosts one)");
}

TEST(LaunchDetection, TorchrunInsideASlurmBatchScriptIsNotRefused) {
  // torchrun started from the batch script of sbatch -n 2: torchrun's ranks are the truth.
  Env env = torchrun_static(1);
  for (const auto& [name, value] : slurm_batch("2")) env.emplace(name, value);
  const Launch launch = detect_launch(env);
  EXPECT_EQ(launch.launcher, Launcher::kTorchrun);
  EXPECT_EQ(launch.rank, 1);
  ASSERT_TRUE(launch.slurm);
  EXPECT_EQ(launch.slurm->job_id, 77);
  EXPECT_CONTAINS(launch.description, "; Slurm job 77");
}

// ---------------------------------------------------------------- env://

TEST(LaunchDetection, EnvWithEveryVariable) {
  const Launch launch = detect_launch({{"RANK", "3"},
                                       {"WORLD_SIZE", "4"},
                                       {"LOCAL_RANK", "1"},
                                       {"LOCAL_WORLD_SIZE", "2"},
                                       {"MASTER_ADDR", "node-a"},
                                       {"MASTER_PORT", "1234"}});
  EXPECT_EQ(launch.launcher, Launcher::kEnv);
  EXPECT_EQ(launch.rank, 3);
  EXPECT_EQ(launch.world_size, 4);
  EXPECT_EQ(launch.local_rank, 1);
  EXPECT_EQ(launch.local_world_size, 2);
  EXPECT_EQ(launch.master_addr, "node-a");
  EXPECT_EQ(launch.master_port, 1234);
  EXPECT_FALSE(launch.join_agent_store);
  EXPECT_EQ(launch.description,
            "env:// rank 3 of 4 (local 1 of 2), master node-a:1234, rank 0 hosts the store");
}

TEST(LaunchDetection, EnvWithoutLocalRankTakesOneMachine) {
  const Launch launch = detect_launch(
      {{"RANK", "1"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "127.0.0.1"}, {"MASTER_PORT", "29500"}});
  EXPECT_EQ(launch.local_rank, 1);
  EXPECT_EQ(launch.local_world_size, 2);
  EXPECT_EQ(launch.description,
            "env:// rank 1 of 2 (local 1 of 2), master 127.0.0.1:29500, rank 0 hosts the store");
}

TEST(LaunchDetection, EnvLocalRankWithoutLocalWorldSize) {
  const Launch launch = detect_launch({{"RANK", "5"},
                                       {"WORLD_SIZE", "8"},
                                       {"LOCAL_RANK", "1"},
                                       {"MASTER_ADDR", "h"},
                                       {"MASTER_PORT", "2"}});
  EXPECT_EQ(launch.local_rank, 1);
  EXPECT_FALSE(launch.local_world_size);
  EXPECT_CONTAINS(launch.description, "(local 1)");
}

TEST(LaunchDetection, EnvSeveralMachinesNeedLocalRank) {
  EXPECT_EQ(launch_error({{"RANK", "3"},
                          {"WORLD_SIZE", "4"},
                          {"LOCAL_WORLD_SIZE", "2"},
                          {"MASTER_ADDR", "h"},
                          {"MASTER_PORT", "2"}}),
            "env:// launch (RANK=\"3\" is set): expected LOCAL_RANK, since "
            "LOCAL_WORLD_SIZE=\"2\" is not WORLD_SIZE=\"4\" (ranks on several machines); set "
            "EXPRUN_DIST=off to run as a single process");
}

TEST(LaunchDetection, EnvOfOneIsOneProcessWithoutAMaster) {
  const Launch launch = detect_launch({{"RANK", "0"}, {"WORLD_SIZE", "1"}});
  EXPECT_EQ(launch.launcher, Launcher::kEnv);
  EXPECT_FALSE(launch.distributed());
  EXPECT_EQ(launch.description, "single process (env:// with world size 1)");
}

TEST(LaunchDetection, EnvMissingVariables) {
  EXPECT_EQ(launch_error({{"RANK", "0"}}),
            "env:// launch (RANK=\"0\" is set): expected RANK and WORLD_SIZE, but WORLD_SIZE is "
            "not set; set EXPRUN_DIST=off to run as a single process");
  EXPECT_EQ(launch_error({{"LOCAL_RANK", "0"}}),
            "env:// launch (LOCAL_RANK=\"0\" is set): expected RANK and WORLD_SIZE, but RANK and "
            "WORLD_SIZE are not set; set EXPRUN_DIST=off to run as a single process");
  EXPECT_EQ(launch_error({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_PORT", "29500"}}),
            "env:// launch (RANK=\"0\" is set) with WORLD_SIZE=\"2\": expected MASTER_ADDR and "
            "MASTER_PORT, but MASTER_ADDR is not set; set EXPRUN_DIST=off to run as a single "
            "process");
}

TEST(LaunchDetection, EnvInsideASlurmStepWins) {
  // A script that sets RANK itself under srun means its own numbering.
  Env env = slurm_step(5, 1);
  env.insert({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "h"}, {"MASTER_PORT", "9"}});
  const Launch launch = detect_launch(env);
  EXPECT_EQ(launch.launcher, Launcher::kEnv);
  EXPECT_EQ(launch.world_size, 2);
  ASSERT_TRUE(launch.slurm);
  EXPECT_EQ(launch.slurm->job_id, 123456);
}

// ---------------------------------------------------------------- bad values

struct BadValue {
  std::string name;
  std::string value;
  std::string expected;  // the message after NAME="VALUE":
};

TEST(LaunchDetection, BadValuesNameTheVariableTheValueAndTheExpectation) {
  const std::string number = "expected a whole number from 0 to 2147483647";
  const std::vector<BadValue> cases = {
      {"RANK", "-1", number},
      {"RANK", "abc", number},
      {"RANK", " 1", number},
      {"RANK", "1 ", number},
      {"RANK", "+1", number},
      {"RANK", "", number},
      {"RANK", "1.5", number},
      {"RANK", "0x1", number},
      {"RANK", "99999999999", number},
      {"RANK", "2", "expected less than WORLD_SIZE=\"2\" (ranks count from 0)"},
      {"WORLD_SIZE", "0", "expected a whole number from 1 to 2147483647"},
      {"LOCAL_RANK", "2", "expected less than LOCAL_WORLD_SIZE=\"2\" (ranks count from 0)"},
      {"LOCAL_WORLD_SIZE", "3", "expected at most WORLD_SIZE=\"2\""},
      {"LOCAL_WORLD_SIZE", "0", "expected a whole number from 1 to 2147483647"},
      {"MASTER_PORT", "0", "expected a port number from 1 to 65535"},
      {"MASTER_PORT", "65536", "expected a port number from 1 to 65535"},
      {"MASTER_PORT", "http", "expected a port number from 1 to 65535"},
      {"MASTER_ADDR", "", "expected a host name or IP address"},
      {"MASTER_ADDR", "a b", "expected a host name or IP address"},
      {"TORCHELASTIC_RESTART_COUNT", "x", number},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name + "=" + c.value);
    Env env = torchrun_static(1);
    env[c.name] = c.value;
    EXPECT_EQ(launch_error(env), c.name + "=\"" + c.value + "\": " + c.expected);
  }
}

TEST(LaunchDetection, ValuesAreQuotedOnOneLine) {
  Env env = torchrun_static(0);
  env["RANK"] = "1\n";
  EXPECT_EQ(launch_error(env), "RANK=\"1\\x0a\": expected a whole number from 0 to 2147483647");
  env["RANK"] = "\"0\"";
  EXPECT_EQ(launch_error(env), "RANK=\"\\\"0\\\"\": expected a whole number from 0 to 2147483647");
}

TEST(LaunchDetection, BadSlurmValues) {
  Env env = slurm_step(0, 0);
  env["SLURM_JOB_ID"] = "12a";
  EXPECT_EQ(launch_error(env),
            "SLURM_JOB_ID=\"12a\": expected a job id from 0 to 9223372036854775807");
  env = slurm_step(0, 0);
  env["SLURM_PROCID"] = "8";
  EXPECT_EQ(launch_error(env),
            "SLURM_PROCID=\"8\": expected less than SLURM_STEP_NUM_TASKS=\"8\" (ranks count from "
            "0)");
  env = slurm_step(0, 0);
  env["SLURM_ARRAY_TASK_ID"] = "-3";
  EXPECT_CONTAINS(launch_error(env), "SLURM_ARRAY_TASK_ID=\"-3\": expected a job id");
  env = slurm_step(0, 0);
  env["SLURM_RESTART_COUNT"] = "once";
  EXPECT_CONTAINS(launch_error(env), "SLURM_RESTART_COUNT=\"once\": expected a whole number");
}

// ---------------------------------------------------------------- Slurm steps

TEST(LaunchDetection, SlurmStepOnSeveralNodes) {
  const Launch launch = detect_launch(slurm_step(5, 1));
  EXPECT_EQ(launch.launcher, Launcher::kSlurm);
  EXPECT_EQ(launch.rank, 5);
  EXPECT_EQ(launch.world_size, 8);
  EXPECT_EQ(launch.local_rank, 1);
  EXPECT_FALSE(launch.local_world_size);
  EXPECT_EQ(launch.master_addr, "cn03");  // the first host of cn[03-04,07]
  EXPECT_EQ(launch.master_port, 15000 + 3456);
  EXPECT_FALSE(launch.join_agent_store);
  ASSERT_TRUE(launch.slurm);
  EXPECT_EQ(launch.slurm->job_id, 123456);
  EXPECT_FALSE(launch.slurm->array_job_id);
  EXPECT_FALSE(launch.slurm->array_task_id);
  EXPECT_EQ(launch.slurm->restart_count, 0);
  EXPECT_EQ(launch.description,
            "Slurm step rank 5 of 8 (local 1), master cn03:18456, rank 0 hosts the store; Slurm "
            "job 123456");
}

TEST(LaunchDetection, SlurmMasterFromSeveralBracketGroups) {
  Env env = slurm_step(0, 0);
  env["SLURM_STEP_NODELIST"] = "r[2-3]n[07-08]-ib,login1";
  EXPECT_EQ(detect_launch(env).master_addr, "r2n07-ib");
}

TEST(LaunchDetection, SlurmPortDerivesFromTheJobIdsLastFourDigits) {
  EXPECT_EQ(slurm_default_port(0), 15000);
  EXPECT_EQ(slurm_default_port(42), 15042);
  EXPECT_EQ(slurm_default_port(98765432), 20432);
  EXPECT_EQ(slurm_default_port(9999), 24999);
  Env env = slurm_step(0, 0);
  env["SLURM_JOB_ID"] = "98765432";
  EXPECT_EQ(detect_launch(env).master_port, 20432);
}

TEST(LaunchDetection, SlurmMasterPortAndAddressOverride) {
  Env env = slurm_step(0, 0);
  env["MASTER_PORT"] = "29400";
  Launch launch = detect_launch(env);
  EXPECT_EQ(launch.master_addr, "cn03");
  EXPECT_EQ(launch.master_port, 29400);
  env["MASTER_ADDR"] = "10.1.2.3";
  launch = detect_launch(env);
  EXPECT_EQ(launch.master_addr, "10.1.2.3");
  EXPECT_EQ(launch.master_port, 29400);
  env["MASTER_PORT"] = "99999";
  EXPECT_EQ(launch_error(env), "MASTER_PORT=\"99999\": expected a port number from 1 to 65535");
}

TEST(LaunchDetection, SlurmJobNodeListWhenTheStepHasNone) {
  Env env = slurm_step(0, 0);
  env.erase("SLURM_STEP_NODELIST");
  env["SLURM_NODELIST"] = "gpu[10-11]";
  EXPECT_EQ(detect_launch(env).master_addr, "gpu10");
  env.erase("SLURM_NODELIST");
  EXPECT_CONTAINS(launch_error(env),
                  "expected SLURM_STEP_NODELIST (or SLURM_NODELIST) to find the master host");
  env["MASTER_ADDR"] = "cn99";  // then no list is needed
  EXPECT_EQ(detect_launch(env).master_addr, "cn99");
}

TEST(LaunchDetection, SlurmBadNodeList) {
  Env env = slurm_step(0, 0);
  env["SLURM_STEP_NODELIST"] = "cn[03-04";
  EXPECT_EQ(launch_error(env),
            "SLURM_STEP_NODELIST: hostlist \"cn[03-04\": the '[' at position 2 is never closed: "
            "expected ']'");
}

TEST(LaunchDetection, SlurmPortNeedsTheJobIdWithoutMasterPort) {
  Env env = slurm_step(0, 0);
  env.erase("SLURM_JOB_ID");
  EXPECT_EQ(launch_error(env),
            "Slurm step (SLURM_STEP_ID=\"0\" is set) without MASTER_PORT (the port derives from "
            "the job id): expected SLURM_JOB_ID, but SLURM_JOB_ID is not set; set "
            "EXPRUN_DIST=off to run as a single process");
}

TEST(LaunchDetection, SlurmStepMissingVariables) {
  Env env = slurm_step(0, 0);
  env.erase("SLURM_LOCALID");
  env.erase("SLURM_STEP_ID");
  EXPECT_EQ(launch_error(env),
            "Slurm step (SLURM_STEP_NUM_TASKS=\"8\" is set): expected SLURM_PROCID, "
            "SLURM_STEP_NUM_TASKS and SLURM_LOCALID, but SLURM_LOCALID is not set; set "
            "EXPRUN_DIST=off to run as a single process");
}

TEST(LaunchDetection, SlurmStepOfOneTaskIsOneProcessWithTheJobRecorded) {
  Env env = slurm_step(0, 0);
  env["SLURM_STEP_NUM_TASKS"] = "1";
  env["SLURM_NTASKS"] = "1";
  env["SLURM_RESTART_COUNT"] = "2";
  env.erase("SLURM_STEP_NODELIST");  // not needed for one task
  env.erase("SLURM_NODELIST");
  const Launch launch = detect_launch(env);
  EXPECT_EQ(launch.launcher, Launcher::kSlurm);
  EXPECT_FALSE(launch.distributed());
  EXPECT_TRUE(launch.master_addr.empty());
  ASSERT_TRUE(launch.slurm);
  EXPECT_EQ(launch.slurm->job_id, 123456);
  EXPECT_EQ(launch.slurm->restart_count, 2);
  EXPECT_EQ(launch.description,
            "single process (Slurm step with world size 1); Slurm job 123456, restart 2");
}

TEST(LaunchDetection, SlurmArrayTaskIsRecorded) {
  Env env = slurm_step(1, 1);
  env["SLURM_JOB_ID"] = "1004";
  env["SLURM_ARRAY_JOB_ID"] = "1000";
  env["SLURM_ARRAY_TASK_ID"] = "3";
  env["SLURM_RESTART_COUNT"] = "1";
  const Launch launch = detect_launch(env);
  ASSERT_TRUE(launch.slurm);
  EXPECT_EQ(launch.slurm->job_id, 1004);
  EXPECT_EQ(launch.slurm->array_job_id, 1000);
  EXPECT_EQ(launch.slurm->array_task_id, 3);
  EXPECT_EQ(launch.slurm->restart_count, 1);
  EXPECT_EQ(launch.master_port, 16004);  // each array task has a job id, hence a port, of its own
  EXPECT_CONTAINS(launch.description, "; Slurm job 1004, array task 1000_3, restart 1");
}

// ---------------------------------------------------------------- Slurm batch scripts

TEST(LaunchDetection, BatchScriptOfSeveralTasksIsRefused) {
  const Env env = slurm_batch("2");
  const std::string message = launch_error(env);
  EXPECT_CONTAINS(message, "SLURM_NTASKS=\"2\" in Slurm job 77 without a job step");
  EXPECT_CONTAINS(message, "start the ranks with srun");
  EXPECT_CONTAINS(message, "EXPRUN_DIST=off");
  EXPECT_THROW(detect_launch(env), std::runtime_error);
}

TEST(LaunchDetection, BatchScriptOfOneTaskIsOneProcessWithTheJobRecorded) {
  for (const bool tasks_set : {true, false}) {
    SCOPED_TRACE(tasks_set ? "SLURM_NTASKS=1" : "SLURM_NTASKS unset");
    Env env = slurm_batch("1");
    if (!tasks_set) env.erase("SLURM_NTASKS");
    env["SLURM_ARRAY_JOB_ID"] = "70";
    env["SLURM_ARRAY_TASK_ID"] = "7";
    const Launch launch = detect_launch(env);
    EXPECT_EQ(launch.launcher, Launcher::kSingle);
    EXPECT_FALSE(launch.distributed());
    ASSERT_TRUE(launch.slurm);
    EXPECT_EQ(launch.slurm->job_id, 77);
    EXPECT_EQ(launch.slurm->array_job_id, 70);
    EXPECT_EQ(launch.slurm->array_task_id, 7);
    EXPECT_EQ(launch.description, "single process; Slurm job 77, array task 70_7");
  }
}

TEST(LaunchDetection, BatchScriptWithABadTaskCount) {
  EXPECT_EQ(launch_error(slurm_batch("two")),
            "SLURM_NTASKS=\"two\": expected a whole number from 1 to 2147483647");
}

// ---------------------------------------------------------------- this process

TEST(LaunchDetection, FromTheProcessEnvironment) {
  // Each test runs in a process of its own (gtest_discover_tests), so the variable set here
  // reaches no other test.
  ASSERT_EQ(setenv("EXPRUN_DIST", "sometimes", 1), 0);
  EXPECT_THROW(detect_launch_from_process(), LaunchError);
  ASSERT_EQ(setenv("EXPRUN_DIST", "off", 1), 0);
  EXPECT_EQ(detect_launch_from_process().description, "single process (EXPRUN_DIST=off)");
  unsetenv("EXPRUN_DIST");
}

}  // namespace
}  // namespace exprun::dist

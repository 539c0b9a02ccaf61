// Data-parallel training for real: two exprun processes as ranks 0 and 1 of an env:// launch on
// 127.0.0.1, over Gloo (docs/distributed.md). The ranks stay in step (exprun compares their
// weights at each stage's end and fails otherwise); without BatchNorm two ranks end where one
// process ends on the same global batches; a signal to one rank stops both after the same step
// and the resumed pair ends bit-identical to an uninterrupted pair; a rank that dies fails the
// other with a clear error instead of a hang.
#include <gtest/gtest.h>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <torch/torch.h>
#include <exprun/sdk/model.hpp>
#include <nlohmann/json.hpp>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "config/experiment_loader.hpp"
#include "plugins/registry.hpp"
#include "test_support.hpp"
#include "train/checkpoint.hpp"
#include "train/stage_builder.hpp"

namespace exprun {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using test::ProcessResult;
using Env = std::map<std::string, std::optional<std::string>>;

// A port nobody listens on now: bound to 0, read back, released.
int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  socklen_t length = sizeof(address);
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    if (fd >= 0) ::close(fd);
    throw std::runtime_error("no free port on 127.0.0.1");
  }
  ::close(fd);
  return ntohs(address.sin_port);
}

// Every launcher variable unset (the suite itself may run under one), then `set`.
Env launch_env(const Env& set) {
  Env env;
  for (const char* name :
       {"EXPRUN_DIST", "TORCHELASTIC_RUN_ID", "TORCHELASTIC_USE_AGENT_STORE", "RANK", "WORLD_SIZE",
        "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "SLURM_STEP_ID",
        "SLURM_STEP_NUM_TASKS", "SLURM_PROCID", "SLURM_JOB_ID", "SLURM_NTASKS", "EXPRUN_FAULT"})
    env[name] = std::nullopt;
  for (const auto& [name, value] : set) env[name] = value;
  return env;
}

json read_json(const fs::path& path) {
  std::ifstream in(path);
  return json::parse(in);
}

fs::path only_run_dir(const fs::path& output, const std::string& experiment) {
  std::vector<fs::path> dirs;
  for (const auto& e : fs::directory_iterator(output / experiment)) dirs.push_back(e);
  EXPECT_EQ(dirs.size(), 1u) << "one run directory, written by rank 0 alone";
  return dirs.empty() ? fs::path() : dirs.front();
}

// The tiny experiment with another model section.
std::string with_model(std::string toml, const std::string& model_section) {
  const auto begin = toml.find("[defaults.model]");
  const auto end = toml.find("[defaults.loss]");
  return toml.replace(begin, end - begin, model_section + "\n");
}

// Everything measured in a stage, nothing timed.
json measured(const json& stage) {
  json history = json::array();
  for (const auto& line : stage["history"])
    history.push_back({line["train_loss"], line["val_mre_mm"], line["skipped_steps"]});
  return {{"status", stage["status"]},
          {"best", stage["best"]},
          {"final", stage["final"]},
          {"history", history}};
}

class DataParallelTest : public ::testing::Test {
 protected:
  test::TempDir dir_{"exprun-ranks"};
  fs::path results_ = dir_ / "results";

  // One rank's environment for an env:// launch of `world` ranks.
  static Env rank_env(int rank, int world, int port, const Env& extra = {}) {
    Env set = {{"RANK", std::to_string(rank)},        {"WORLD_SIZE", std::to_string(world)},
               {"LOCAL_RANK", std::to_string(rank)},  {"MASTER_ADDR", "127.0.0.1"},
               {"MASTER_PORT", std::to_string(port)}, {"EXPRUN_DIST_TIMEOUT", "60"}};
    for (const auto& [name, value] : extra) set[name] = value;
    return launch_env(set);
  }

  // Both ranks at once, with the same arguments; extra[r]: more variables for rank r.
  std::vector<ProcessResult> run_ranks(const std::vector<std::string>& args,
                                       const std::vector<Env>& extra = {{}, {}}) {
    const int port = free_port();
    std::vector<std::future<ProcessResult>> ranks;
    for (int r = 0; r < 2; ++r) {
      test::ProcessOptions options;
      options.env = rank_env(r, 2, port, extra[static_cast<std::size_t>(r)]);
      options.timeout_s = 300;
      ranks.push_back(std::async(std::launch::async,
                                 [args, options] { return test::run_exprun(args, options); }));
    }
    std::vector<ProcessResult> out;
    for (auto& f : ranks) out.push_back(f.get());
    return out;
  }

  fs::path write_experiment(const std::string& name, const std::string& text) {
    const fs::path file = dir_ / (name + ".toml");
    test::write_text(file, text);
    return file;
  }

  // Every parameter and buffer saved in `checkpoint`, through the model `file` builds.
  static std::map<std::string, torch::Tensor> weights_in(const fs::path& file,
                                                         const fs::path& checkpoint) {
    const Experiment e = load_experiment(file.string(), {}, test::built_plugins());
    BuiltStage built = build_stage(e, e.stages[0], 0, test::built_plugins());
    load_model_weights(checkpoint, *built.model);
    std::map<std::string, torch::Tensor> out;
    for (const auto& p : built.model->named_parameters()) out[p.key()] = p.value().clone();
    for (const auto& b : built.model->named_buffers()) out[b.key()] = b.value().clone();
    return out;
  }
};

TEST_F(DataParallelTest, TwoRanksEndWhereOneProcessEndsWithoutBatchNorm) {
  test::TinyExperiment tiny;
  tiny.name = "no_bn";
  tiny.output = results_;
  tiny.threads = 1;
  // 16 images in batches of 5: 5, 5, 5, 1. Rank 0 trains 3, 3, 3, 1 of them, rank 1 2, 2, 2
  // and nothing of the last: uneven shares and an empty one.
  tiny.effective_batch = 5;
  tiny.micro_batch = 2;
  const fs::path file = write_experiment(
      "no_bn", with_model(tiny.toml(),
                          "[defaults.model]\nplugin = \"unet\"\nwidth = 4\ndepth = 2\n"
                          "batch_norm = false\n"));
  const fs::path single_out = dir_ / "single";
  test::ProcessOptions alone;
  alone.env = launch_env({});
  alone.timeout_s = 300;
  const ProcessResult single =
      test::run_exprun({"run", file.string(), "--output", single_out.string()}, alone);
  ASSERT_EQ(single.exit_code, 0) << single.describe();

  const auto ranks = run_ranks({"run", file.string()});
  for (const auto& r : ranks) {
    ASSERT_EQ(r.exit_code, 0) << r.describe();
    test::expect_no_crash(r);
  }
  EXPECT_CONTAINS(ranks[0].out, "run completed");
  EXPECT_EQ(ranks[1].out, "") << "rank 1 reports nothing of its own";

  const fs::path run = only_run_dir(results_, "no_bn");
  const json report = read_json(run / "report.json");
  EXPECT_EQ(report["status"], "completed");
  EXPECT_EQ(report["environment"]["distributed"]["world_size"], 2);
  EXPECT_EQ(report["environment"]["distributed"]["launcher"], "env");
  EXPECT_EQ(read_checkpoint_info(run / "train/checkpoints/latest.pt").world_size, 2);
  const json single_report = read_json(only_run_dir(single_out, "no_bn") / "report.json");
  EXPECT_EQ(single_report["environment"]["distributed"]["world_size"], 1);
  // Same images per epoch counted: the global batches, not rank 0's share.
  EXPECT_EQ(report["stages"][0]["batch_plan"]["steps_per_epoch"], 4);

  const auto got = weights_in(file, run / "train/checkpoints/latest.pt");
  const auto want =
      weights_in(file, only_run_dir(single_out, "no_bn") / "train/checkpoints/latest.pt");
  ASSERT_EQ(got.size(), want.size());
  for (const auto& [name, tensor] : got) {
    const double difference = (tensor - want.at(name)).abs().max().item<double>();
    EXPECT_LE(difference, 1e-5) << name;
  }
  // The training loss is the global batch's on both sides (summation order aside).
  const auto& h2 = report["stages"][0]["history"];
  const auto& h1 = single_report["stages"][0]["history"];
  ASSERT_EQ(h2.size(), h1.size());
  for (std::size_t e = 0; e < h1.size(); ++e)
    EXPECT_NEAR(h2[e]["train_loss"].get<double>(), h1[e]["train_loss"].get<double>(), 1e-5);
}

TEST_F(DataParallelTest, SignalToOneRankStopsBothAndResumeIsBitIdentical) {
  test::TinyExperiment tiny;  // HRNet, with BatchNorm
  tiny.name = "bn";
  tiny.output = results_;
  tiny.threads = 1;
  const fs::path file = write_experiment("bn", tiny.toml());
  const fs::path reference_out = dir_ / "reference";
  const auto reference = run_ranks({"run", file.string(), "--output", reference_out.string()});
  for (const auto& r : reference) ASSERT_EQ(r.exit_code, 0) << r.describe();
  const fs::path reference_run = only_run_dir(reference_out, "bn");

  // SIGTERM reaches rank 1 alone, after its second step of the first epoch: after that step's
  // agreement, so both ranks learn of it in the third step's and stop after it.
  const auto stopped =
      run_ranks({"run", file.string()}, {{}, {{"EXPRUN_FAULT", "TERM@step:train:1:2"}}});
  for (const auto& r : stopped) {
    EXPECT_EQ(r.exit_code, 128 + SIGTERM) << r.describe();
    test::expect_no_crash(r);
  }
  EXPECT_CONTAINS(stopped[0].out, "run interrupted (SIGTERM)");
  const fs::path run = only_run_dir(results_, "bn");
  EXPECT_EQ(read_json(run / "report.json")["status"], "interrupted");
  const CheckpointInfo info = read_checkpoint_info(run / "train/checkpoints/latest.pt");
  EXPECT_EQ(info.step_in_epoch, 3) << "both ranks stopped after the next step";
  EXPECT_EQ(info.world_size, 2);

  const auto resumed = run_ranks({"run", file.string(), "--resume=" + run.string()});
  for (const auto& r : resumed) ASSERT_EQ(r.exit_code, 0) << r.describe();
  const json got = read_json(run / "report.json");
  const json want = read_json(reference_run / "report.json");
  EXPECT_EQ(got["status"], "completed");
  EXPECT_EQ(measured(got["stages"][0]), measured(want["stages"][0]));
  const auto a = weights_in(file, run / "train/checkpoints/latest.pt");
  const auto b = weights_in(file, reference_run / "train/checkpoints/latest.pt");
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [name, tensor] : a)
    EXPECT_TRUE(torch::equal(tensor, b.at(name))) << name << " differs after the resume";
}

// latest.pt records its world size; one process may continue what two ranks started, with a
// warning that the continuation is not bit-identical.
TEST_F(DataParallelTest, ResumingWithAnotherWorldSizeWarns) {
  test::TinyExperiment tiny;
  tiny.name = "regrouped";
  tiny.output = results_;
  tiny.threads = 1;
  const fs::path file = write_experiment("regrouped", tiny.toml());
  const auto stopped =
      run_ranks({"run", file.string()}, {{{"EXPRUN_FAULT", "TERM@step:train:1:1"}}, {}});
  for (const auto& r : stopped) ASSERT_EQ(r.exit_code, 128 + SIGTERM) << r.describe();
  const fs::path run = only_run_dir(results_, "regrouped");
  test::ProcessOptions alone;
  alone.env = launch_env({});
  alone.timeout_s = 300;
  const ProcessResult resumed =
      test::run_exprun({"run", file.string(), "--resume=" + run.string()}, alone);
  ASSERT_EQ(resumed.exit_code, 0) << resumed.describe();
  EXPECT_CONTAINS(resumed.err, "was written by 2 rank(s) and is resumed by 1");
  const json report = read_json(run / "report.json");
  EXPECT_EQ(report["status"], "completed");
  EXPECT_EQ(report["environment"]["distributed"]["world_size"], 1);
  EXPECT_EQ(report["resumes"][0]["environment"]["distributed"]["world_size"], 1);
  EXPECT_EQ(read_checkpoint_info(run / "train/checkpoints/latest.pt").world_size, 1);
}

TEST_F(DataParallelTest, ADeadRankFailsTheOtherWithAClearError) {
  test::TinyExperiment tiny;
  tiny.name = "dies";
  tiny.output = results_;
  tiny.threads = 1;
  const fs::path file = write_experiment("dies", tiny.toml());
  const auto ranks =
      run_ranks({"run", file.string()},
                {{{"EXPRUN_DIST_TIMEOUT", "10"}},
                 {{"EXPRUN_DIST_TIMEOUT", "10"}, {"EXPRUN_FAULT", "KILL@step:train:1:2"}}});
  EXPECT_EQ(ranks[1].term_signal, SIGKILL) << ranks[1].describe();
  EXPECT_EQ(ranks[0].exit_code, 1) << ranks[0].describe();
  EXPECT_FALSE(ranks[0].timed_out);
  test::expect_no_crash(ranks[0]);
  const json report = read_json(only_run_dir(results_, "dies") / "report.json");
  EXPECT_EQ(report["status"], "failed");
  const std::string error = report["stages"][0].value("error", "");
  EXPECT_CONTAINS(error, "rank 0: ");
  EXPECT_CONTAINS(error, "another rank died or did not get there within 10 s");
}

TEST_F(DataParallelTest, RankZerosRefusalReachesTheOthers) {
  test::TinyExperiment tiny;
  tiny.output = results_;
  const fs::path file = write_experiment("tiny", tiny.toml());
  const auto ranks = run_ranks({"run", file.string(), "--resume=" + (dir_ / "nowhere").string()});
  EXPECT_NE(ranks[0].exit_code, 0) << ranks[0].describe();
  EXPECT_CONTAINS(ranks[0].err, "nowhere");
  EXPECT_EQ(ranks[1].exit_code, 1) << ranks[1].describe();
  EXPECT_CONTAINS(ranks[1].err, "rank 0 could not start");
  EXPECT_FALSE(ranks[1].timed_out);
  EXPECT_FALSE(fs::exists(results_)) << "nothing written";
}

// What an array task of `exprun slurm submit --ranks 2` runs, started here by env:// instead of
// srun: one trial of a shared sweep trained by two ranks, recorded by rank 0 alone; run again,
// the completed trial is skipped by both.
TEST_F(DataParallelTest, ASweepTrialTrainedByTwoRanks) {
  test::TinyExperiment tiny;
  tiny.name = "swept";
  tiny.output = results_;
  tiny.threads = 1;
  tiny.epochs = 1;
  const fs::path file =
      write_experiment("swept", tiny.toml() + "\n[sweep.zip]\n\"optimizer.lr\" = [1e-3, 2e-3]\n");
  const fs::path sweep_dir = dir_ / "sweep";
  const std::vector<std::string> trial_1 = {"run",         file.string(),      "--trial",      "1",
                                            "--sweep-dir", sweep_dir.string(), "--resume=auto"};
  for (int attempt = 0; attempt < 2; ++attempt) {
    SCOPED_TRACE(attempt == 0 ? "first run" : "again, completed");
    const auto ranks = run_ranks(trial_1);
    for (const auto& r : ranks) {
      EXPECT_EQ(r.exit_code, 0) << r.describe();
      test::expect_no_crash(r);
    }
    EXPECT_EQ(ranks[1].out, "");
  }
  const json sweep = read_json(sweep_dir / "sweep.json");
  ASSERT_EQ(sweep["trials"].size(), 2u);
  EXPECT_EQ(sweep["trials"][0]["status"], "pending");
  EXPECT_EQ(sweep["trials"][1]["status"], "completed");
  const json report = read_json(sweep_dir / "trial-001" / "report.json");
  EXPECT_EQ(report["environment"]["distributed"]["world_size"], 2);
  EXPECT_FALSE(fs::exists(sweep_dir / "trial-000"));

  // Several trials at once under several ranks would be trained by every rank alone.
  const auto refused = run_ranks({"run", file.string()});
  for (const auto& r : refused) {
    EXPECT_EQ(r.exit_code, 2) << r.describe();
    EXPECT_CONTAINS(r.err, "give --trial N and --sweep-dir DIR");
  }
}

}  // namespace
}  // namespace exprun

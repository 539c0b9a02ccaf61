// What `exprun slurm status` makes of squeue's and sbatch's output and of a sweep's documents.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <map>
#include <string>

#include "slurm/slurm_status.hpp"
#include "test_support.hpp"

namespace exprun::slurm {
namespace {

using nlohmann::json;

TEST(SlurmStatus, SqueueLines) {
  const auto states = parse_squeue_states("77_0 RUNNING\n77_1 PENDING\n\nnonsense\n77 a b\n");
  EXPECT_EQ(states, (std::map<std::string, std::string>{{"77_0", "RUNNING"}, {"77_1", "PENDING"}}));
  EXPECT_TRUE(parse_squeue_states("").empty());
}

TEST(SlurmStatus, SbatchJobId) {
  EXPECT_EQ(parse_sbatch_job_id("4242\n"), "4242");
  EXPECT_EQ(parse_sbatch_job_id("4242;cluster\n"), "4242");
  EXPECT_EQ(parse_sbatch_job_id(" 4242 \r\n"), "4242");
  EXPECT_EQ(parse_sbatch_job_id("Submitted batch job 4242\n"), "");
  EXPECT_EQ(parse_sbatch_job_id(""), "");
}

json sweep_doc() {
  auto trial = [](std::size_t i, const char* status, json stages = json::array()) {
    return json{{"index", i},
                {"values", {{"optimizer.lr", 0.001 * static_cast<double>(i + 1)}}},
                {"status", status},
                {"stages", stages}};
  };
  return {{"keys", {"optimizer.lr"}},
          {"trials",
           {trial(0, "completed", json::array({{{"name", "train"}, {"best_val_mre_mm", 2.5}}})),
            trial(1, "running"), trial(2, "pending"), trial(3, "failed")}}};
}

TEST(SlurmStatus, TableWithTheQueue) {
  const std::map<std::size_t, json> files = {{0, {{"host", "cn01"}, {"pid", 11}}},
                                             {1, {{"host", "cn02"}, {"pid", 22}}}};
  const std::map<std::string, std::string> queue = {{"77_1", "RUNNING"}};
  const auto lines = test::split_lines(trial_status_table(sweep_doc(), files, queue, "77"));
  ASSERT_EQ(lines.size(), 5u);
  EXPECT_EQ(lines[0], "trial  optimizer.lr  status     slurm       host  pid  best MRE");
  EXPECT_EQ(lines[1], "0      0.001         completed  -           cn01  11   2.500 mm");
  EXPECT_EQ(lines[2], "1      0.002         running    RUNNING     cn02  22   -");
  EXPECT_EQ(lines[3], "2      0.003         pending    not queued  -     -    -");
  EXPECT_EQ(lines[4], "3      0.004         failed     -           -     -    -");
  EXPECT_EQ(trials_missing_from_queue(sweep_doc(), queue, "77"), std::vector<std::size_t>{2});
}

TEST(SlurmStatus, TableWithoutTheQueue) {
  const auto lines = test::split_lines(trial_status_table(sweep_doc(), {}, std::nullopt, ""));
  EXPECT_EQ(lines[0], "trial  optimizer.lr  status     host  pid  best MRE");
  EXPECT_EQ(lines[1], "0      0.001         completed  -     -    2.500 mm");
}

}  // namespace
}  // namespace exprun::slurm

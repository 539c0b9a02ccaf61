// The trainer's typed record: its checkpoint JSON keeps the trainer_state layout of format
// version 2 (a checkpoint written before the record was typed still resumes), survives a round
// trip unchanged, NaN and empty summaries included, and the monitored value comes from the typed
// metrics.
#include "train/stage_progress.hpp"

#include <gtest/gtest.h>

#include <cmath>

namespace exprun {
namespace {

using json = nlohmann::json;

const std::vector<std::string> kSymbols = {"S", "N", "A"};

// Errors for three landmarks over two images; landmark A is never found (NaN).
Metrics some_metrics(double scale) {
  const double nan = std::nan("");
  return compute_metrics({{1.5 * scale, 2.25 * scale, nan}, {0.5 * scale, 3.0 * scale, nan}},
                         {"machine_a", "machine_b"});
}

StageProgress some_progress() {
  StageProgress p;
  p.epochs_done = 2;
  p.global_step = 7;
  p.unfinished = {.loss_sum = 12.5,
                  .seconds = 0.75,
                  .data_wait_seconds = 0.125,
                  .images = 4,
                  .skipped_steps = 1,
                  .steps = 2};
  p.best_value = 1.8125;
  p.best_epoch = 1;
  EpochRecord r;
  r.epoch = 1;
  r.train_loss = 0.123456789012345;
  r.lr = 3e-4;
  r.val_mre_mm = 1.8125;
  r.val_sd_mm = 0.1;
  r.val_sdr = {50.0, 75.0, 100.0, 100.0};
  r.images_per_second = 33.3;
  r.epoch_seconds = 1.5;
  r.data_wait_seconds = 0.25;
  r.skipped_steps = 0;
  r.peak_memory_bytes = 123456;
  r.best = true;
  p.history.push_back(r);
  r.epoch = 2;
  r.val_mre_mm = std::nan("");
  r.val_sdr = {std::nan(""), std::nan(""), std::nan(""), std::nan("")};
  r.peak_memory_bytes.reset();
  r.best = false;
  p.history.push_back(r);
  r.epoch = 3;
  r.data_wait_seconds = std::nan("");  // resumed from a checkpoint that did not record it
  p.history.push_back(r);
  p.best_metrics = some_metrics(1.0);
  p.final_metrics = some_metrics(2.0);
  p.baseline_metrics = some_metrics(10.0);
  p.train_seconds = 3.25;
  p.trained_images = 16;
  p.epoch_checkpoints = {"epoch_2"};
  p.resumed.push_back({"train/checkpoints/latest.pt", 1, 3});
  p.tuning = json{{"chosen_micro_batch", 2}};
  return p;
}

TEST(StageProgress, CheckpointJsonKeepsTheTrainerStateLayout) {
  const json state = to_json(some_progress(), kSymbols);
  std::vector<std::string> keys;
  for (const auto& [key, value] : state.items()) keys.push_back(key);
  EXPECT_EQ(keys,
            (std::vector<std::string>{"baseline_metrics", "best_metrics", "best_value",
                                      "epoch_checkpoints", "final_metrics", "history", "resumed",
                                      "train_seconds", "trained_images", "tuning", "unfinished"}));
  EXPECT_EQ(state["history"][0].dump(),
            R"({"best":true,"data_wait_seconds":0.25,"epoch":1,"epoch_seconds":1.5,)"
            R"("images_per_second":33.3,)"
            R"("lr":0.0003,"peak_memory_bytes":123456,"skipped_steps":0,)"
            R"("train_loss":0.123456789012345,"val_mre_mm":1.8125,"val_sd_mm":0.1,)"
            R"("val_sdr":{"2.0":50.0,"2.5":75.0,"3.0":100.0,"4.0":100.0}})");
  EXPECT_TRUE(state["history"][1]["val_mre_mm"].is_null());
  EXPECT_TRUE(state["history"][1]["val_sdr"]["2.5"].is_null());
  EXPECT_TRUE(state["history"][1]["peak_memory_bytes"].is_null());
  EXPECT_TRUE(state["history"][2]["data_wait_seconds"].is_null());
  EXPECT_EQ(state["best_metrics"], to_json(some_metrics(1.0), kSymbols));
  EXPECT_TRUE(state["best_metrics"]["per_landmark"]["A"]["mre"].is_null());
  EXPECT_EQ(state["unfinished"], (json{{"loss_sum", 12.5},
                                       {"seconds", 0.75},
                                       {"data_wait_seconds", 0.125},
                                       {"images", 4},
                                       {"skipped_steps", 1},
                                       {"steps", 2}}));
  EXPECT_EQ(
      state["resumed"],
      json::array({{{"from", "train/checkpoints/latest.pt"}, {"epoch", 1}, {"step_in_epoch", 3}}}));
}

TEST(StageProgress, RoundTripsThroughItsJsonTextUnchanged) {
  const StageProgress original = some_progress();
  const std::string text = to_json(original, kSymbols).dump();
  const StageProgress back = stage_progress_from_json(json::parse(text), kSymbols, 2, 7, 1);
  EXPECT_EQ(to_json(back, kSymbols).dump(), text);
  EXPECT_EQ(back.epochs_done, 2);
  EXPECT_EQ(back.global_step, 7);
  EXPECT_EQ(back.best_epoch, 1);
  EXPECT_EQ(back.unfinished.steps, 2);
  ASSERT_TRUE(back.best_metrics);
  EXPECT_EQ(back.best_metrics->per_landmark.size(), 3u);
  EXPECT_EQ(back.best_metrics->per_landmark[1].mre, original.best_metrics->per_landmark[1].mre);
  EXPECT_EQ(back.best_metrics->per_landmark[2].count, 0u);
}

TEST(StageProgress, BeforeTheFirstEpochMetricsAreNull) {
  const json state = to_json(StageProgress{}, kSymbols);
  EXPECT_TRUE(state["best_metrics"].is_null());
  EXPECT_TRUE(state["baseline_metrics"].is_null());
  EXPECT_TRUE(state["best_value"].is_null());
  EXPECT_TRUE(state["tuning"].is_null());
  const StageProgress back = stage_progress_from_json(state, kSymbols, 0, 0, 0);
  EXPECT_FALSE(back.best_metrics);
  EXPECT_FALSE(back.best_value);
}

// Checkpoints of releases before the data wait was recorded: unknown, never a made-up zero.
TEST(StageProgress, ADataWaitOlderCheckpointsLackIsUnknown) {
  json state = to_json(some_progress(), kSymbols);
  state["history"][0].erase("data_wait_seconds");
  state["unfinished"].erase("data_wait_seconds");
  const StageProgress back = stage_progress_from_json(state, kSymbols, 2, 7, 1);
  EXPECT_TRUE(std::isnan(back.history[0].data_wait_seconds));
  EXPECT_EQ(back.history[1].data_wait_seconds, 0.25);
  EXPECT_TRUE(std::isnan(back.unfinished.data_wait_seconds));
  EXPECT_EQ(back.unfinished.seconds, 0.75);
  const json again = to_json(back, kSymbols);
  EXPECT_TRUE(again["history"][0]["data_wait_seconds"].is_null());
  EXPECT_TRUE(again["unfinished"]["data_wait_seconds"].is_null());
}

TEST(StageProgress, AMissingFieldIsAnError) {
  json state = to_json(some_progress(), kSymbols);
  state.erase("trained_images");
  EXPECT_THROW(stage_progress_from_json(state, kSymbols, 2, 7, 1), json::exception);
}

TEST(MonitoredValue, ReadFromTheTypedMetrics) {
  const Metrics m = some_metrics(1.0);
  EXPECT_EQ(monitored_value("val_mre_mm", m, 0.5), m.overall.mre);
  EXPECT_EQ(monitored_value("val_sd_mm", m, 0.5), m.overall.sd);
  EXPECT_EQ(monitored_value("train_loss", m, 0.5), 0.5);
  EXPECT_EQ(monitored_value("val_sdr_2mm", m, 0.5), m.overall.sdr[0]);
  EXPECT_EQ(monitored_value("val_sdr_2.5mm", m, 0.5), m.overall.sdr[1]);
  EXPECT_EQ(monitored_value("val_sdr_3mm", m, 0.5), m.overall.sdr[2]);
  EXPECT_EQ(monitored_value("val_sdr_4mm", m, 0.5), m.overall.sdr[3]);
  EXPECT_THROW(monitored_value("val_sdr_5mm", m, 0.5), std::invalid_argument);
  // Nothing scored: not a number, so never "better".
  const Metrics empty = compute_metrics({{std::nan("")}}, {""});
  EXPECT_TRUE(std::isnan(monitored_value("val_sdr_2mm", empty, 0.5)));
  EXPECT_TRUE(std::isnan(monitored_value("val_mre_mm", empty, 0.5)));
}

}  // namespace
}  // namespace exprun

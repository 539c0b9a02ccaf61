// Resume compatibility: a checkpoint's recorded stage configuration against the stage now.
// Only differences that change the training stop a resume.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "config/config_compat.hpp"
#include "config/experiment.hpp"

namespace exprun {
namespace {

using Paths = std::vector<std::string>;

StageConfig stage() {
  StageConfig s;
  s.name = "train";
  s.epochs = 4;
  s.data.reader.name = "synthetic";
  s.data.reader.params.set("train_count", std::int64_t{16});
  s.model.name = "hrnet";
  s.loss.name = "mse";
  s.optimizer.lr = 1e-3;
  return s;
}

// The stage now against a recorded configuration, as resume calls it.
Paths differences(const nlohmann::json& written, const StageConfig& now) {
  return resume_config_differences(written, to_json(now), plugin_defaults_json(now));
}

TEST(ResumeConfig, TheSameConfigurationResumes) {
  EXPECT_EQ(differences(to_json(stage()), stage()), Paths{});
}

TEST(ResumeConfig, AKeyAddedSinceAtItsDefaultResumes) {
  nlohmann::json written = to_json(stage());
  written["data"]["augment"].erase("clahe_tiles");
  written["schedule"].erase("min_lr");
  EXPECT_EQ(differences(written, stage()), Paths{});
}

// A checkpoint written before data.worker_priority existed resumes at either priority: the key
// changes when batches are made, not what they hold.
TEST(ResumeConfig, ACheckpointFromBeforeWorkerPriorityResumesAtEither) {
  nlohmann::json written = to_json(stage());
  written["data"].erase("worker_priority");
  StageConfig normal = stage();
  normal.data.worker_priority = "normal";
  EXPECT_EQ(differences(written, stage()), Paths{});
  EXPECT_EQ(differences(written, normal), Paths{});
}

TEST(ResumeConfig, ATableAddedSinceWithEveryKeyAtItsDefaultResumes) {
  nlohmann::json written = to_json(stage());
  written.erase("eval");
  EXPECT_EQ(differences(written, stage()), Paths{});
  StageConfig dark = stage();
  dark.eval.decode = "dark";
  EXPECT_EQ(differences(written, dark), Paths{"/eval"});
}

TEST(ResumeConfig, AKeyAddedSinceAtAnotherValueIsRefused) {
  nlohmann::json written = to_json(stage());
  written["data"]["augment"].erase("clahe_tiles");
  StageConfig now = stage();
  now.data.augment.clahe_tiles = 4;
  EXPECT_EQ(differences(written, now), Paths{"/data/augment/clahe_tiles"});
}

TEST(ResumeConfig, AChangedLearningRateIsRefusedByItsPath) {
  StageConfig now = stage();
  now.optimizer.lr = 3e-4;
  EXPECT_EQ(differences(to_json(stage()), now), Paths{"/optimizer/lr"});
}

TEST(ResumeConfig, KeysThatDoNotChangeTheTrainingAreIgnored) {
  StageConfig now = stage();
  now.data.workers_auto = false;
  now.data.workers = 0;
  now.data.worker_priority = "normal";
  now.checkpoint.every = 5;
  now.checkpoint.keep_last = 2;
  EXPECT_EQ(differences(to_json(stage()), now), Paths{});
}

TEST(ResumeConfig, PluginParametersAndListsAreComparedAsWritten) {
  StageConfig now = stage();
  now.data.reader.params.set("train_count", std::int64_t{12});
  now.data.input_width = 128;
  EXPECT_EQ(differences(to_json(stage()), now), (Paths{"/data/image_size/0", "/data/train_count"}));
  // A plugin parameter the checkpoint lacks has no declared default here: refused.
  nlohmann::json written = to_json(stage());
  written["data"].erase("train_count");
  EXPECT_EQ(differences(written, stage()), Paths{"/data/train_count"});
}

// A run recorded before a plugin declared a parameter (losses/adaptive_wing's fused, say)
// resumes with the parameter at its default, as runs before had what that default does; at
// another value it is refused.
TEST(ResumeConfig, APluginParameterAddedSinceAtItsDefaultResumes) {
  StageConfig now = stage();
  now.loss.defaults = {{"fused", true}, {"omega", 14.0}};
  now.loss.params.set("fused", true);
  now.loss.params.set("omega", 14.0);
  nlohmann::json written = to_json(now);
  written["loss"].erase("fused");
  EXPECT_EQ(differences(written, now), Paths{});
  StageConfig unfused = now;
  unfused.loss.params.set("fused", false);
  EXPECT_EQ(differences(written, unfused), Paths{"/loss/fused"});
  // A parameter the run had at another value than today's default still differs.
  written = to_json(now);
  written["loss"]["omega"] = 10.0;
  EXPECT_EQ(differences(written, now), Paths{"/loss/omega"});
}

TEST(ResumeConfig, AKeyTheCheckpointHasAndTheStageLacksIsRefused) {
  nlohmann::json written = to_json(stage());
  written["optimizer"]["amsgrad"] = false;
  EXPECT_EQ(differences(written, stage()), Paths{"/optimizer/amsgrad"});
}

}  // namespace
}  // namespace exprun

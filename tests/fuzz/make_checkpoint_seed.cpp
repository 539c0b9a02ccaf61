// Writes the checkpoint fuzz target's seed, a real checkpoint of TinyModel, to the path given:
// built and run by the main build (cmake/fuzz.cmake), so the seed always has the current format.
#include <cstdio>

#include "tiny_model.hpp"
#include "train/checkpoint.hpp"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s OUTPUT\n", argv[0]);
    return 2;
  }
  torch::manual_seed(1);
  exprun::fuzz::TinyModel model;
  auto optimizer = exprun::fuzz::tiny_optimizer(model);
  // One step, so the optimiser has state to save and load.
  model.forward(torch::rand({2, 1, 3, 3})).sum().backward();
  optimizer.step();
  exprun::CheckpointInfo info;
  info.experiment = "fuzz";
  info.stage = "train";
  info.epoch = 1;
  info.global_step = 1;
  info.monitor = "val_mre_mm";
  info.best_metric = 2.5;
  info.best_epoch = 1;
  info.effective_batch = 2;
  info.micro_batch = 2;
  info.config = {{"name", "train"}, {"epochs", 2}};
  info.landmark_symbols = {"S", "N"};
  info.landmark_titles = {"Sella", "Nasion"};
  info.trainer_state = {{"history", nlohmann::json::array({{{"epoch", 1}, {"loss", 0.5}}})}};
  const std::vector<std::shared_ptr<exprun::sdk::MemoryStrategy>> strategies;
  exprun::save_checkpoint(argv[1], {model, optimizer, strategies, torch::kCPU}, info);
  return 0;
}

#include "train/optimizer_state.hpp"

#include <exprun/sdk/torch_compat.hpp>

#include <memory>
#include <stdexcept>
#include <string>

namespace exprun {
namespace {

// A fresh state object of the optimiser's kind; null for a kind this file does not know.
std::unique_ptr<torch::optim::OptimizerParamState> empty_state(
    const torch::optim::Optimizer& optimizer) {
  if (dynamic_cast<const torch::optim::AdamW*>(&optimizer))
    return std::make_unique<torch::optim::AdamWParamState>();
  if (dynamic_cast<const torch::optim::Adam*>(&optimizer))
    return std::make_unique<torch::optim::AdamParamState>();
  if (dynamic_cast<const torch::optim::SGD*>(&optimizer))
    return std::make_unique<torch::optim::SGDParamState>();
  return nullptr;
}

std::int64_t read_count(torch::serialize::InputArchive& archive, const std::string& key) {
  torch::Tensor count;
  archive.read(key, count);
  return count.item<std::int64_t>();
}

}  // namespace

void load_optimizer_state(torch::optim::Optimizer& optimizer,
                          torch::serialize::InputArchive& archive) {
  if (!empty_state(optimizer)) {
    optimizer.load(archive);  // another optimiser kind: LibTorch's own loader
    return;
  }
  c10::IValue format;
  archive.read("pytorch_version", format);
  if (!format.isString() || format.toStringRef() != "1.5.0") {
    throw std::runtime_error("its optimiser state is of an unknown layout");
  }
  torch::serialize::InputArchive states, groups;
  archive.read("state", states);
  archive.read("param_groups", groups);

  const auto group_count = read_count(groups, "param_groups/size");
  const auto& own_groups = optimizer.param_groups();
  if (group_count != static_cast<std::int64_t>(own_groups.size())) {
    throw std::runtime_error("its optimiser state has " + std::to_string(group_count) +
                             " parameter groups, the optimiser " +
                             std::to_string(own_groups.size()));
  }
  for (std::size_t g = 0; g < own_groups.size(); ++g) {
    torch::serialize::InputArchive group;
    groups.read("param_groups/" + std::to_string(g), group);
    const auto& parameters = own_groups[g].params();
    const auto count = read_count(group, "params/size");
    if (count != static_cast<std::int64_t>(parameters.size())) {
      throw std::runtime_error("its optimiser state has " + std::to_string(count) +
                               " parameters in group " + std::to_string(g) + ", the optimiser " +
                               std::to_string(parameters.size()));
    }
    for (std::size_t i = 0; i < parameters.size(); ++i) {
      c10::IValue key;
      group.read("params/" + std::to_string(i), key);
      if (!key.isString())
        throw std::runtime_error("its optimiser state has a key that is no string");
      // A parameter that had no gradient yet has no state.
      torch::serialize::InputArchive saved;
      if (!states.try_read(key.toStringRef(), saved)) continue;
      auto state = empty_state(optimizer);
      state->serialize(saved);
      sdk::compat::set_optimizer_state(optimizer, parameters[i], std::move(state));
    }
  }
}

}  // namespace exprun

#include "train/data_parallel.hpp"

#include <stdexcept>

#include "util/crc32c.hpp"

namespace exprun {
namespace {

std::vector<torch::Tensor> trainable_parameters(sdk::Model& model) {
  std::vector<torch::Tensor> out;
  for (const auto& p : model.parameters()) out.push_back(p);
  return out;
}

// The parameters' bytes, checksummed in registration order.
std::uint32_t parameter_fingerprint(sdk::Model& model) {
  std::uint32_t crc = 0;
  for (const auto& p : model.parameters()) {
    const torch::Tensor cpu = p.detach().to(torch::kCPU).contiguous();
    const std::uint32_t part =
        crc32c(static_cast<const char*>(cpu.data_ptr()), cpu.numel() * cpu.element_size());
    crc = crc * 0x9E3779B1u ^ part;
  }
  return crc;
}

}  // namespace

DataParallel::DataParallel(std::shared_ptr<dist::ProcessGroup> group, sdk::Model& model)
    : group_(std::move(group)), model_(model), buckets_(trainable_parameters(model)) {
  for (const auto& b : model.buffers()) buffers_.push_back(b);
}

void DataParallel::broadcast_model() {
  std::vector<torch::Tensor> state;
  for (const auto& p : model_.parameters()) state.push_back(p.detach());
  for (const auto& b : buffers_) state.push_back(b);
  group_->broadcast(state, "sending rank 0's weights");
}

void DataParallel::zero_gradients() { buckets_.zero(); }

void DataParallel::reduce_gradients() {
  group_->all_reduce_sum(buckets_.buckets(), "summing the gradients");
}

void DataParallel::broadcast_buffers() {
  if (buffers_.empty()) return;
  group_->broadcast(buffers_, "sending rank 0's BatchNorm statistics");
}

AgreedStep DataParallel::agree_step(double loss_sum, bool skipped, int stop_signal,
                                    std::int64_t step) {
  // One all-reduce per step for all three (0.2 ms); the signal's number needs a maximum, so it
  // takes a second one only in the rare step where some rank received one.
  torch::Tensor values = torch::tensor(
      {loss_sum, skipped ? 1.0 : 0.0, static_cast<double>(stop_signal)}, torch::kFloat64);
  std::vector<torch::Tensor> one{values};
  group_->all_reduce_sum(one, "agreeing step " + std::to_string(step));
  AgreedStep agreed;
  agreed.loss_sum = values[0].item<double>();
  const auto skipping = static_cast<int>(values[1].item<double>());
  if (skipping != 0 && skipping != world_size()) {
    throw std::runtime_error(
        "step " + std::to_string(step) + ": " + std::to_string(skipping) + " of " +
        std::to_string(world_size()) +
        " ranks skipped the step (fp16 overflow) and the others did not, although their "
        "gradients were the same: the ranks' memory strategies are out of step");
  }
  agreed.skipped = skipping != 0;
  if (values[2].item<double>() > 0) agreed.stop_signal = agree_stop(stop_signal);
  return agreed;
}

int DataParallel::agree_stop(int stop_signal) {
  torch::Tensor value = torch::tensor({static_cast<std::int64_t>(stop_signal)}, torch::kInt64);
  group_->all_reduce_max(value, "agreeing whether to stop");
  return static_cast<int>(value.item<std::int64_t>());
}

void DataParallel::check_in_step(const std::string& when) {
  const auto crc = static_cast<std::int64_t>(parameter_fingerprint(model_));
  torch::Tensor bounds = torch::tensor({crc, -crc}, torch::kInt64);
  group_->all_reduce_max(bounds, "comparing the ranks' weights");
  if (bounds[0].item<std::int64_t>() != -bounds[1].item<std::int64_t>()) {
    throw std::runtime_error("the ranks' weights differ " + when +
                             ": data-parallel training lost step (please report this)");
  }
}

nlohmann::json describe_distribution(const dist::ProcessGroup* group) {
  if (group == nullptr) return {{"world_size", 1}, {"launcher", "single"}};
  return {{"world_size", group->world_size()},
          {"launcher", group->launcher()},
          {"backend", group->backend()},
          {"gradient_bucket_bytes", GradientBuckets::kDefaultBucketBytes},
          {"buffers", "broadcast from rank 0 after every step"},
          {"validation", "rank 0"},
          {"timeout_s", group->timeout().count()}};
}

}  // namespace exprun

#include "train/train_step.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>

namespace exprun {

std::vector<std::int64_t> micro_batch_passes(std::int64_t batch_size, std::int64_t micro_batch) {
  if (micro_batch < 1) {
    throw std::invalid_argument("micro-batch " + std::to_string(micro_batch) +
                                ": a step needs at least one image per pass");
  }
  std::vector<std::int64_t> sizes;
  for (std::int64_t left = batch_size; left > 0; left -= micro_batch) {
    sizes.push_back(std::min(left, micro_batch));
  }
  return sizes;
}

StepResult optimisation_step(const StepParts& parts, torch::optim::Optimizer& optimizer,
                             std::int64_t micro_batch, const torch::Tensor& images,
                             const torch::Tensor& targets) {
  const std::int64_t batch = images.size(0);
  optimizer.zero_grad();
  double loss_sum = 0;
  std::int64_t offset = 0;
  for (std::int64_t micro : micro_batch_passes(batch, micro_batch)) {
    auto x = images.narrow(0, offset, micro).to(parts.device).contiguous(parts.input_format);
    auto y = targets.narrow(0, offset, micro).to(parts.device);
    offset += micro;
    torch::Tensor loss;
    {
      std::vector<std::unique_ptr<sdk::ForwardScope>> scopes;
      for (auto& s : parts.strategies) scopes.push_back(s->enter_forward());
      auto predicted = parts.model.forward(x).to(torch::kFloat32);
      loss = parts.loss.compute(predicted, y, parts.landmark_weights);
    }
    // Losses are batch means: weighting each micro-batch by its share of the batch makes the
    // summed gradient equal the full batch's, uneven last micro-batches included.
    auto weighted = loss * (static_cast<double>(micro) / static_cast<double>(batch));
    for (auto& s : parts.strategies) weighted = s->scale_loss(weighted);
    weighted.backward();
    loss_sum += loss.item<double>() * static_cast<double>(micro);
  }
  StepResult result;
  result.stepped = true;
  for (auto& s : parts.strategies) result.stepped = s->before_step(optimizer) && result.stepped;
  if (result.stepped) optimizer.step();
  for (auto& s : parts.strategies) s->after_step();
  result.loss = loss_sum / static_cast<double>(batch);
  return result;
}

}  // namespace exprun

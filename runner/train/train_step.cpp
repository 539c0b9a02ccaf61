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
                             const torch::Tensor& targets, const StepSync* sync) {
  // Losses are weighted by the global batch, so that the ranks' summed gradients are its own.
  const std::int64_t batch = sync ? sync->global_batch : images.size(0);
  if (sync) {
    sync->parallel.zero_gradients();
  } else {
    optimizer.zero_grad();
  }
  double loss_sum = 0;
  std::int64_t offset = 0;
  for (std::int64_t micro : micro_batch_passes(images.size(0), micro_batch)) {
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
  // After the last micro-batch only: the accumulation passes before it need no traffic.
  if (sync) sync->parallel.reduce_gradients();
  StepResult result;
  result.stepped = true;
  for (auto& s : parts.strategies) result.stepped = s->before_step(optimizer) && result.stepped;
  if (sync) {
    const AgreedStep agreed =
        sync->parallel.agree_step(loss_sum, !result.stepped, sync->stop_signal, sync->step);
    loss_sum = agreed.loss_sum;
    result.stop_signal = agreed.stop_signal;
  }
  if (result.stepped) optimizer.step();
  for (auto& s : parts.strategies) s->after_step();
  // Each rank's BatchNorm statistics saw only its slice: keep rank 0's, as DDP does.
  if (sync) sync->parallel.broadcast_buffers();
  result.loss = loss_sum / static_cast<double>(std::max<std::int64_t>(batch, 1));
  return result;
}

}  // namespace exprun

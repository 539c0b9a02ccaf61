#include "eval/evaluator.hpp"

#include <exprun/sdk/torch_compat.hpp>

#include <cmath>

#include "data/batch_loader.hpp"
#include "eval/radial_error.hpp"

namespace exprun {
namespace {

// Autocast off on every device for the guard's life, then as it was. Scores are of the model's
// fp32 weights, as `exprun predict` uses them: under a mixed-precision stage's bf16 or fp16
// the same checkpoint scored other landmarks than predict gave (rounded heatmaps tie at
// their peaks), and validation would choose best.pt by numbers no later use reproduces.
class FullPrecision {
 public:
  FullPrecision()
      : cpu_(sdk::compat::autocast_state(c10::DeviceType::CPU)),
        cuda_(sdk::compat::autocast_state(c10::DeviceType::CUDA)) {
    sdk::compat::set_autocast_state(c10::DeviceType::CPU, {false, cpu_.dtype});
    sdk::compat::set_autocast_state(c10::DeviceType::CUDA, {false, cuda_.dtype});
  }
  ~FullPrecision() {
    sdk::compat::set_autocast_state(c10::DeviceType::CPU, cpu_);
    sdk::compat::set_autocast_state(c10::DeviceType::CUDA, cuda_);
  }
  FullPrecision(const FullPrecision&) = delete;
  FullPrecision& operator=(const FullPrecision&) = delete;

 private:
  sdk::compat::AutocastState cpu_, cuda_;
};

}  // namespace

Evaluation score(const torch::Tensor& predicted_original, std::vector<SampleMeta> meta) {
  Evaluation out;
  out.predicted = predicted_original.to(torch::kFloat64).cpu();
  out.errors_mm = radial_errors_mm(predicted_original, meta);
  for (const auto& m : meta) out.groups.push_back(m.group);
  out.metrics = compute_metrics(out.errors_mm, out.groups);
  for (const auto& row : out.errors_mm)
    for (const double e : row) out.failed_predictions += std::isinf(e) ? 1 : 0;
  out.meta = std::move(meta);
  return out;
}

std::string failed_predictions_note(const Evaluation& evaluation,
                                    const std::vector<std::string>& symbols) {
  if (evaluation.failed_predictions == 0) return "";
  std::string first;
  for (std::size_t i = 0; i < evaluation.errors_mm.size() && first.empty(); ++i) {
    for (std::size_t j = 0; j < evaluation.errors_mm[i].size(); ++j) {
      if (!std::isinf(evaluation.errors_mm[i][j])) continue;
      first = (j < symbols.size() ? symbols[j] : "landmark " + std::to_string(j + 1)) + " of " +
              (i < evaluation.meta.size() ? evaluation.meta[i].id : std::to_string(i));
      break;
    }
  }
  return std::to_string(evaluation.failed_predictions) +
         " predicted landmark(s) are not finite points (the model's heatmaps hold NaN or "
         "infinity; first: " +
         first + "): each counts as a miss at every SDR threshold, and MRE and SD are null";
}

Evaluation evaluate(const EvaluatedModel& evaluated, const std::shared_ptr<sdk::Dataset>& dataset,
                    std::int64_t batch_size, std::int64_t workers) {
  std::vector<std::size_t> order(dataset->size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  BatchLoader loader(dataset, evaluated.pipeline, std::move(order), batch_size, workers, false, 0);
  const double stride = static_cast<double>(evaluated.pipeline.spec().stride);
  const double sigma = evaluated.pipeline.spec().sigma;

  evaluated.model.eval();
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> predictions;
  std::vector<SampleMeta> meta;
  while (auto batch = loader.next()) {
    torch::Tensor heatmaps;
    {
      std::vector<std::unique_ptr<sdk::ForwardScope>> scopes;
      for (auto& s : evaluated.strategies) scopes.push_back(s->enter_forward());
      // Inside the strategies' scopes, so that whatever else they do still holds.
      const FullPrecision full_precision;
      heatmaps = evaluated.model.forward(batch->images.to(evaluated.device)).to(torch::kFloat32);
    }
    predictions.push_back(heatmap_to_original(decode_heatmaps(heatmaps, evaluated.decode, sigma),
                                              batch->meta, stride));
    for (auto& m : batch->meta) meta.push_back(std::move(m));
  }
  evaluated.model.train();
  return score(torch::cat(predictions), std::move(meta));
}

}  // namespace exprun

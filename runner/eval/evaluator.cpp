#include "eval/evaluator.hpp"

#include "data/batch_loader.hpp"
#include "eval/radial_error.hpp"

namespace exprun {

Evaluation score(const torch::Tensor& predicted_original, std::vector<SampleMeta> meta) {
  Evaluation out;
  out.predicted = predicted_original.to(torch::kFloat64).cpu();
  out.errors_mm = radial_errors_mm(predicted_original, meta);
  for (const auto& m : meta) out.groups.push_back(m.group);
  out.metrics = compute_metrics(out.errors_mm, out.groups);
  out.meta = std::move(meta);
  return out;
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

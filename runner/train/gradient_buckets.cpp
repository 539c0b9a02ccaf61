#include "train/gradient_buckets.hpp"

#include <stdexcept>

namespace exprun {

GradientBuckets::GradientBuckets(const std::vector<torch::Tensor>& parameters,
                                 std::int64_t bucket_bytes)
    : bucket_bytes_(bucket_bytes) {
  if (bucket_bytes < 1) throw std::invalid_argument("gradient bucket size must be positive");
  struct Pending {
    std::vector<torch::Tensor> members;
    std::int64_t bytes = 0;
  };
  std::vector<Pending> plan;
  // A bucket holds one dtype on one device, so it can be reduced as one tensor.
  for (auto it = parameters.rbegin(); it != parameters.rend(); ++it) {
    const torch::Tensor& p = *it;
    if (!p.requires_grad()) continue;
    const std::int64_t bytes = p.numel() * static_cast<std::int64_t>(p.element_size());
    const bool fits = !plan.empty() &&
                      plan.back().members.front().scalar_type() == p.scalar_type() &&
                      plan.back().members.front().device() == p.device() &&
                      plan.back().bytes + bytes <= bucket_bytes;
    if (!fits) plan.emplace_back();
    plan.back().members.push_back(p);
    plan.back().bytes += bytes;
  }
  torch::NoGradGuard no_grad;
  for (const auto& pending : plan) {
    std::int64_t numel = 0;
    for (const auto& p : pending.members) numel += p.numel();
    const auto& first = pending.members.front();
    torch::Tensor bucket = torch::zeros({numel}, first.options().requires_grad(false));
    std::int64_t offset = 0;
    for (const auto& p : pending.members) {
      torch::Tensor view = bucket.narrow(0, offset, p.numel()).view(p.sizes());
      offset += p.numel();
      if (p.grad().defined()) view.copy_(p.grad());
      bindings_.push_back({p, view});
      p.mutable_grad() = view;
    }
    buckets_.push_back(bucket);
  }
}

void GradientBuckets::zero() {
  for (auto& bucket : buckets_) bucket.zero_();
  for (auto& b : bindings_) {
    if (!b.parameter.grad().is_same(b.view)) b.parameter.mutable_grad() = b.view;
  }
}

bool GradientBuckets::bound() const {
  for (const auto& b : bindings_)
    if (!b.parameter.grad().is_same(b.view)) return false;
  return true;
}

}  // namespace exprun

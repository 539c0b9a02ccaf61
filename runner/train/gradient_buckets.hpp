// The gradients of a model's trainable parameters as views into a few flat buckets of about
// `bucket_bytes` each (in reverse registration order, the order backward produces them, as
// PyTorch's DDP assigns them): averaging them across ranks is then one all-reduce per bucket,
// with no copy in or out. Autograd accumulates into the views in place, so they stay bound
// as long as gradients are zeroed through zero() rather than reset.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <vector>

namespace exprun {

class GradientBuckets {
 public:
  static constexpr std::int64_t kDefaultBucketBytes = 25 * 1024 * 1024;

  // parameters: those that do not require a gradient are left alone. A parameter larger than
  // a bucket gets a bucket of its own. Existing gradients are copied into the views.
  GradientBuckets(const std::vector<torch::Tensor>& parameters,
                  std::int64_t bucket_bytes = kDefaultBucketBytes);

  // Zeroes every bucket and rebinds a gradient that something replaced (an optimizer's
  // zero_grad(set_to_none), a restore) to its view.
  void zero();
  // Whether every trainable parameter's gradient is still its bucket view.
  bool bound() const;

  std::vector<torch::Tensor>& buckets() { return buckets_; }
  std::int64_t bucket_bytes() const { return bucket_bytes_; }

 private:
  struct Binding {
    torch::Tensor parameter;
    torch::Tensor view;
  };
  std::vector<torch::Tensor> buckets_;
  std::vector<Binding> bindings_;
  std::int64_t bucket_bytes_;
};

}  // namespace exprun

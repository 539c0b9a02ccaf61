// LibTorch 1.13's C++ API has no torch::utils::checkpoint (it is Python-only), so the segment
// is a custom autograd Function written here. The segment's parameters are passed as inputs of
// the Function so that gradients reach them even when no activation input requires grad (the
// stem, whose input is the image batch).
#include "exprun/sdk/checkpointing.hpp"

#include "exprun/sdk/torch_compat.hpp"

#include <ATen/core/Generator.h>

#include <mutex>
#include <stdexcept>

namespace exprun::sdk {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// What the second pass must reproduce of the first. Kept in the autograd context as a capsule
// because IValue cannot hold a std::function.
struct SegmentRecord : torch::CustomClassHolder {
  torch::nn::Module* segment = nullptr;
  SegmentFunction run;
  std::size_t input_count = 0;
  compat::AutocastState autocast_cpu, autocast_cuda;
  torch::Device device = torch::kCPU;
  torch::Tensor rng_state;
};

// Autocast as it was during the first pass, restored on scope exit.
class AutocastAs {
 public:
  explicit AutocastAs(const SegmentRecord& r)
      : cpu_(compat::autocast_state(torch::kCPU)), cuda_(compat::autocast_state(torch::kCUDA)) {
    compat::set_autocast_state(torch::kCPU, r.autocast_cpu);
    compat::set_autocast_state(torch::kCUDA, r.autocast_cuda);
    at::autocast::increment_nesting();
  }
  ~AutocastAs() {
    // The cast-weight cache belongs to this pass; keeping it would hold fp16 copies of weights.
    if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
    compat::set_autocast_state(torch::kCPU, cpu_);
    compat::set_autocast_state(torch::kCUDA, cuda_);
  }
  AutocastAs(const AutocastAs&) = delete;
  AutocastAs& operator=(const AutocastAs&) = delete;

 private:
  compat::AutocastState cpu_, cuda_;
};

at::Generator generator_for(const torch::Device& device) {
  return at::globalContext().defaultGenerator(device);
}

torch::Tensor rng_state(const torch::Device& device) {
  auto generator = generator_for(device);
  std::lock_guard<std::mutex> lock(generator.mutex());
  return generator.get_state();
}

void set_rng_state(const torch::Device& device, const torch::Tensor& state) {
  auto generator = generator_for(device);
  std::lock_guard<std::mutex> lock(generator.mutex());
  generator.set_state(state);
}

// Runs the recomputation with the random stream of the first pass, then puts the stream back
// where the rest of training left it, so checkpointing changes no later draw. The generator's
// lock is not held while the segment runs: dropout takes it.
std::vector<torch::Tensor> rerun_with_first_pass_rng(const SegmentRecord& r,
                                                     const std::vector<torch::Tensor>& inputs) {
  const torch::Tensor now = rng_state(r.device);
  set_rng_state(r.device, r.rng_state);
  try {
    auto outputs = r.run(inputs);
    set_rng_state(r.device, now);
    return outputs;
  } catch (...) {
    set_rng_state(r.device, now);
    throw;
  }
}

struct CheckpointFunction : torch::autograd::Function<CheckpointFunction> {
  static variable_list forward(AutogradContext* ctx, c10::intrusive_ptr<SegmentRecord> record,
                               at::TensorList inputs, at::TensorList parameters) {
    (void)parameters;  // read by `run` through the module; listed so gradients flow to them
    record->input_count = inputs.size();
    record->autocast_cpu = compat::autocast_state(torch::kCPU);
    record->autocast_cuda = compat::autocast_state(torch::kCUDA);
    record->device = inputs.empty() ? torch::Device(torch::kCPU) : inputs.front().device();
    record->rng_state = rng_state(record->device);
    // Function::apply runs forward with gradient recording off: no activations are kept.
    auto outputs = record->run(inputs.vec());
    for (const auto& out : outputs) {
      for (const auto& in : inputs) {
        if (out.is_same(in)) {
          throw std::logic_error("checkpoint_segment: a segment returned one of its inputs");
        }
      }
    }
    ctx->save_for_backward(inputs.vec());
    ctx->saved_data["record"] = c10::IValue::make_capsule(record);
    return outputs;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    auto record =
        c10::static_intrusive_pointer_cast<SegmentRecord>(ctx->saved_data["record"].toCapsule());
    const variable_list saved = ctx->get_saved_variables();

    std::vector<torch::Tensor> inputs;
    inputs.reserve(saved.size());
    for (const auto& x : saved) inputs.push_back(x.detach().requires_grad_(x.requires_grad()));

    // The first pass already updated batch-norm running statistics; the second must not. They
    // are put back after the gradients, since batch norm's backward checks they are unchanged.
    std::vector<torch::Tensor> buffers = record->segment->buffers();
    std::vector<torch::Tensor> buffers_before;
    for (const auto& b : buffers) buffers_before.push_back(b.clone());

    variable_list outputs;
    {
      torch::AutoGradMode enable(true);
      AutocastAs autocast(*record);
      outputs = rerun_with_first_pass_rng(*record, inputs);
    }

    // Differentiate the recomputed outputs with respect to the inputs and parameters that
    // need it; the others get no gradient.
    variable_list roots, root_grads;
    for (std::size_t i = 0; i < outputs.size(); ++i) {
      if (outputs[i].requires_grad() && grad_outputs[i].defined()) {
        roots.push_back(outputs[i]);
        root_grads.push_back(grad_outputs[i]);
      }
    }
    std::vector<torch::Tensor> wrt;
    std::vector<std::size_t> wrt_slot;  // position in this Function's inputs (after `record`)
    for (std::size_t i = 0; i < inputs.size(); ++i) {
      if (inputs[i].requires_grad()) {
        wrt.push_back(inputs[i]);
        wrt_slot.push_back(i);
      }
    }
    const auto parameters = record->segment->parameters();
    for (std::size_t i = 0; i < parameters.size(); ++i) {
      if (parameters[i].requires_grad()) {
        wrt.push_back(parameters[i]);
        wrt_slot.push_back(inputs.size() + i);
      }
    }

    // One slot for `record`, then the inputs, then the parameters.
    variable_list grads(1 + inputs.size() + parameters.size());
    if (!roots.empty() && !wrt.empty()) {
      const auto computed = torch::autograd::grad(roots, wrt, root_grads, /*retain_graph=*/false,
                                                  /*create_graph=*/false, /*allow_unused=*/true);
      for (std::size_t k = 0; k < computed.size(); ++k) grads[1 + wrt_slot[k]] = computed[k];
    }
    {
      torch::NoGradGuard no_grad;
      for (std::size_t i = 0; i < buffers.size(); ++i) buffers[i].copy_(buffers_before[i]);
    }
    return grads;
  }
};

}  // namespace

std::vector<torch::Tensor> checkpoint_segment(torch::nn::Module& segment, SegmentFunction run,
                                              const std::vector<torch::Tensor>& inputs) {
  if (!torch::GradMode::is_enabled()) return run(inputs);
  auto record = c10::make_intrusive<SegmentRecord>();
  record->segment = &segment;
  record->run = std::move(run);
  const std::vector<torch::Tensor> parameters = segment.parameters();
  return CheckpointFunction::apply(record, at::TensorList(inputs), at::TensorList(parameters));
}

torch::Tensor checkpoint_segment(torch::nn::Module& segment,
                                 const std::function<torch::Tensor(const torch::Tensor&)>& run,
                                 const torch::Tensor& input) {
  auto outputs = checkpoint_segment(segment,
                                    [run](const std::vector<torch::Tensor>& in) {
                                      return std::vector<torch::Tensor>{run(in[0])};
                                    },
                                    {input});
  return outputs.front();
}

}  // namespace exprun::sdk

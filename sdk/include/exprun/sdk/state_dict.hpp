// Starting a model from a PyTorch state dict (`torch.save(model.state_dict(), "x.pth")`), e.g.
// ImageNet weights: the file's tensors are matched to the module's parameters and buffers by
// name, copied where the shapes agree, and what matched, was missing or was left over is
// reported. Added in SDK 1.2.
#pragma once

#include <torch/torch.h>

#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace exprun::sdk {

// A file that cannot be read as a state dict, or a shape that does not fit in strict mode.
class StateDictError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The tensors of a .pth file, in the file's order. Reads both formats torch.save writes: the
// zip archive (PyTorch >= 1.6) and the legacy pickle stream (PyTorch 0.4 - 1.5, or
// _use_new_zipfile_serialization=False). A checkpoint that nests the state dict under
// "state_dict" or "model" is unwrapped, and a "module." prefix on every key (DataParallel) is
// removed. Throws StateDictError naming the file when it is not a state dict.
std::vector<std::pair<std::string, torch::Tensor>> read_state_dict(const std::string& path);

struct StateDictOptions {
  // true: a tensor whose shape differs from the model's is an error; false: it is skipped and
  // listed in `skipped`. Missing and left-over names are reported, never errors: ImageNet
  // weights have no heatmap head and keep a classifier the model does not have.
  bool strict = true;
};

struct StateDictReport {
  std::string file;
  std::vector<std::string> matched;         // copied as they are
  std::vector<std::string> channel_summed;  // 3-channel conv weights summed into 1 channel
  std::vector<std::string> missing;         // in the model, not in the file: left as initialised
  std::vector<std::string> left_over;       // in the file, not in the model: ignored
  std::vector<std::string> skipped;  // shape mismatch, not strict: "name: file [..], model [..]"

  // A few lines for the user: counts, and names grouped by their first component
  // ("incre_modules.* (80)") so that a whole missing head reads as one entry.
  std::string text() const;
};

// Copies the matching tensors of `path` into `module`'s parameters and buffers (on their
// device and dtype). A convolution weight stored with 3 input channels for a model with 1 is
// summed over the channel dimension, the usual way to start a grey-image model from RGB
// weights. Throws StateDictError when nothing matches (surely the wrong file) or, in strict
// mode, on a shape mismatch, naming the file and the key.
StateDictReport load_state_dict(torch::nn::Module& module, const std::string& path,
                                const StateDictOptions& options = {});

}  // namespace exprun::sdk

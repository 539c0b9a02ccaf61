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

// A file that cannot be read as a state dict, or, in strict mode, one that does not match the
// model: a shape that differs, a name missing from the file or left over in it.
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
  // true: the file and the model must hold the same names with the same shapes, less those
  // under `ignore`; anything else is an error listing the first few names of each kind.
  // false: what matches is loaded, the rest is reported (missing names keep their
  // initialisation, left-over ones are dropped, shape mismatches are skipped).
  bool strict = true;
  // Name prefixes, whole components ("head" covers "head.0.weight", not "header.bias"), whose
  // tensors are neither loaded from the file nor required of it: the parts meant to differ,
  // e.g. an ImageNet checkpoint's classifier and the model's landmark head. A prefix that
  // matches no name in the file or the model is an error when strict (surely a typo), a
  // warning in the report otherwise.
  std::vector<std::string> ignore;
};

struct StateDictReport {
  std::string file;
  std::vector<std::string> matched;         // copied as they are
  std::vector<std::string> channel_summed;  // 3-channel conv weights summed into 1 channel
  std::vector<std::string> missing;         // in the model, not in the file: left as initialised
  std::vector<std::string> left_over;       // in the file, not in the model: ignored
  std::vector<std::string> skipped;  // shape mismatch, not strict: "name: file [..], model [..]"
  std::vector<std::string> ignored;  // under a prefix of `ignore`, in the file or the model
  std::vector<std::string> unused_ignore;  // prefixes of `ignore` that matched no name

  // A few lines for the user: counts, and the names; a larger group that shares its first
  // component reads as one entry ("incre_modules.* (80)").
  std::string text() const;
};

// Copies the matching tensors of `path` into `module`'s parameters and buffers (on their
// device and dtype). A convolution weight stored with 3 input channels for a model with 1 is
// summed over the channel dimension, the usual way to start a grey-image model from RGB
// weights. A missing `X.num_batches_tracked` is never an error when the file has
// `X.running_mean`: files of PyTorch < 0.4.1 have no batch counter, and PyTorch's own strict
// loading accepts them too. Throws StateDictError naming the file when nothing matches
// (surely the wrong file), on an empty `ignore` prefix, and in strict mode on a shape
// mismatch (naming the key), on missing or left-over names (listing the first few of each
// and their counts) and on an `ignore` prefix that matches nothing.
StateDictReport load_state_dict(torch::nn::Module& module, const std::string& path,
                                const StateDictOptions& options = {});

}  // namespace exprun::sdk

// Loading an optimiser's state from what Optimizer::save wrote, whichever LibTorch wrote it.
#pragma once

#include <torch/torch.h>

namespace exprun {

// Restores each parameter's state (Adam's moments and step, SGD's momentum) from `archive`,
// as written by Optimizer::save: LibTorch's layout (torch/optim/serialize.h), a parameter's
// state filed under the key its group's "params/N" entry names. The key is matched as the
// text it was written as. LibTorch 2.x's own loader parses it as a decimal number, but 1.13
// wrote it as a hexadecimal address ("0x55d5c3f0a2b0"): every state of a 1.13 checkpoint
// would parse to 0 and land on one parameter. The groups' options are not restored: a stage
// sets them from its configuration, which a resume must match, and the learning rate every
// step. Throws std::runtime_error when the groups do not match the optimiser's.
void load_optimizer_state(torch::optim::Optimizer& optimizer,
                          torch::serialize::InputArchive& archive);

}  // namespace exprun

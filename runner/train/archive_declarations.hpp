// The TorchScript class declarations inside a checkpoint's LibTorch archive, checked before
// LibTorch compiles them. LibTorch 1.13's source importer recurses without bound on some
// malformed declarations (a class constant where a member belongs) and overflows the stack:
// found by the checkpoint fuzz target
// (tests/fuzz/regressions/checkpoint). A checkpoint's CRC stops accidental damage, but a
// crafted file passes it, and no LibTorch call validates the source without compiling it.
#pragma once

#include <string>

namespace exprun {

// Throws std::runtime_error saying why, when a `code/*.py` record of the archive `payload` holds
// anything but what torch::serialize::OutputArchive writes: `class Module(Module):` followed by
// `__parameters__`/`__buffers__` name lists, `__annotations__` entries and `name : Type` lines,
// with types that are (possibly generic) dotted names nested at most a few levels. Class
// references must form no cycle: OutputArchive never writes one, and a resolver that follows
// them could not end. Records are read with LibTorch's own zip reader.
// Also throws when a pickle record (`*.pkl`: data.pkl, constants.pkl, code/*.debug_pkl) has a
// length field beyond its end (pickle_lengths.hpp).
void check_archive_declarations(const std::string& payload);

}  // namespace exprun

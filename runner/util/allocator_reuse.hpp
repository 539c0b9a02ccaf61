// glibc's malloc returns large freed blocks to the kernel at once (munmap, or trimming the
// heap's top), so a training step that frees and allocates the same activations every step
// pays page faults and the kernel's page zeroing for all of them again, every step. Keeping
// freed memory in the process is what PyTorch's CUDA caching allocator does on a GPU; on a CPU
// it made exprun's steps 3-6% faster (docs/benchmarks.md). The price: the process keeps its
// peak memory until it exits, which a training process reaches again every step anyway.
#pragma once

#include <string>

namespace exprun {

// Raises glibc's mmap and trim thresholds (and the heap's top pad) so that freed activations
// are reused. Leaves malloc alone when the user tunes it (MALLOC_*_ or GLIBC_TUNABLES) or when
// EXPRUN_KEEP_MALLOC_DEFAULTS is set. Acts on the first call; every call returns what it did,
// for `exprun version`.
std::string reuse_freed_memory();

}  // namespace exprun

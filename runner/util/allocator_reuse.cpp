#include "util/allocator_reuse.hpp"

#include <unistd.h>

#include <cstdlib>
#include <cstring>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace exprun {
namespace {

bool user_tunes_malloc() {
  for (char** entry = environ; entry && *entry; ++entry) {
    if (std::strncmp(*entry, "MALLOC_", 7) == 0 || std::strncmp(*entry, "GLIBC_TUNABLES=", 15) == 0)
      return true;
  }
  return false;
}

std::string apply_malloc_settings() {
#if defined(__GLIBC__)
  if (std::getenv("EXPRUN_KEEP_MALLOC_DEFAULTS"))
    return "glibc defaults (EXPRUN_KEEP_MALLOC_DEFAULTS)";
  if (user_tunes_malloc()) return "glibc, as tuned by the environment";
  // 32 MiB is the largest mmap threshold glibc accepts on 64-bit (half its heap size); larger
  // blocks are mmapped still, which costs little next to the work done on them.
  constexpr int kMmapThreshold = 32 << 20;
  constexpr int kTopPad = 64 << 20;
  const bool ok = mallopt(M_MMAP_THRESHOLD, kMmapThreshold) == 1 &&
                  mallopt(M_TRIM_THRESHOLD, 0x7fffffff) == 1 && mallopt(M_TOP_PAD, kTopPad) == 1;
  return ok ? "glibc, freed memory kept for reuse" : "glibc defaults (mallopt refused)";
#else
  return "the C library's defaults";
#endif
}

}  // namespace

std::string reuse_freed_memory() {
  static const std::string note = apply_malloc_settings();
  return note;
}

}  // namespace exprun

#include "data/film_memo.hpp"

#include <unistd.h>

// Header-only use, as in the film cache.
#define XXH_INLINE_ALL
#include <xxhash.h>

#include <algorithm>

namespace exprun {

FilmMemo::FilmMemo(std::int64_t max_bytes) : max_bytes_(max_bytes) {}

std::optional<ImageKey> FilmMemo::key_of(const torch::Tensor& image) {
  if (!image.defined() || !image.device().is_cpu() || !image.is_contiguous() ||
      image.layout() != torch::kStrided || (image.dim() != 2 && image.dim() != 3)) {
    return std::nullopt;
  }
  // 128 bits, as the film cache's file hashes: two different images meeting under one key is
  // as unlikely as two different files there.
  const XXH128_hash_t digest =
      XXH3_128bits(image.data_ptr(), static_cast<std::size_t>(image.nbytes()));
  ImageKey key;
  key.hash_high = digest.high64;
  key.hash_low = digest.low64;
  key.type = static_cast<std::int64_t>(image.scalar_type());
  key.rows = image.size(0);
  key.cols = image.size(1);
  key.channels = image.dim() == 3 ? image.size(2) : 0;
  return key;
}

std::optional<InputFilm> FilmMemo::find(const ImageKey& key) const {
  std::lock_guard lock(mutex_);
  const auto it = films_.find(key);
  if (it == films_.end()) return std::nullopt;
  return it->second;
}

void FilmMemo::store(const ImageKey& key, const InputFilm& film) {
  const auto size = static_cast<std::int64_t>(film.image.total() * film.image.elemSize());
  std::lock_guard lock(mutex_);
  if (bytes_ + size > max_bytes_ || films_.count(key) != 0) return;
  films_.emplace(key, film);
  bytes_ += size;
}

std::int64_t FilmMemo::bytes() const {
  std::lock_guard lock(mutex_);
  return bytes_;
}

std::int64_t default_film_memo_bytes() {
  constexpr std::int64_t kMost = 2LL << 30;
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  if (pages <= 0 || page <= 0) return kMost;
  return std::min(kMost, static_cast<std::int64_t>(pages) * page / 8);
}

}  // namespace exprun

// Films at the input size, kept in memory for datasets that make their images (no file for the
// decoded-film cache to key on). Such a dataset may hand out the same image at every epoch
// (synthetic_ceph renders each film once and keeps it); its film is then converted to grey and
// area-averaged to the input size once rather than at every epoch. The key is the image's
// content, not the tensor's identity: a dataset may refill one buffer in place, and an image
// with other pixels is another film.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <mutex>
#include <optional>
#include <unordered_map>

#include "data/film_cache.hpp"

namespace exprun {

// An image's content as the memo keys it: its element type, shape and a 128-bit hash of its
// bytes.
struct ImageKey {
  std::uint64_t hash_high = 0;
  std::uint64_t hash_low = 0;
  std::int64_t type = 0;
  std::int64_t rows = 0;
  std::int64_t cols = 0;
  std::int64_t channels = 0;
  bool operator==(const ImageKey&) const = default;
};

struct ImageKeyHash {
  std::size_t operator()(const ImageKey& key) const {
    return static_cast<std::size_t>(key.hash_low);
  }
};

class FilmMemo {
 public:
  // Films are kept until they take max_bytes; later films are made each time (at every epoch
  // the same ones are found, rather than each pushing out another).
  explicit FilmMemo(std::int64_t max_bytes);

  // The key of a dataset's image as get() returns it; nullopt for one the memo does not keep
  // (not a contiguous CPU tensor, which the pipeline copies first anyway).
  static std::optional<ImageKey> key_of(const torch::Tensor& image);

  // The film kept for `key`. Its pixels are shared with the memo: read them, never write.
  std::optional<InputFilm> find(const ImageKey& key) const;
  // Keeps `film` under `key` when it fits and no film is kept there yet.
  void store(const ImageKey& key, const InputFilm& film);

  std::int64_t bytes() const;
  std::int64_t max_bytes() const { return max_bytes_; }

 private:
  const std::int64_t max_bytes_;
  mutable std::mutex mutex_;
  std::unordered_map<ImageKey, InputFilm, ImageKeyHash> films_;
  std::int64_t bytes_ = 0;
};

// The memo's size for a stage: an eighth of the machine's memory, at most 2 GiB (768 x 768
// films of 2.25 MiB: about 900 of them).
std::int64_t default_film_memo_bytes();

}  // namespace exprun

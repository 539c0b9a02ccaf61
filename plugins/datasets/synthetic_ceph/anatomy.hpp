// Where the 29 Aariz landmarks sit on one synthetic skull, in millimetres with sella at the
// origin, x towards the face and y down (image axes). One instance per sample: the canonical
// adult skull varied by a handful of anatomical factors (mandible rotation and length, jaw
// position, incisor inclination, soft-tissue thickness) and a small per-point jitter.
#pragma once

#include <array>
#include <cstddef>
#include <random>

namespace exprun::synthetic_ceph {

struct Vec2 {
  double x = 0, y = 0;
};
inline Vec2 operator+(Vec2 a, Vec2 b) { return {a.x + b.x, a.y + b.y}; }
inline Vec2 operator-(Vec2 a, Vec2 b) { return {a.x - b.x, a.y - b.y}; }
inline Vec2 operator*(double s, Vec2 a) { return {s * a.x, s * a.y}; }

// Indices in the Aariz file order (exprun::sdk::aariz_landmarks()).
enum Landmark : std::size_t {
  kA,
  kANS,
  kB,
  kMe,
  kN,
  kOr,
  kPog,
  kPNS,
  kPn,
  kR,
  kS,
  kAr,
  kCo,
  kGn,
  kGo,
  kPo,
  kLPM,
  kLIT,
  kLMT,
  kUPM,
  kUIA,
  kUIT,
  kUMT,
  kLIA,
  kLi,
  kLs,
  kSoftN,
  kSoftPog,
  kSn,
  kLandmarkCount
};

using LandmarkSet = std::array<Vec2, kLandmarkCount>;

// The canonical skull, before any variation.
const LandmarkSet& canonical_anatomy();

// `jitter_mm` scales the per-point noise; the anatomical factors keep their own ranges so
// that the drawn structures stay plausible.
LandmarkSet sample_anatomy(std::mt19937_64& rng, double jitter_mm);

}  // namespace exprun::synthetic_ceph

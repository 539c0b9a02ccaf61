#include "anatomy.hpp"

#include <algorithm>
#include <cmath>
#include <initializer_list>

namespace exprun::synthetic_ceph {
namespace {

constexpr double kPi = 3.14159265358979323846;

Vec2 rotate_about(Vec2 p, Vec2 centre, double degrees) {
  const double r = degrees * kPi / 180.0, c = std::cos(r), s = std::sin(r);
  const Vec2 d = p - centre;
  return centre + Vec2{c * d.x - s * d.y, s * d.x + c * d.y};
}

double uniform(std::mt19937_64& rng, double lo, double hi) {
  return std::uniform_real_distribution<double>(lo, hi)(rng);
}

}  // namespace

const LandmarkSet& canonical_anatomy() {
  static const LandmarkSet set = [] {
    LandmarkSet s;
    s[kS] = {0, 0};
    s[kN] = {68, -8};
    s[kOr] = {55, 20};
    s[kPo] = {-22, 18};
    s[kCo] = {-12, 22};
    s[kAr] = {-14, 30};
    s[kR] = {-15, 58};
    s[kGo] = {-8, 88};
    s[kMe] = {50, 117};
    s[kGn] = {57, 114};
    s[kPog] = {60, 108};
    s[kB] = {57, 96};
    s[kPNS] = {12, 45};
    s[kANS] = {62, 45};
    s[kA] = {59, 54};
    s[kUIA] = {55, 58};
    s[kUIT] = {66, 78};
    s[kLIT] = {63, 76};
    s[kLIA] = {50, 95};
    s[kUMT] = {25, 75};
    s[kUPM] = {38, 76};
    s[kLMT] = {25, 80};
    s[kLPM] = {38, 81};
    s[kSoftN] = {76, -6};
    s[kPn] = {100, 30};
    s[kSn] = {84, 46};
    s[kLs] = {86, 62};
    s[kLi] = {84, 84};
    s[kSoftPog] = {76, 112};
    return s;
  }();
  return set;
}

LandmarkSet sample_anatomy(std::mt19937_64& rng, double jitter_mm) {
  LandmarkSet s = canonical_anatomy();

  // Skull size about sella.
  const double size = uniform(rng, 0.94, 1.06);
  for (auto& p : s) p = size * p;

  // Lower face height: everything below the palate moves down or up together.
  const double lower_face = uniform(rng, -5.0, 5.0);
  for (auto i : {kMe, kGn, kPog, kB, kLIA, kLIT, kLMT, kLPM, kLi, kSoftPog, kGo}) {
    s[i].y += lower_face * (s[i].y - s[kPNS].y) / 70.0;
  }

  // Mandible: opens/closes about the condyle and is longer or shorter.
  const double jaw_angle = uniform(rng, -4.0, 4.0);
  const double jaw_length = uniform(rng, 0.94, 1.06);
  for (auto i : {kR, kGo, kMe, kGn, kPog, kB, kLIA, kLIT, kLMT, kLPM, kLi, kSoftPog}) {
    s[i] = rotate_about(s[kCo] + jaw_length * (s[i] - s[kCo]), s[kCo], jaw_angle);
  }

  // Maxilla forward or back (class II / III tendency).
  const double maxilla = uniform(rng, -3.0, 3.0);
  for (auto i : {kANS, kA, kPNS, kUIA, kUIT, kUMT, kUPM, kSn, kLs, kPn}) s[i].x += maxilla;

  // Incisor inclination about each apex.
  s[kUIT] = rotate_about(s[kUIT], s[kUIA], uniform(rng, -8.0, 8.0));
  s[kLIT] = rotate_about(s[kLIT], s[kLIA], uniform(rng, -8.0, 8.0));

  // Soft-tissue thickness.
  const double soft = uniform(rng, -3.0, 3.0);
  for (auto i : {kSoftN, kPn, kSn, kLs, kLi, kSoftPog}) s[i].x += soft + uniform(rng, -1.5, 1.5);

  // Small independent variation; clipped so neighbouring structures never swap order.
  std::normal_distribution<double> jitter(0.0, 0.5 * jitter_mm);
  for (auto& p : s) {
    p.x += std::clamp(jitter(rng), -jitter_mm, jitter_mm);
    p.y += std::clamp(jitter(rng), -jitter_mm, jitter_mm);
  }
  return s;
}

}  // namespace exprun::synthetic_ceph

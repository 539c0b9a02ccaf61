#include "skull.hpp"

#include <cmath>

namespace exprun::synthetic_ceph {
namespace {

Vec2 unit(Vec2 v) {
  const double n = std::hypot(v.x, v.y);
  return n > 0 ? (1.0 / n) * v : Vec2{0, 1};
}
Vec2 normal(Vec2 v) { return {-v.y, v.x}; }

// A tooth from apex to tip: narrow root, wide crown, pointed incisal edge at `tip`.
std::vector<Vec2> incisor(Vec2 apex, Vec2 tip, double crown_width) {
  const Vec2 axis = tip - apex;
  const double length = std::hypot(axis.x, axis.y);
  const Vec2 u = unit(axis), n = normal(u);
  const double w = crown_width / 2;
  return {apex,
          apex + 0.35 * length * u + 0.55 * w * n,
          apex + 0.75 * length * u + w * n,
          tip - 1.5 * u + 0.35 * w * n,
          tip,
          tip - 1.5 * u - 0.35 * w * n,
          apex + 0.75 * length * u - w * n,
          apex + 0.35 * length * u - 0.55 * w * n};
}

// A molar or premolar crown whose front cusp touches the occlusal plane at `cusp`; `down` is
// +1 for an upper tooth (crown below the roots), -1 for a lower one.
std::vector<Vec2> crown(Vec2 cusp, double width, double height, double down) {
  const double h = height * down;
  return {cusp + Vec2{1.5, -0.6 * h},
          cusp,
          cusp + Vec2{-width * 0.35, -0.25 * h},
          cusp + Vec2{-width * 0.6, -0.05 * h},
          cusp + Vec2{-width, -0.3 * h},
          cusp + Vec2{-width, -h},
          cusp + Vec2{1.5, -h}};
}

std::vector<Vec2> roots(Vec2 cusp, double width, double height, double down) {
  const double h = height * down;
  return {cusp + Vec2{-0.2 * width, -h}, cusp + Vec2{-0.1 * width, -2.2 * h},
          cusp + Vec2{-0.5 * width, -h}, cusp + Vec2{-0.8 * width, -2.1 * h},
          cusp + Vec2{-0.9 * width, -h}};
}

}  // namespace

void draw_skull(Canvas& c, const LandmarkSet& s, const Densities& d) {
  const Vec2 S = s[kS], N = s[kN];

  // Soft tissue: the head's outline, with the profile through the soft-tissue landmarks.
  c.fill(smooth_curve({s[kSoftN], s[kSoftN] + Vec2{12, 14}, s[kPn], s[kPn] + Vec2{-7, 11}, s[kSn],
                       s[kLs], s[kLs] + Vec2{-5, 10}, s[kLi], s[kLi] + Vec2{-8, 14}, s[kSoftPog],
                       s[kSoftPog] + Vec2{-14, 16}, s[kSoftPog] + Vec2{-40, 36}, S + Vec2{-20, 190},
                       S + Vec2{-70, 150}, S + Vec2{-115, 40}, S + Vec2{-105, -55},
                       S + Vec2{-40, -102}, S + Vec2{45, -94}, s[kSoftN] + Vec2{-4, -40}},
                      true),
         d.soft_tissue);

  // Cranial vault ending at nasion, and the nasal bone starting there at an angle.
  c.stroke(
      smooth_curve({S + Vec2{-85, 60}, S + Vec2{-103, 5}, S + Vec2{-92, -52}, S + Vec2{-35, -90},
                    S + Vec2{22, -80}, N + Vec2{-12, -40}, N + Vec2{-3, -12}, N},
                   false),
      6.0, d.bone, false);
  c.stroke({N, N + Vec2{6, 12}, N + Vec2{12, 26}}, 2.0, d.bone + d.cortex, false);
  // Anterior cranial base from sella to the frontal bone; the posterior one down past
  // articulare, where the ramus crosses it.
  c.stroke(smooth_curve({S + Vec2{7, -3}, S + Vec2{30, -8}, N + Vec2{-12, 2}}, false), 3.0, d.bone,
           false);
  c.stroke(smooth_curve(
               {S + Vec2{-7, 2}, S + Vec2{-10, 14}, s[kAr] + Vec2{2, -3}, s[kAr] + Vec2{-14, 10}},
               false),
           4.0, d.bone, false);

  // Sella turcica: the cup below and around S, with the clinoid processes above it.
  c.stroke(ellipse_arc(S + Vec2{0, 0.5}, 6.0, 5.5, -10, 190), 1.6, d.bone + d.cortex, false);
  c.stroke({S + Vec2{-6, 1}, S + Vec2{-5, -5}, S + Vec2{-2, -6.5}}, 1.4, d.bone + d.cortex, false);
  c.stroke({S + Vec2{6, 1}, S + Vec2{7, -3}, S + Vec2{3, -4}}, 1.4, d.bone + d.cortex, false);

  // Orbit: orbitale is its lowest point.
  c.stroke(ellipse_arc(s[kOr] + Vec2{0, -12}, 10.0, 12.0, 0, 360, 48), 1.6, d.bone, true);
  // Ear rod: porion is the top of the ring.
  c.fill(ellipse_arc(s[kPo] + Vec2{0, 5}, 5.0, 5.0, 0, 360), -0.6 * d.soft_tissue);
  c.stroke(ellipse_arc(s[kPo] + Vec2{0, 5}, 5.0, 5.0, 0, 360), 1.2, d.bone + d.cortex, true);

  // Cervical vertebrae behind the ramus.
  for (int i = 0; i < 3; ++i) {
    const Vec2 v = s[kAr] + Vec2{-22, 35.0 + 22.0 * i};
    c.fill({v, v + Vec2{14, -2}, v + Vec2{15, 14}, v + Vec2{1, 16}}, d.bone * 0.8);
  }

  // Maxilla with the palate from PNS to the anterior nasal spine, A point in the concavity
  // below the spine.
  c.fill(smooth_curve({s[kPNS], s[kPNS] + Vec2{8, -4}, s[kANS] + Vec2{-10, -3}, s[kANS],
                       s[kANS] + Vec2{-5, 3}, s[kA], s[kUIA] + Vec2{7, 10}, s[kUIT] + Vec2{-5, -6},
                       s[kUIA] + Vec2{-4, 12}, s[kUPM] + Vec2{0, -4}, s[kUMT] + Vec2{-8, -6},
                       s[kPNS] + Vec2{1, 4}},
                      true, 6),
         d.bone);
  c.stroke({s[kPNS], s[kANS] + Vec2{-6, 0}, s[kANS]}, 2.0, d.cortex, false);

  // Mandible: condyle on top (condylion), posterior border through articulare and R, angle at
  // gonion, lower border to menton, the chin (gnathion, pogonion) and B point below the
  // alveolar crest; back over the premolars and molars to the coronoid and the sigmoid notch.
  const Vec2 coronoid = s[kR] + Vec2{24, -30};
  std::vector<Vec2> mandible = smooth_curve({s[kCo],
                                             s[kCo] + Vec2{-3.5, 3},
                                             s[kAr],
                                             s[kR],
                                             s[kGo] + Vec2{-3, -10},
                                             s[kGo],
                                             s[kGo] + Vec2{10, 9},
                                             s[kMe] + Vec2{-16, 0},
                                             s[kMe],
                                             s[kGn],
                                             s[kPog],
                                             s[kPog] + Vec2{-0.5, -6},
                                             s[kB],
                                             s[kB] + Vec2{3, -11},
                                             s[kLIT] + Vec2{-5, 6},
                                             s[kLPM] + Vec2{0, 5},
                                             s[kLMT] + Vec2{-12, 5},
                                             coronoid + Vec2{2, 20},
                                             coronoid,
                                             coronoid + Vec2{-8, 8},
                                             s[kCo] + Vec2{4, 7},
                                             s[kCo] + Vec2{3.5, 2}},
                                            true, 6);
  c.fill(mandible, d.bone);
  c.stroke(mandible, 1.8, d.cortex, true);

  // Teeth, brightest of all: incisors from apex to tip, premolars and first molars with their
  // cusp tips on the occlusal plane, and a second molar behind each first molar.
  c.fill(incisor(s[kUIA], s[kUIT], 7.0), d.enamel);
  c.fill(incisor(s[kLIA], s[kLIT], 6.0), d.enamel);
  struct Tooth {
    Vec2 cusp;
    double width, down;
  };
  const Tooth teeth[] = {
      {s[kUMT], 10.0, 1.0},  {s[kUMT] + Vec2{-10.5, -0.5}, 9.5, 1.0},   {s[kUPM], 7.0, 1.0},
      {s[kLMT], 11.0, -1.0}, {s[kLMT] + Vec2{-11.5, -0.5}, 10.0, -1.0}, {s[kLPM], 7.0, -1.0}};
  for (const auto& t : teeth) {
    // Cusp tips face the other jaw: the crown of an upper tooth lies above its cusp.
    c.fill(crown(t.cusp, t.width, 7.0, t.down), d.enamel);
    c.stroke(roots(t.cusp, t.width, 7.0, t.down), 1.6, d.enamel * 0.6, false);
  }
}

}  // namespace exprun::synthetic_ceph

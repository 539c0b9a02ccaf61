// Draws a lateral cephalogram's structures from one sample's landmark positions, so that each
// landmark sits where a clinician would look for it: sella in the centre of the turcica,
// orbitale at the orbit's lowest point, porion on top of the ear rod, gonion at the mandible's
// angle, the incisor tips and apices at the ends of the teeth, the soft-tissue points on the
// profile's extremes and concavities.
#pragma once

#include "anatomy.hpp"
#include "canvas.hpp"

namespace exprun::synthetic_ceph {

struct Densities {
  double soft_tissue = 0.22;
  double bone = 0.30;
  double cortex = 0.22;  // added on top of bone along outlines
  double enamel = 0.55;
};

void draw_skull(Canvas& canvas, const LandmarkSet& s, const Densities& densities);

}  // namespace exprun::synthetic_ceph

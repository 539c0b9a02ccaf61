#include "exprun/sdk/landmarks.hpp"

namespace exprun::sdk {

const std::vector<LandmarkInfo>& aariz_landmarks() {
  static const std::vector<LandmarkInfo> landmarks = {
      {"A", "A point"},
      {"ANS", "Anterior Nasal Spine"},
      {"B", "B point"},
      {"Me", "Menton"},
      {"N", "Nasion"},
      {"Or", "Orbitale"},
      {"Pog", "Pogonion"},
      {"PNS", "Posterior Nasal Spine"},
      {"Pn", "Pronasale"},
      {"R", "Ramus"},
      {"S", "Sella"},
      {"Ar", "Articulare"},
      {"Co", "Condylion"},
      {"Gn", "Gnathion"},
      {"Go", "Gonion"},
      {"Po", "Porion"},
      {"LPM", "Lower 2nd PM Cusp Tip"},
      {"LIT", "Lower Incisor Tip"},
      {"LMT", "Lower Molar Cusp Tip"},
      {"UPM", "Upper 2nd PM Cusp Tip"},
      {"UIA", "Upper Incisor Apex"},
      {"UIT", "Upper Incisor Tip"},
      {"UMT", "Upper Molar Cusp Tip"},
      {"LIA", "Lower Incisor Apex"},
      {"Li", "Lower Lip"},
      {"Ls", "Upper Lip"},
      {"N`", "Soft Tissue Nasion"},
      {"Pog`", "Soft Tissue Pogonion"},
      {"Sn", "Subnasale"},
  };
  return landmarks;
}

const std::vector<LandmarkInfo>& isbi2015_landmarks() {
  static const std::vector<LandmarkInfo> landmarks = {
      {"S", "Sella"},
      {"N", "Nasion"},
      {"Or", "Orbitale"},
      {"Po", "Porion"},
      {"A", "Subspinale"},
      {"B", "Supramentale"},
      {"Pog", "Pogonion"},
      {"Me", "Menton"},
      {"Gn", "Gnathion"},
      {"Go", "Gonion"},
      {"LIT", "Lower Incisal Incision"},
      {"UIT", "Upper Incisal Incision"},
      {"Ls", "Upper Lip"},
      {"Li", "Lower Lip"},
      {"Sn", "Subnasale"},
      {"Pog`", "Soft Tissue Pogonion"},
      {"PNS", "Posterior Nasal Spine"},
      {"ANS", "Anterior Nasal Spine"},
      {"Ar", "Articulare"},
  };
  return landmarks;
}

}  // namespace exprun::sdk

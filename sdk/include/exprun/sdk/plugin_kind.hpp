// A plugin kind as a value: the folder name that prefixes a plugin's full name ("losses" in
// "losses/mse") and its singular. Torch-free, so that configuration code can name kinds
// without the plugin interfaces. Which interface and context a kind has is declared once, in
// its PluginKindTraits specialisation (plugin_kinds.hpp for the built-in kinds).
#pragma once

#include <string_view>

namespace exprun::sdk {

class PluginKind {
 public:
  // Both strings must outlive the kind: string literals, or a loaded library's PluginInfo
  // (libraries are never unloaded).
  constexpr PluginKind(const char* folder, const char* singular)
      : folder_(folder), singular_(singular) {}

  constexpr const char* folder() const { return folder_; }
  constexpr const char* singular() const { return singular_; }

  // The built-in kinds, spelled as before kinds became open.
  static const PluginKind Dataset;
  static const PluginKind Model;
  static const PluginKind Loss;
  static const PluginKind Memory;

  // A kind is its folder name.
  friend constexpr bool operator==(const PluginKind& a, const PluginKind& b) {
    return std::string_view(a.folder_) == std::string_view(b.folder_);
  }
  friend constexpr bool operator!=(const PluginKind& a, const PluginKind& b) { return !(a == b); }
  // For sorted lists of kinds. (No <=>: the header is also compiled as C++17 by clang, for
  // the fuzz targets.)
  friend constexpr bool operator<(const PluginKind& a, const PluginKind& b) {
    return std::string_view(a.folder_) < std::string_view(b.folder_);
  }

 private:
  const char* folder_;
  const char* singular_;
};

inline constexpr PluginKind PluginKind::Dataset{"datasets", "dataset"};
inline constexpr PluginKind PluginKind::Model{"models", "model"};
inline constexpr PluginKind PluginKind::Loss{"losses", "loss"};
inline constexpr PluginKind PluginKind::Memory{"memory", "memory"};

// The kinds exprun itself uses, in the order `exprun plugins` lists them.
inline constexpr PluginKind kBuiltInKinds[] = {PluginKind::Dataset, PluginKind::Model,
                                               PluginKind::Loss, PluginKind::Memory};

// "datasets", "models", "losses", "memory": the prefix of a plugin's full name.
constexpr const char* kind_folder(const PluginKind& kind) { return kind.folder(); }

}  // namespace exprun::sdk

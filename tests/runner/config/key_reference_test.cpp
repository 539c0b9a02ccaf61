// The runner's key declarations (config/runner_keys.hpp) against what depends on them: the key
// reference in docs/experiment-file.md, the structs' own defaults, and the resolved
// configuration that report.json and checkpoints record.
#include <gtest/gtest.h>

#include <exprun/sdk/params.hpp>

#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "config/experiment_loader.hpp"
#include "config/runner_keys.hpp"

namespace exprun {
namespace {

std::string read_doc() {
  std::ifstream in(std::string(EXPRUN_SOURCE_DIR) + "/docs/experiment-file.md");
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string trim(const std::string& s) {
  const auto first = s.find_first_not_of(' ');
  if (first == std::string::npos) return "";
  return s.substr(first, s.find_last_not_of(' ') - first + 1);
}

std::vector<std::string> cells(const std::string& row) {
  std::vector<std::string> out;
  std::string cell;
  for (std::size_t i = 1; i < row.size(); ++i) {
    if (row[i] == '|' && row[i - 1] != '\\') {
      out.push_back(trim(cell));
      cell.clear();
    } else {
      cell += row[i];
    }
  }
  return out;
}

// The documented table after `<!-- keys: NAME -->`: key -> default column. Rows whose key is
// in italics (*`<strategy>`*) stand for a family of plugin tables, not for one key.
std::map<std::string, std::string> documented_keys(const std::string& doc,
                                                   const std::string& name) {
  const std::string marker = "<!-- keys: " + name + " -->";
  const auto at = doc.find(marker);
  if (at == std::string::npos) {
    ADD_FAILURE() << "docs/experiment-file.md has no " << marker << " before the table of " << name
                  << "'s keys";
    return {};
  }
  std::istringstream lines(doc.substr(at + marker.size()));
  std::string line;
  std::getline(lines, line);  // rest of the marker line
  std::map<std::string, std::string> out;
  int row = 0;
  while (std::getline(lines, line) && !line.empty() && line[0] == '|') {
    if (row++ < 2) continue;  // header and separator
    const auto c = cells(line);
    if (c.size() < 3 || c[0].rfind('*', 0) == 0) continue;
    std::string key = c[0];
    if (key.size() > 2 && key.front() == '`' && key.back() == '`')
      key = key.substr(1, key.size() - 2);
    out[key] = c[2];
  }
  if (out.empty()) ADD_FAILURE() << "no table rows after " << marker;
  return out;
}

std::string marker_name(const TableInfo& table) {
  return table.path.empty() ? "stage" : table.path;
}

TEST(KeyReference, TheDocsListEveryDeclaredKeyWithItsDefault) {
  const std::string doc = read_doc();
  for (const auto& table : runner_key_reference()) {
    SCOPED_TRACE("table " + marker_name(table));
    const auto documented = documented_keys(doc, marker_name(table));
    for (const auto& key : table.keys) {
      const auto found = documented.find(key.spec.name);
      if (found == documented.end()) {
        ADD_FAILURE() << "declared key '" << key.spec.name << "' is not documented";
        continue;
      }
      EXPECT_EQ(found->second, key.documented_default())
          << "default of '" << key.spec.name << "' in the docs";
    }
    for (const auto& [name, default_text] : documented) {
      EXPECT_NE(table.find(name), nullptr) << "documented key '" << name << "' is not declared";
    }
  }
}

TEST(KeyReference, EveryKeyTableInTheDocsIsDeclared) {
  const std::string doc = read_doc();
  std::set<std::string> declared;
  for (const auto& table : runner_key_reference()) declared.insert(marker_name(table));
  const std::string marker = "<!-- keys: ";
  for (auto at = doc.find(marker); at != std::string::npos; at = doc.find(marker, at + 1)) {
    const auto begin = at + marker.size();
    const std::string name = doc.substr(begin, doc.find(" -->", begin) - begin);
    EXPECT_TRUE(declared.count(name)) << "the docs document keys of an undeclared table " << name;
  }
}

TEST(KeyReference, EveryKeyHasADoc) {
  for (const auto& table : runner_key_reference())
    for (const auto& key : table.keys)
      EXPECT_FALSE(key.spec.doc.empty()) << marker_name(table) << "." << key.spec.name;
}

// A default-constructed struct (as the trainer's tests and tools build them) holds the declared
// defaults: the declaration and the struct cannot drift apart unnoticed.
template <typename Config>
void expect_struct_defaults(const KeyTable<Config>& table) {
  const nlohmann::json written = table.to_json(Config{});
  for (const auto& key : table.keys()) {
    const KeyInfo& info = key.info;
    // Defaults that depend on another key (adamw's weight_decay) are documented in words.
    if (!info.spec.default_value || !info.default_text.empty()) continue;
    if (!written.contains(info.spec.name)) continue;  // written only in some configurations
    // A table written in full (data.augment) is checked key by key, as its own table.
    const std::string inner =
        table.path().empty() ? info.spec.name : table.path() + "." + info.spec.name;
    if (find_stage_table(inner)) continue;
    EXPECT_EQ(written[info.spec.name], to_json(*info.spec.default_value))
        << table.path() << "." << info.spec.name;
  }
}

TEST(KeyReference, StructDefaultsAreTheDeclaredDefaults) {
  expect_struct_defaults(data_keys());
  expect_struct_defaults(augment_keys());
  expect_struct_defaults(focus_keys());
  expect_struct_defaults(memory_keys());
  expect_struct_defaults(optimizer_keys());
  expect_struct_defaults(schedule_keys());
  expect_struct_defaults(eval_keys());
  expect_struct_defaults(checkpoint_keys());
  expect_struct_defaults(experiment_keys());
  OptimizerConfig sgd;
  sgd.name = "sgd";
  const nlohmann::json written = optimizer_keys().to_json(sgd);
  EXPECT_EQ(written["momentum"], 0.9);
  EXPECT_EQ(written["nesterov"], false);
  EXPECT_FALSE(written.contains("fused"));  // adam's and adamw's
}

using sdk::ParamSchema;
using sdk::PluginKind;

class FakePlugins : public SchemaSource {
 public:
  FakePlugins() {
    add(PluginKind::Dataset, "synthetic",
        ParamSchema()
            .add_int("train_count", 32, "n")
            .min(1)
            .add_float("noise", 0.0, "noise")
            .min(0)
            .max(1));
    add(PluginKind::Model, "hrnet", ParamSchema().add_int("width", 32, "w").min(1));
    add(PluginKind::Loss, "adaptive_wing", ParamSchema().add_float("alpha", 2.1, "a").min(0));
    add(PluginKind::Loss, "mse", ParamSchema());
    add(PluginKind::Memory, "mixed_precision",
        ParamSchema().add_string("dtype", "auto", "d").choices({"auto", "fp16", "bf16"}));
    add(PluginKind::Memory, "gradient_accumulation", ParamSchema());
  }
  ParamSchema schema(PluginKind kind, const std::string& name) const override {
    const auto it = schemas_.find({kind, name});
    if (it == schemas_.end()) throw std::runtime_error("no plugin " + name);
    return it->second;
  }

 private:
  void add(PluginKind kind, const std::string& name, ParamSchema schema) {
    schemas_[{kind, name}] = std::move(schema);
  }
  std::map<std::pair<PluginKind, std::string>, ParamSchema> schemas_;
};

// The resolved configuration as report.json and checkpoints have always recorded it (written
// by the hand-made to_json before the keys were declared): byte for byte the same, plus the
// keys added since at their defaults (cudnn_benchmark, channels_last), which a resume of an
// older run accepts (config_compat.hpp), and data.workers' default, "auto" since it replaced 2
// (a key resume ignores: it changes how a stage runs, not what it trains).
TEST(KeyReference, TheResolvedConfigurationIsUnchanged) {
  const std::vector<std::pair<std::string, std::string>> cases =
      {
          {R"([experiment]
name = "plain"
[[stage]]
name = "train"
epochs = 3
data = { plugin = "synthetic" }
model = { plugin = "hrnet" }
loss = { plugin = "mse" }
optimizer = { lr = 0.001 }
)",
           R"({"experiment":{"description":"","name":"plain","output":"results","seed":0,"threads":0},"overrides":[],"source_file":"q.toml","stages":[{"channels_last":false,"checkpoint":{"every":0,"keep_last":0,"mode":"min","monitor":"val_mre_mm"},"cudnn_benchmark":false,"data":{"augment":{"brightness":0.1,"clahe":0.0,"clahe_clip":2.0,"clahe_tiles":8,"contrast":0.1,"enabled":true,"gamma":0.0,"rotation":10.0,"scale":0.1,"shift":0.05},"cache":true,"channels":1,"image_size":[256,256],"noise":0.0,"plugin":"synthetic","sigma":2.0,"train_count":32,"train_split":"train","val_split":"valid","worker_priority":"idle","workers":"auto"},"device":"auto","epochs":3,"eval":{"decode":"argmax"},"loss":{"plugin":"mse"},"memory":{"effective_batch":8,"micro_batch":8,"strategies":[]},"model":{"plugin":"hrnet","width":32},"name":"train","optimizer":{"betas":[0.9,0.999],"fused":true,"lr":0.001,"name":"adam","weight_decay":0.0},"schedule":{"decay":"cosine","min_lr":0.0,"warmup_epochs":0.0}}]})"},
          {R"([experiment]
name = "sgd"
seed = 7
threads = 2
output = "out"
description = "sgd run"
[[stage]]
name = "train"
epochs = 4
device = "cpu"
data = { plugin = "synthetic", image_size = [64, 80], sigma = 1.5, workers = 0, channels = 3, train_split = "a", val_split = "b", augment = false, noise = 0.5 }
model = { plugin = "hrnet", width = 4 }
loss = { plugin = "adaptive_wing", alpha = 2.5 }
memory = { effective_batch = 4, micro_batch = 2, strategies = ["gradient_accumulation"] }
optimizer = { name = "sgd", lr = 0.1, momentum = 0.8, nesterov = true, weight_decay = 0.001 }
schedule = { warmup_epochs = 1.5, decay = "constant", min_lr = 0.5 }
)",
           R"({"experiment":{"description":"sgd run","name":"sgd","output":"out","seed":7,"threads":2},"overrides":[],"source_file":"q.toml","stages":[{"channels_last":false,"checkpoint":{"every":0,"keep_last":0,"mode":"min","monitor":"val_mre_mm"},"cudnn_benchmark":false,"data":{"augment":{"brightness":0.1,"clahe":0.0,"clahe_clip":2.0,"clahe_tiles":8,"contrast":0.1,"enabled":false,"gamma":0.0,"rotation":10.0,"scale":0.1,"shift":0.05},"cache":true,"channels":3,"image_size":[64,80],"noise":0.5,"plugin":"synthetic","sigma":1.5,"train_count":32,"train_split":"a","val_split":"b","worker_priority":"idle","workers":0},"device":"cpu","epochs":4,"eval":{"decode":"argmax"},"loss":{"alpha":2.5,"plugin":"adaptive_wing"},"memory":{"effective_batch":4,"gradient_accumulation":{},"micro_batch":2,"strategies":["gradient_accumulation"]},"model":{"plugin":"hrnet","width":4},"name":"train","optimizer":{"lr":0.1,"momentum":0.8,"name":"sgd","nesterov":true,"weight_decay":0.001},"schedule":{"decay":"constant","min_lr":0.5,"warmup_epochs":1.5}}]})"},
          {R"([experiment]
name = "chain"
[defaults]
data = { plugin = "synthetic", augment = { rotation = 5, gamma = 0.2, clahe = 0.5, clahe_clip = 3, clahe_tiles = 4, enabled = true } }
model = { plugin = "hrnet" }
loss = { plugin = "adaptive_wing", weights = { Go = 3.0, Ar = 2 } }
optimizer = { name = "adamw", lr = 0.001, betas = [0.8, 0.99] }
[[stage]]
name = "pre"
epochs = 2
memory = { effective_batch = 8, micro_batch = "auto", budget = "6GiB", margin = 0.2, strategies = ["mixed_precision", "gradient_accumulation"], mixed_precision = { dtype = "bf16" } }
checkpoint = { monitor = "val_sdr_2mm", every = 2, keep_last = 1 }
eval = { decode = "dark" }
[[stage]]
name = "fine"
epochs = 2
init = "pre:best"
loss.focus = { worst = 3 }
memory = { micro_batch = "auto" }
checkpoint = { monitor = "train_loss", mode = "max" }
)",
           R"({"experiment":{"description":"","name":"chain","output":"results","seed":0,"threads":0},"overrides":[],"source_file":"q.toml","stages":[{"channels_last":false,"checkpoint":{"every":2,"keep_last":1,"mode":"max","monitor":"val_sdr_2mm"},"cudnn_benchmark":false,"data":{"augment":{"brightness":0.1,"clahe":0.5,"clahe_clip":3.0,"clahe_tiles":4,"contrast":0.1,"enabled":true,"gamma":0.2,"rotation":5.0,"scale":0.1,"shift":0.05},"cache":true,"channels":1,"image_size":[256,256],"noise":0.0,"plugin":"synthetic","sigma":2.0,"train_count":32,"train_split":"train","val_split":"valid","worker_priority":"idle","workers":"auto"},"device":"auto","epochs":2,"eval":{"decode":"dark"},"loss":{"alpha":2.1,"plugin":"adaptive_wing","weights":{"Ar":2.0,"Go":3.0}},"memory":{"budget":6442450944,"effective_batch":8,"gradient_accumulation":{},"margin":0.2,"micro_batch":"auto","mixed_precision":{"dtype":"bf16"},"speed_tolerance":0.05,"strategies":["mixed_precision","gradient_accumulation"]},"model":{"plugin":"hrnet","width":32},"name":"pre","optimizer":{"betas":[0.8,0.99],"fused":true,"lr":0.001,"name":"adamw","weight_decay":0.01},"schedule":{"decay":"cosine","min_lr":0.0,"warmup_epochs":0.0}},{"channels_last":false,"checkpoint":{"every":0,"keep_last":0,"mode":"max","monitor":"train_loss"},"cudnn_benchmark":false,"data":{"augment":{"brightness":0.1,"clahe":0.5,"clahe_clip":3.0,"clahe_tiles":4,"contrast":0.1,"enabled":true,"gamma":0.2,"rotation":5.0,"scale":0.1,"shift":0.05},"cache":true,"channels":1,"image_size":[256,256],"noise":0.0,"plugin":"synthetic","sigma":2.0,"train_count":32,"train_split":"train","val_split":"valid","worker_priority":"idle","workers":"auto"},"device":"auto","epochs":2,"eval":{"decode":"argmax"},"init":"pre:best","loss":{"alpha":2.1,"focus":{"weight":3.0,"worst":3},"plugin":"adaptive_wing","weights":{"Ar":2.0,"Go":3.0}},"memory":{"effective_batch":8,"margin":0.1,"micro_batch":"auto","speed_tolerance":0.05,"strategies":[]},"model":{"plugin":"hrnet","width":32},"name":"fine","optimizer":{"betas":[0.8,0.99],"fused":true,"lr":0.001,"name":"adamw","weight_decay":0.01},"schedule":{"decay":"cosine","min_lr":0.0,"warmup_epochs":0.0}}]})"},
      };
  const FakePlugins plugins;
  for (const auto& [text, expected] : cases) {
    EXPECT_EQ(to_json(parse_experiment(text, "q.toml", {}, plugins)).dump(), expected);
  }
}

}  // namespace
}  // namespace exprun

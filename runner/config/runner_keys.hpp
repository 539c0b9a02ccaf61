// The runner's own keys, each declared once (config/key_declaration.hpp): [experiment], the
// stage's keys and its tables data, data.augment, loss, loss.focus, memory, optimizer,
// schedule, eval and checkpoint. Plugin parameters are declared by the plugins themselves.
#pragma once

#include <string>
#include <vector>

#include "config/experiment.hpp"
#include "config/key_declaration.hpp"

namespace exprun {

const KeyTable<Experiment>& experiment_keys();
const KeyTable<StageConfig>& stage_keys();
const KeyTable<DataConfig>& data_keys();
const KeyTable<AugmentConfig>& augment_keys();
const KeyTable<StageConfig>& loss_keys();
const KeyTable<FocusConfig>& focus_keys();
const KeyTable<MemoryConfig>& memory_keys();
const KeyTable<OptimizerConfig>& optimizer_keys();
const KeyTable<ScheduleConfig>& schedule_keys();
const KeyTable<EvalConfig>& eval_keys();
const KeyTable<CheckpointConfig>& checkpoint_keys();

// A declared table without its bindings.
struct TableInfo {
  // Inside a stage: "" (the stage itself), "data", "data.augment", ...; "experiment" for the
  // [experiment] table, which is not part of a stage.
  std::string path;
  std::vector<KeyInfo> keys;
  const KeyInfo* find(const std::string& name) const;
};

// Every runner table: [experiment], then the stage's tables, outermost first.
const std::vector<TableInfo>& runner_key_reference();
// The stage table declared at `path` ("data.augment"), or null.
const TableInfo* find_stage_table(const std::string& path);

// Reads one [[stage]] (its layers merged) through the declarations; throws ConfigError.
StageConfig read_stage_keys(const LayeredTable& table, const ReadContext& context);
// Reads [experiment] into `out` through the declarations; throws ConfigError.
void read_experiment_keys(TableReader& reader, Experiment& out);

}  // namespace exprun

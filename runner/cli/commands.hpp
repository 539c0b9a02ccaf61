// The exprun subcommands; each takes the arguments after its own name.
#pragma once

#include <string>
#include <vector>

namespace exprun::cli {

int run_command(const std::vector<std::string>& args);
int plan_command(const std::vector<std::string>& args);
int plugins_command(const std::vector<std::string>& args);
int describe_command(const std::vector<std::string>& args);
int tune_command(const std::vector<std::string>& args);
int bench_command(const std::vector<std::string>& args);
int synth_command(const std::vector<std::string>& args);
int data_command(const std::vector<std::string>& args);
int eval_command(const std::vector<std::string>& args);
int predict_command(const std::vector<std::string>& args);
int compare_command(const std::vector<std::string>& args);
// exprun slurm submit|status: a sweep as a Slurm job array (docs/distributed.md).
int slurm_command(const std::vector<std::string>& args);
// Not a plugin-loading command: it never fails for a broken library.
int version_command(const std::vector<std::string>& args);

}  // namespace exprun::cli

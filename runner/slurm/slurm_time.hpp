// Slurm's time limits (`sbatch --time`), read as sbatch reads them, so that `exprun slurm
// submit` can refuse a limit too short for the early-warning signal before anything is queued.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace exprun::slurm {

// The forms sbatch accepts, for error messages.
inline constexpr const char* kSlurmTimeForms =
    "MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS (or UNLIMITED)";

// The time limit `text` asks for, in seconds as written; std::nullopt for no limit (0,
// UNLIMITED, INFINITE, as sbatch takes them). Fields are decimal digits without sign and, as in
// Slurm, without an upper bound of their own ("90" is 90 minutes, "1:90" 2 m 30 s). Throws
// std::invalid_argument naming the value and the accepted forms.
std::optional<std::int64_t> parse_slurm_time(const std::string& text);

// The limit Slurm applies: it counts whole minutes, rounding seconds up ("0:30" is 1 minute).
std::int64_t slurm_limit_seconds(std::int64_t requested_seconds);

// Seconds as the shortest sbatch time that means them, rounded up to whole minutes:
// 240 -> "4", 5400 -> "1:30:00", 90000 -> "1-01:00:00".
std::string format_slurm_time(std::int64_t seconds);

}  // namespace exprun::slurm

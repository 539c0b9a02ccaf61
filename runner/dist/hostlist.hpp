// Slurm's hostlist syntax, as in SLURM_STEP_NODELIST: "cn[01-04,07]", "a1,b[2-3]",
// "node[1-2]-ib", "r[1-2]n[01-02]". The first host of a step's list is its rendezvous master.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace exprun::dist {

// The most hosts one list may expand to: far above any cluster, low enough that a typo such as
// "cn[0-99999999]" fails with a message instead of exhausting memory.
inline constexpr std::size_t kMaxHostlistHosts = 1'000'000;

// Every host of `hostlist`, in Slurm's order: items left to right, and within an item with
// several bracket groups the leftmost group varying slowest ("r[1-2]n[1-2]" is r1n1, r1n2,
// r2n1, r2n2). A range keeps the zero padding of its lower bound ("[08-10]" is 08, 09, 10).
// Throws std::invalid_argument naming the text and what was expected for an empty list or
// item, an unbalanced or nested bracket, a bound that is not a number, a descending range, or a
// list longer than kMaxHostlistHosts.
std::vector<std::string> expand_hostlist(std::string_view hostlist);

}  // namespace exprun::dist

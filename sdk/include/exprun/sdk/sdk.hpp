// Everything a plugin author includes.
#pragma once

#include "exprun/sdk/abi.hpp"
#include "exprun/sdk/checkpointing.hpp"
#include "exprun/sdk/dataset.hpp"
#include "exprun/sdk/landmarks.hpp"
#include "exprun/sdk/loss.hpp"
#include "exprun/sdk/memory_strategy.hpp"
#include "exprun/sdk/model.hpp"
#include "exprun/sdk/params.hpp"
#include "exprun/sdk/plugin.hpp"
#include "exprun/sdk/state_dict.hpp"
// Not included here: exprun/sdk/testing.hpp, for a plugin's unit tests only.

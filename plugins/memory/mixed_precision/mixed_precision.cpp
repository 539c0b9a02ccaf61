// placeholder until the plugin lands
#include <exprun/sdk/sdk.hpp>

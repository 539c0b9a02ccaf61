// Text from the environment as messages show it.
#pragma once

#include <string>
#include <string_view>

namespace exprun::dist {

// `text` in double quotes, with '"' and '\' escaped and control characters written as \xNN:
// an error that quotes a variable's value stays the one line the CLI promises.
std::string quoted_value(std::string_view text);

}  // namespace exprun::dist

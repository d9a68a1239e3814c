// OLPC canonical JSON as TUF signs it (securesystemslib's encode_canonical, tuf-js's
// canonicalize): keys sorted by their bytes, no white space, strings with only '"' and '\'
// escaped, integers only. nlohmann::json stays inside lib/tuf.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "common/error.hpp"

namespace osu::tuf {

// Floats have no canonical form, and nesting deeper than 100 levels is refused: a
// Verification error naming `what`.
Expected<std::string> Canonical(const nlohmann::json& value, const std::string& what);

}  // namespace osu::tuf

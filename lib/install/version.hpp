// Version ordering for update offers and the downgrade floor.
#pragma once

#include <string>

namespace osu {

// Compares like rpm/dpkg do for the common cases: runs of digits compare numerically, runs of
// letters lexically, '~' sorts before anything (1.0~rc1 < 1.0). Returns <0, 0, >0.
int CompareVersions(const std::string& a, const std::string& b);

}  // namespace osu

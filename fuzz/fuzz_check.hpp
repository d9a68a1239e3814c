// Shared by the fuzz targets: a failed property is a crash that libFuzzer saves and reports.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string>

namespace osu::fuzz {

[[noreturn]] inline void Fail(const std::string& what) {
  std::fprintf(stderr, "fuzz property violated: %s\n", what.c_str());
  std::abort();
}

inline void Check(bool ok, const std::string& what) {
  if (!ok) Fail(what);
}

}  // namespace osu::fuzz

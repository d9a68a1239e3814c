#include "install/version.hpp"

#include <cctype>

namespace osu {

int CompareVersions(const std::string& a, const std::string& b) {
  size_t i = 0, j = 0;
  auto is_digit = [](char c) { return std::isdigit(static_cast<unsigned char>(c)) != 0; };
  auto is_alpha = [](char c) { return std::isalpha(static_cast<unsigned char>(c)) != 0; };
  while (i < a.size() || j < b.size()) {
    // '~' first: it makes a version older than the same version without it.
    bool ta = i < a.size() && a[i] == '~', tb = j < b.size() && b[j] == '~';
    if (ta || tb) {
      if (!ta) return 1;
      if (!tb) return -1;
      ++i, ++j;
      continue;
    }
    // Skip separators.
    while (i < a.size() && !is_digit(a[i]) && !is_alpha(a[i]) && a[i] != '~') ++i;
    while (j < b.size() && !is_digit(b[j]) && !is_alpha(b[j]) && b[j] != '~') ++j;
    if (i >= a.size() || j >= b.size()) break;
    if (a[i] == '~' || b[j] == '~') continue;
    bool numeric = is_digit(a[i]);
    if (numeric != is_digit(b[j])) return numeric ? 1 : -1;  // numbers are newer than letters
    size_t si = i, sj = j;
    if (numeric) {
      while (i < a.size() && is_digit(a[i])) ++i;
      while (j < b.size() && is_digit(b[j])) ++j;
      std::string x = a.substr(si, i - si), y = b.substr(sj, j - sj);
      x.erase(0, std::min(x.find_first_not_of('0'), x.size()));
      y.erase(0, std::min(y.find_first_not_of('0'), y.size()));
      if (x.size() != y.size()) return x.size() < y.size() ? -1 : 1;
      if (int c = x.compare(y); c != 0) return c < 0 ? -1 : 1;
    } else {
      while (i < a.size() && is_alpha(a[i])) ++i;
      while (j < b.size() && is_alpha(b[j])) ++j;
      if (int c = a.compare(si, i - si, b, sj, j - sj); c != 0) return c < 0 ? -1 : 1;
    }
  }
  bool more_a = i < a.size(), more_b = j < b.size();
  if (more_a == more_b) return 0;
  return more_a ? 1 : -1;
}

}  // namespace osu

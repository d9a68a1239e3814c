#include "slots/mountinfo.hpp"

#include <sys/sysmacros.h>

#include <charconv>
#include <sstream>

namespace osu {
namespace {

bool IsOctal(char c) { return c >= '0' && c <= '7'; }

bool ParseUnsigned(const std::string& s, unsigned& out) {
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && end == s.data() + s.size();
}

std::vector<std::string> SplitSpaces(const std::string& line) {
  std::vector<std::string> fields;
  std::istringstream in(line);
  std::string f;
  while (in >> f) fields.push_back(f);
  return fields;
}

}  // namespace

std::string DecodeMountInfoPath(const std::string& field) {
  std::string out;
  out.reserve(field.size());
  for (size_t i = 0; i < field.size(); ++i) {
    if (field[i] == '\\' && i + 3 < field.size() && IsOctal(field[i + 1]) &&
        IsOctal(field[i + 2]) && IsOctal(field[i + 3])) {
      int v = (field[i + 1] - '0') * 64 + (field[i + 2] - '0') * 8 + (field[i + 3] - '0');
      out.push_back(static_cast<char>(v));
      i += 3;
    } else {
      out.push_back(field[i]);
    }
  }
  return out;
}

std::vector<MountEntry> ParseMountInfo(const std::string& text) {
  std::vector<MountEntry> entries;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    // 36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
    auto f = SplitSpaces(line);
    if (f.size() < 7) continue;
    auto colon = f[2].find(':');
    unsigned maj = 0, min = 0;
    if (colon == std::string::npos || !ParseUnsigned(f[2].substr(0, colon), maj) ||
        !ParseUnsigned(f[2].substr(colon + 1), min)) {
      continue;
    }
    MountEntry e;
    e.devno = makedev(maj, min);
    e.root = DecodeMountInfoPath(f[3]);
    e.mount_point = DecodeMountInfoPath(f[4]);
    // Optional fields (field 7 on) end at the lone "-".
    size_t sep = 6;
    while (sep < f.size() && f[sep] != "-") ++sep;
    if (sep + 1 < f.size()) e.fs_type = f[sep + 1];
    if (sep + 2 < f.size()) e.source = DecodeMountInfoPath(f[sep + 2]);
    entries.push_back(std::move(e));
  }
  return entries;
}

}  // namespace osu

#include "common/text.hpp"

#include <cstdio>

namespace osu {

std::optional<CodePoint> DecodeUtf8(std::string_view s, size_t pos) {
  const auto b0 = static_cast<unsigned char>(s[pos]);
  if (b0 < 0x80) return CodePoint{b0, 1};
  size_t length = 0;
  uint32_t value = 0, min = 0;
  if (b0 >= 0xc2 && b0 <= 0xdf) {
    length = 2, value = b0 & 0x1fu, min = 0x80;
  } else if (b0 >= 0xe0 && b0 <= 0xef) {
    length = 3, value = b0 & 0x0fu, min = 0x800;
  } else if (b0 >= 0xf0 && b0 <= 0xf4) {
    length = 4, value = b0 & 0x07u, min = 0x10000;
  } else {
    return std::nullopt;
  }
  if (pos + length > s.size()) return std::nullopt;
  for (size_t i = 1; i < length; ++i) {
    const auto b = static_cast<unsigned char>(s[pos + i]);
    if ((b & 0xc0u) != 0x80) return std::nullopt;
    value = (value << 6) | (b & 0x3fu);
  }
  if (value < min || value > 0x10ffff || (value >= 0xd800 && value <= 0xdfff)) return std::nullopt;
  return CodePoint{value, length};
}

bool IsUnsafeCodePoint(uint32_t c) {
  return c < 0x20 || (c >= 0x7f && c <= 0x9f) || c == 0x2028 || c == 0x2029 ||
         (c >= 0x202a && c <= 0x202e) || (c >= 0x2066 && c <= 0x2069);
}

std::string Printable(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  char buf[12];
  for (size_t pos = 0; pos < s.size();) {
    auto cp = DecodeUtf8(s, pos);
    if (!cp) {
      std::snprintf(buf, sizeof buf, "\\x%02x", static_cast<unsigned char>(s[pos]));
      out += buf;
      ++pos;
      continue;
    }
    if (!IsUnsafeCodePoint(cp->value)) {
      out.append(s.substr(pos, cp->length));
    } else if (cp->value == '\n') {
      out += "\\n";
    } else if (cp->value == '\r') {
      out += "\\r";
    } else if (cp->value == '\t') {
      out += "\\t";
    } else if (cp->value < 0x80) {
      std::snprintf(buf, sizeof buf, "\\x%02x", cp->value);
      out += buf;
    } else {
      std::snprintf(buf, sizeof buf, "\\u%04x", cp->value);
      out += buf;
    }
    pos += cp->length;
  }
  return out;
}

std::string InQuotes(std::string_view s) { return "'" + Printable(s) + "'"; }

std::string HumanBytes(uint64_t n) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(n);
  int u = 0;
  while (v >= 1024 && u < 4) v /= 1024, ++u;
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", v, units[u]);
  return buf;
}

}  // namespace osu

namespace osu {

std::string HexOf(std::string_view bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char ch : bytes) {
    const auto c = static_cast<unsigned char>(ch);
    out.push_back(kHex[c >> 4]);
    out.push_back(kHex[c & 0xf]);
  }
  return out;
}

std::optional<std::string> BytesOfHex(std::string_view hex) {
  if (hex.size() % 2 != 0) return std::nullopt;
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  for (size_t i = 0; i < hex.size(); i += 2) {
    int hi = nibble(hex[i]), lo = nibble(hex[i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out.push_back(static_cast<char>(hi * 16 + lo));
  }
  return out;
}

}  // namespace osu

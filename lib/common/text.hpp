// Text from outside (bundle member names, manifest fields, server replies, files on the boot
// partition) made safe to print: one line, no terminal escapes, valid UTF-8.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace osu {

// The bytes of a string, for byte-span APIs.
inline std::span<const uint8_t> AsBytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

// `s` with everything that could break a line or a terminal written as an escape: C0 controls
// and DEL as \n, \r, \t or \xHH; C1 controls and the line, paragraph and bidi-override
// characters as \uHHHH; bytes that are not UTF-8 as \xHH. A backslash stays as it is, so
// Printable(Printable(s)) == Printable(s): text escaped where it entered a message is not
// escaped again where the message is printed.
std::string Printable(std::string_view s);

// Printable(s) in single quotes, the form messages name things in: 'vmlinuz'.
std::string InQuotes(std::string_view s);

// The code point of the UTF-8 sequence at s[pos] and its length in bytes; nullopt for a byte
// that starts no valid sequence (overlong, surrogate, above U+10FFFF, cut short).
struct CodePoint {
  uint32_t value;
  size_t length;
};
std::optional<CodePoint> DecodeUtf8(std::string_view s, size_t pos);

// Characters a terminal or a JSON reader may act on rather than show: C0 and C1 controls,
// DEL, U+2028/U+2029 and the bidi embeddings, overrides and isolates.
bool IsUnsafeCodePoint(uint32_t c);

// "1.5 MiB": binary units, one decimal.
std::string HumanBytes(uint64_t n);

}  // namespace osu

namespace osu {
// Lower-case hex of bytes, and back (nullopt: odd length or a non-hex digit).
std::string HexOf(std::string_view bytes);
std::optional<std::string> BytesOfHex(std::string_view hex);
}  // namespace osu

// KernelCmdline: the kernel's own rules (lib/cmdline.c next_arg), so that what we read is
// what the kernel and the initrd saw.
#include <cctype>

#include "slots/slots.hpp"

namespace osu {
namespace {

// The kernel's isspace (lib/ctype.c) also counts 0xA0 (Latin-1 no-break space) as a space.
bool IsSpace(char c) { return std::isspace(static_cast<unsigned char>(c)) != 0 || c == '\xa0'; }

}  // namespace

KernelCmdline::KernelCmdline(const std::string& text) {
  size_t pos = 0;
  const size_t n = text.size();
  for (;;) {
    while (pos < n && IsSpace(text[pos])) ++pos;
    if (pos >= n) break;
    bool quoted = false, in_quote = false;
    if (text[pos] == '"') {
      quoted = in_quote = true;
      ++pos;
    }
    const size_t start = pos;
    size_t end = pos, equals = std::string::npos;
    for (; end < n; ++end) {
      if (IsSpace(text[end]) && !in_quote) break;
      if (equals == std::string::npos && text[end] == '=') equals = end;
      if (text[end] == '"') in_quote = !in_quote;
    }
    std::string arg = text.substr(start, end - start);
    pos = end;
    // A quote that opened the argument or its value closes at its end ("a b"=c, k="a b").
    bool strip_last = quoted;
    std::string key = arg;
    std::optional<std::string> value;
    if (equals != std::string::npos) {
      key = arg.substr(0, equals - start);
      std::string v = arg.substr(equals - start + 1);
      if (!v.empty() && v.front() == '"') {
        v.erase(0, 1);
        strip_last = true;
      }
      if (strip_last && !v.empty() && v.back() == '"') v.pop_back();
      value = std::move(v);
    } else if (strip_last && !key.empty() && key.back() == '"') {
      key.pop_back();
    }
    // "--" hands the rest to init: those are not kernel parameters.
    if (key == "--" && !value) {
      while (pos < n && IsSpace(text[pos])) ++pos;
      size_t last = n;
      while (last > pos && IsSpace(text[last - 1])) --last;  // /proc/cmdline ends in '\n'
      init_args_ = text.substr(pos, last - pos);
      break;
    }
    args_.emplace_back(std::move(key), std::move(value));
  }
}

std::optional<std::string> KernelCmdline::Get(const std::string& key) const {
  std::optional<std::string> found;
  for (const auto& [k, v] : args_) {
    if (k == key) found = v ? *v : std::string();
  }
  return found;
}

}  // namespace osu

#include "tuf/canonical.hpp"

namespace osu::tuf {
namespace {

// Far deeper than metadata nests (5 levels). The writer recurses, and a root is written before
// its signature is checked: 512 KiB of '[' from a server would overflow the stack.
constexpr int kMaxDepth = 100;

void Quote(const std::string& s, std::string& out) {
  out.push_back('"');
  for (char c : s) {
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  out.push_back('"');
}

bool Write(const nlohmann::json& v, std::string& out, int depth, bool& too_deep) {
  if (depth > kMaxDepth) {
    too_deep = true;
    return false;
  }
  switch (v.type()) {
    case nlohmann::json::value_t::null: out += "null"; return true;
    case nlohmann::json::value_t::boolean: out += v.get<bool>() ? "true" : "false"; return true;
    case nlohmann::json::value_t::number_integer: out += std::to_string(v.get<int64_t>()); return true;
    case nlohmann::json::value_t::number_unsigned: out += std::to_string(v.get<uint64_t>()); return true;
    case nlohmann::json::value_t::string: Quote(v.get_ref<const std::string&>(), out); return true;
    case nlohmann::json::value_t::array: {
      out.push_back('[');
      bool first = true;
      for (const auto& e : v) {
        if (!first) out.push_back(',');
        first = false;
        if (!Write(e, out, depth + 1, too_deep)) return false;
      }
      out.push_back(']');
      return true;
    }
    case nlohmann::json::value_t::object: {
      // nlohmann's object is a std::map<std::string, ...>: already sorted by bytes.
      out.push_back('{');
      bool first = true;
      for (const auto& [k, e] : v.items()) {
        if (!first) out.push_back(',');
        first = false;
        Quote(k, out);
        out.push_back(':');
        if (!Write(e, out, depth + 1, too_deep)) return false;
      }
      out.push_back('}');
      return true;
    }
    default: return false;  // float, binary, discarded
  }
}

}  // namespace

Expected<std::string> Canonical(const nlohmann::json& value, const std::string& what) {
  std::string out;
  bool too_deep = false;
  if (Write(value, out, 0, too_deep)) return out;
  if (too_deep)
    return VerificationError(what + ": JSON nested deeper than " + std::to_string(kMaxDepth) +
                             " levels");
  return VerificationError(what + ": a number that is not an integer has no canonical JSON form");
}

}  // namespace osu::tuf

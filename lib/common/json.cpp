#include "common/json.hpp"

#include <cmath>
#include <cstdio>

#include "common/text.hpp"

namespace osu {

Json& Json::Set(const std::string& key, Json value) {
  auto& obj = std::get<Object>(v_);
  for (auto& [k, v] : obj) {
    if (k == key) {
      v = std::move(value);
      return *this;
    }
  }
  obj.emplace_back(key, std::move(value));
  return *this;
}

Json& Json::Push(Json value) {
  std::get<Array>(v_).push_back(std::move(value));
  return *this;
}

// Valid JSON from any bytes: a byte that is not UTF-8 becomes U+FFFD (as a decoder with
// errors=replace would read it), and controls a terminal would act on are \u escapes.
std::string JsonQuote(const std::string& s) {
  std::string out = "\"";
  char buf[8];
  for (size_t pos = 0; pos < s.size();) {
    auto cp = DecodeUtf8(s, pos);
    if (!cp) {
      out += "\\ufffd";
      ++pos;
      continue;
    }
    const uint32_t c = cp->value;
    if (c == '"') {
      out += "\\\"";
    } else if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (IsUnsafeCodePoint(c)) {
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out.append(s, pos, cp->length);
    }
    pos += cp->length;
  }
  return out + "\"";
}

std::string Json::Dump() const {
  struct Visitor {
    std::string operator()(std::nullptr_t) const { return "null"; }
    std::string operator()(bool b) const { return b ? "true" : "false"; }
    std::string operator()(int64_t i) const { return std::to_string(i); }
    std::string operator()(uint64_t u) const { return std::to_string(u); }
    std::string operator()(double d) const {
      if (!std::isfinite(d)) return "null";
      char buf[32];
      std::snprintf(buf, sizeof buf, "%.6g", d);
      return buf;
    }
    std::string operator()(const std::string& s) const { return JsonQuote(s); }
    std::string operator()(const Object& o) const {
      std::string out = "{";
      bool first = true;
      for (const auto& [k, v] : o) {
        if (!first) out += ",";
        first = false;
        out += JsonQuote(k) + ":" + v.Dump();
      }
      return out + "}";
    }
    std::string operator()(const Array& a) const {
      std::string out = "[";
      for (size_t i = 0; i < a.size(); ++i) {
        if (i) out += ",";
        out += a[i].Dump();
      }
      return out + "]";
    }
  };
  return std::visit(Visitor{}, v_);
}

}  // namespace osu

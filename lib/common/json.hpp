// A small JSON value for output only (status, info, progress lines): we never parse JSON.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace osu {

class Json {
 public:
  using Object = std::vector<std::pair<std::string, Json>>;  // keeps insertion order
  using Array = std::vector<Json>;

  Json() : v_(nullptr) {}  // null
  Json(std::nullptr_t) : v_(nullptr) {}
  Json(bool b) : v_(b) {}
  Json(int i) : v_(static_cast<int64_t>(i)) {}
  Json(int64_t i) : v_(i) {}
  Json(uint64_t u) : v_(u) {}
  Json(double d) : v_(d) {}
  Json(const char* s) : v_(std::string(s)) {}
  Json(std::string s) : v_(std::move(s)) {}

  static Json MakeObject() { Json j; j.v_ = Object{}; return j; }
  static Json MakeArray() { Json j; j.v_ = Array{}; return j; }

  // On an object: sets (or replaces) key. Returns *this for chaining.
  Json& Set(const std::string& key, Json value);
  // On an array: appends.
  Json& Push(Json value);

  // Compact, one line, no trailing newline.
  std::string Dump() const;

 private:
  std::variant<std::nullptr_t, bool, int64_t, uint64_t, double, std::string, Object, Array> v_;
};

std::string JsonQuote(const std::string& s);

}  // namespace osu

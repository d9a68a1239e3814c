#include "tuf/uri_source.hpp"

#include <vector>

namespace osu::tuf {

UriMetadataSource::UriMetadataSource(std::string base, SourceOptions options)
    : base_(std::move(base)), options_(std::move(options)) {
  while (base_.size() > 1 && base_.back() == '/') base_.pop_back();
}

std::string UriMetadataSource::Uri(const std::string& name) const { return base_ + "/" + name; }

std::string UriMetadataSource::Describe(const std::string& name) const {
  return "'" + DescribeSource(Uri(name)) + "'";
}

Expected<std::optional<std::string>> UriMetadataSource::Fetch(const std::string& name,
                                                              uint64_t max_bytes) {
  SourceOptions o = options_;
  o.read_window = max_bytes + 1;  // one byte more tells "too large" without reading on
  auto reader = OpenSource(Uri(name), o);
  if (!reader) {
    // "Not there" ends the root walk (5.3.3); 403 as python-tuf and tuf-js read it.
    const std::string& m = reader.error().message();
    if (reader.error().kind() == ErrorKind::Source &&
        (m.find("HTTP 404") != std::string::npos || m.find("HTTP 403") != std::string::npos ||
         m.find("not found") != std::string::npos))
      return std::optional<std::string>();
    return reader.error();
  }
  std::string out;
  std::vector<uint8_t> buf(16384);
  for (;;) {
    auto n = (*reader)->Read(buf);
    if (!n) return n.error();
    if (*n == 0) break;
    out.append(reinterpret_cast<const char*>(buf.data()), *n);
    if (out.size() > max_bytes)
      return VerificationError(Describe(name) + ": larger than the " + std::to_string(max_bytes) +
                               " bytes allowed for it (refused before reading on)");
  }
  return std::optional<std::string>(std::move(out));
}

std::string MetadataBaseOf(const std::string& bundle_uri) {
  auto slash = bundle_uri.find_last_of('/');
  if (slash == std::string::npos) return ".";
  return bundle_uri.substr(0, slash);
}

}  // namespace osu::tuf

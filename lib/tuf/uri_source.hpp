// TUF metadata read through os-update's sources: files beside a bundle (a path or file://)
// or an http(s) base URL, each file bounded (a Range for the bound, then refused past it).
#pragma once

#include <string>

#include "source/source.hpp"
#include "tuf/trust.hpp"

namespace osu::tuf {

class UriMetadataSource final : public MetadataSource {
 public:
  // `base`: the directory or URL the metadata files sit in (update.server).
  UriMetadataSource(std::string base, SourceOptions options);
  Expected<std::optional<std::string>> Fetch(const std::string& name, uint64_t max_bytes) override;
  std::string Describe(const std::string& name) const override;
  std::string Uri(const std::string& name) const;

 private:
  std::string base_;
  SourceOptions options_;
};

// The base a bundle URI's metadata sits in: everything before its last '/' ("." for a bare
// file name).
std::string MetadataBaseOf(const std::string& bundle_uri);

}  // namespace osu::tuf

// Streaming tar access (libarchive behind it: platform/libarchive). Reads strictly front to
// back from a Reader; never seeks, so it works on pipes and HTTP streams.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "common/error.hpp"
#include "io/stream.hpp"

namespace osu {

class TarReader {
 public:
  struct Entry {
    std::string name;
    uint64_t size = 0;
    bool regular = true;
    uint64_t offset = 0;  // where its (first) header starts in the archive
  };
  // `source` is not owned. `where` names the bundle in messages.
  static Expected<std::unique_ptr<TarReader>> Open(Reader& source, const std::string& where);
  virtual ~TarReader() = default;
  // The next member header; nullopt at the end of the archive. Not a tar: Verification error
  // "'<where>' is not a bundle: not a tar archive". Truncated: Verification error, unless
  // the source itself failed (its error kind is kept).
  virtual Expected<std::optional<Entry>> Next() = 0;
  // The data of the current member (skipped automatically by Next()).
  virtual Reader& Data() = 0;
};

class TarWriter {
 public:
  // Writes a POSIX ustar/pax archive to `path`.
  static Expected<std::unique_ptr<TarWriter>> Create(const std::string& path);
  virtual ~TarWriter() = default;
  virtual Result Add(const std::string& name, uint64_t size, Reader& data) = 0;
  virtual Result Close() = 0;
};

}  // namespace osu

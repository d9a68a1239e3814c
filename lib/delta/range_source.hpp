// Byte ranges of a bundle, for a partial fetch: a local file (pread) or an http(s) URL (one
// single-range GET per call: S3 and many CDNs serve no multi-range requests). The bytes are
// not trusted: the caller checks every piece against the signed chunk index.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "common/error.hpp"
#include "io/stream.hpp"
#include "source/source.hpp"

namespace osu {

class RangeSource {
 public:
  virtual ~RangeSource() = default;
  // Fills `out` with the bytes at [offset, offset + out.size()). A server that answers with
  // other bytes than asked (ignores Range, another Content-Range, a file that changed under
  // the download) or too few is a Source error; interrupted transfers are retried and resumed
  // as options.retries says.
  virtual Result Read(uint64_t offset, std::span<uint8_t> out) = 0;
  // The bundle's size (http: from a one-byte range's Content-Range).
  virtual Expected<uint64_t> Size() = 0;
  virtual uint64_t requests() const = 0;  // requests made so far (retries count)
  virtual uint64_t bytes() const = 0;     // bytes received so far
};

// A path, file://PATH or http(s)://; nullptr for other sources (stdin, ssh://, a path that is
// a block device or a pipe), which are read front to back only.
Expected<std::unique_ptr<RangeSource>> OpenRangeSource(const std::string& uri,
                                                       const SourceOptions& options);

// Reads [offset, offset + length) of `source` front to back, `piece` bytes in the first
// request, each next one twice the last up to `max_piece` (0: always `piece`). `cap`, when
// given, is read before each request and nothing at or past it is asked for: a caller that
// learns where what it needs ends (the bundle's index, from its manifest) lowers it.
std::unique_ptr<Reader> MakeRangeReader(RangeSource& source, uint64_t offset, uint64_t length,
                                        size_t piece, size_t max_piece = 0,
                                        const uint64_t* cap = nullptr);

// The first min(length, probe) bytes of [offset, offset + length) in one request, timed, and
// a reader of the whole range that starts with those bytes (none is fetched twice), then asks
// for `piece` bytes at a time. The rate counts the request's latency, so it errs low.
struct ProbedRange {
  std::unique_ptr<Reader> reader;
  double bytes_per_second = 0;
};
Expected<ProbedRange> ProbeRange(RangeSource& source, uint64_t offset, uint64_t length,
                                 size_t probe, size_t piece);

}  // namespace osu

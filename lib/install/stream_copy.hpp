// The data path: decoded image -> sha256 -> slot, with decoding, hashing and writing
// overlapped on threads and large aligned writes.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "common/error.hpp"
#include "device/block_device.hpp"
#include "io/stream.hpp"

namespace osu {

struct CopyOptions {
  uint64_t expected_size = 0;    // exact byte count the stream must have
  std::string expected_sha256;   // lower-case hex
  // An unsigned raw stream over ssh has no manifest: its length and sha256 are known only once
  // it has arrived. Then expected_size is only the slot's size, an upper bound, and
  // expected_sha256 is not compared (CopyStats still says what arrived).
  bool size_is_limit = false;
  // Bytes per write (a multiple of 4096) and chunks in flight. 4 x 2 MiB keeps decoding,
  // hashing and writing overlapped as well as 4 x 4 MiB did (bench/apply-bench.sh) and leaves
  // the xz decoder's 96 MiB inside apply's 128 MiB peak RSS.
  size_t chunk_size = 2u << 20;
  unsigned buffers = 4;
  // Read what the target holds (its own thread, one large read per chunk, then `buffers` more
  // chunks of memory) and write only the 4 KiB blocks that differ, adjacent ones together.
  bool skip_unchanged = false;
  bool verify_readback = false;  // read the written region back and hash it again
  std::function<void(uint64_t done)> progress;  // decoded bytes so far; may be empty
};

struct CopyStats {
  uint64_t bytes = 0;           // bytes of image
  uint64_t bytes_written = 0;   // bytes actually written (less with skip_unchanged)
  std::string sha256;
};

// Streams all of `decoded` into `device` from offset 0, then fsyncs it. Fails (Verification)
// as soon as the stream exceeds expected_size (nothing past it is written), at the end if it
// is shorter or its sha256 differs (neither with size_is_limit). Errors of the reader keep
// their kind.
Expected<CopyStats> StreamToDevice(Reader& decoded, BlockDevice& device, const CopyOptions& options);

}  // namespace osu

#include "install/stream_copy.hpp"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <exception>
#include <vector>

#include "crypto/sha256.hpp"
#include "install/chunk_pipeline.hpp"

namespace osu {
namespace {

// Granularity of skip-unchanged comparisons: small enough for a modest scratch buffer,
// large enough that the writes stay big.
constexpr size_t kCompareBlock = 1u << 20;

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

// Fills `buf` from `decoded`, stopping the moment the stream passes `expected` bytes so that
// nothing beyond them ever reaches the device.
Expected<size_t> FillFromStream(Reader& decoded, uint64_t offset, std::span<uint8_t> buf,
                                uint64_t expected) {
  size_t filled = 0;
  while (filled < buf.size()) {
    auto n = decoded.Read(buf.subspan(filled));
    if (!n) return n.error();
    if (*n == 0) {
      if (offset + filled < expected) {
        return VerificationError("image is shorter than the manifest says: got " +
                                 std::to_string(offset + filled) + " of " +
                                 std::to_string(expected) + " bytes");
      }
      break;
    }
    filled += *n;
    if (offset + filled > expected) {
      return VerificationError("image is longer than the manifest's " + std::to_string(expected) +
                               " bytes");
    }
  }
  return filled;
}

// Writes only the compare blocks of `data` that differ from what the device holds.
Result WriteChanged(BlockDevice& device, uint64_t offset, std::span<const uint8_t> data,
                    std::span<uint8_t> scratch, uint64_t& written) {
  for (size_t at = 0; at < data.size(); at += scratch.size()) {
    auto part = data.subspan(at, std::min(scratch.size(), data.size() - at));
    auto n = device.ReadAt(offset + at, scratch.first(part.size()));
    if (!n) return n.error();
    if (*n == part.size() && std::memcmp(scratch.data(), part.data(), part.size()) == 0) continue;
    auto r = device.WriteAt(offset + at, part);
    if (!r) return r;
    written += part.size();
  }
  return {};
}

// Reads [0, size) of the device back through the same buffers and hashes it.
Expected<std::string> HashDevice(BlockDevice& device, uint64_t size, ChunkPipeline& pipeline) {
  Sha256 sha;
  auto produce = [&](uint64_t offset, std::span<uint8_t> buf) -> Expected<size_t> {
    size_t want = static_cast<size_t>(std::min<uint64_t>(buf.size(), size - offset));
    if (want == 0) return size_t{0};
    auto n = device.ReadAt(offset, buf.first(want));
    if (!n) return n.error();
    if (*n != want) {
      return DeviceError("Failed to read back '" + device.name() + "': it ended at " +
                         std::to_string(offset + *n) + " of " + std::to_string(size) + " bytes");
    }
    return want;
  };
  auto hash = [&](uint64_t, std::span<const uint8_t> data) -> Result {
    sha.Update(data);
    return {};
  };
  auto r = pipeline.Run(produce, {hash});
  if (!r) return r.error();
  return sha.HexDigest();
}

Expected<CopyStats> Copy(Reader& decoded, BlockDevice& device, const CopyOptions& options) {
  if (options.chunk_size == 0 || options.chunk_size % 4096 != 0 || options.buffers == 0) {
    return UsageError("Copy needs a chunk size that is a positive multiple of 4096 and buffers");
  }
  if (options.expected_size > device.size()) {
    return VerificationError("image of " + std::to_string(options.expected_size) +
                             " bytes does not fit in '" + device.name() + "' (" +
                             std::to_string(device.size()) + " bytes)");
  }

  std::vector<AlignedBuffer> owned;
  std::vector<uint8_t*> buffers;
  for (unsigned i = 0; i < options.buffers; ++i) {
    owned.push_back(AllocateAligned(options.chunk_size));
    buffers.push_back(owned.back().get());
  }
  AlignedBuffer scratch;
  size_t scratch_size = std::min(options.chunk_size, kCompareBlock);
  if (options.skip_unchanged) scratch = AllocateAligned(scratch_size);
  ChunkPipeline pipeline(buffers, options.chunk_size);

  Sha256 sha;
  CopyStats stats;
  auto produce = [&](uint64_t offset, std::span<uint8_t> buf) -> Expected<size_t> {
    auto n = FillFromStream(decoded, offset, buf, options.expected_size);
    if (n && *n > 0 && options.progress) options.progress(offset + *n);
    return n;
  };
  auto hash = [&](uint64_t offset, std::span<const uint8_t> data) -> Result {
    sha.Update(data);
    stats.bytes = offset + data.size();
    return {};
  };
  auto write = [&](uint64_t offset, std::span<const uint8_t> data) -> Result {
    if (options.skip_unchanged) {
      return WriteChanged(device, offset, data, std::span(scratch.get(), scratch_size),
                          stats.bytes_written);
    }
    auto r = device.WriteAt(offset, data);
    if (r) stats.bytes_written += data.size();
    return r;
  };
  auto r = pipeline.Run(produce, {hash, write});
  if (!r) return r.error();

  stats.sha256 = sha.HexDigest();
  std::string expected = Lower(options.expected_sha256);
  if (stats.sha256 != expected) {
    return VerificationError("image sha256 mismatch: expected " + expected + ", got " +
                             stats.sha256);
  }
  auto synced = device.Sync();
  if (!synced) return synced.error();

  if (options.verify_readback) {
    auto again = HashDevice(device, stats.bytes, pipeline);
    if (!again) return again.error();
    if (*again != stats.sha256) {
      return DeviceError("Read-back of '" + device.name() + "' does not match what was written: " +
                         "expected sha256 " + stats.sha256 + ", got " + *again);
    }
  }
  return stats;
}

}  // namespace

Expected<CopyStats> StreamToDevice(Reader& decoded, BlockDevice& device,
                                   const CopyOptions& options) {
  try {
    return Copy(decoded, device, options);
  } catch (const std::bad_alloc&) {
    return DeviceError("Out of memory for the " + std::to_string(options.buffers) + " x " +
                       std::to_string(options.chunk_size) + " byte copy buffers");
  } catch (const std::exception& e) {
    return DeviceError(std::string("Internal error while copying the image: ") + e.what());
  }
}

}  // namespace osu

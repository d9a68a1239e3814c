#include "install/stream_copy.hpp"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <exception>
#include <optional>
#include <vector>

#include "crypto/sha256.hpp"
#include "install/chunk_pipeline.hpp"

namespace osu {
namespace {

// Granularity of skip-unchanged comparisons: the file-system block and O_DIRECT unit, so a
// changed 4 KiB file costs 4 KiB of writes, not a whole chunk.
constexpr size_t kCompareBlock = 4096;

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

// Fills `buf` from `decoded`, stopping the moment the stream passes `options.expected_size`
// bytes so that nothing beyond them ever reaches `device`.
Expected<size_t> FillFromStream(Reader& decoded, uint64_t offset, std::span<uint8_t> buf,
                                const CopyOptions& options, const BlockDevice& device) {
  const uint64_t expected = options.expected_size;
  size_t filled = 0;
  while (filled < buf.size()) {
    auto n = decoded.Read(buf.subspan(filled));
    if (!n) return n.error();
    if (*n == 0) {
      if (!options.size_is_limit && offset + filled < expected) {
        return VerificationError("image is shorter than the manifest says: got " +
                                 std::to_string(offset + filled) + " of " +
                                 std::to_string(expected) + " bytes");
      }
      break;
    }
    filled += *n;
    if (offset + filled > expected) {
      return VerificationError(
          options.size_is_limit
              ? "image is larger than the slot ('" + device.name() + "', " +
                    std::to_string(expected) + " bytes): stopped at the slot's end"
              : "image is longer than the manifest's " + std::to_string(expected) + " bytes");
    }
  }
  return filled;
}

// What the target holds where the chunks in flight go, read ahead of the writer by its own
// pipeline consumer: the slot's reads then overlap the writes instead of taking turns with
// them. One aligned buffer per pipeline buffer: a chunk's slot here is reused only after the
// writer is done with that chunk (its pipeline buffer must be free first).
class TargetContent {
 public:
  TargetContent(size_t slots, size_t chunk_size) : chunk_size_(chunk_size) {
    for (size_t i = 0; i < slots; ++i) {
      buffers_.push_back(AllocateAligned(chunk_size));
      held_.push_back(0);
    }
  }

  // Pipeline consumer: one large read (direct I/O like the writes).
  Result Read(BlockDevice& device, uint64_t offset, size_t len) {
    size_t i = Index(offset);
    auto n = device.ReadAt(offset, std::span(buffers_[i].get(), len));
    if (!n) return n.error();
    held_[i] = *n;  // a short read leaves the rest to be written
    return {};
  }

  // Writes only the blocks of `data` that differ from what Read() found, each run of adjacent
  // differing blocks as one write.
  Result WriteChanged(BlockDevice& device, uint64_t offset, std::span<const uint8_t> data,
                      uint64_t& written) const {
    const size_t i = Index(offset);
    const uint8_t* old = buffers_[i].get();
    const size_t held = held_[i];
    if (held == data.size() && std::memcmp(old, data.data(), data.size()) == 0) return {};

    auto differs = [&](size_t at) {
      size_t len = std::min(kCompareBlock, data.size() - at);
      return at + len > held || std::memcmp(old + at, data.data() + at, len) != 0;
    };
    size_t at = 0;
    while (at < data.size()) {
      if (!differs(at)) {
        at += kCompareBlock;
        continue;
      }
      size_t end = at + kCompareBlock;
      while (end < data.size() && differs(end)) end += kCompareBlock;
      end = std::min(end, data.size());
      if (auto r = device.WriteAt(offset + at, data.subspan(at, end - at)); !r) return r;
      written += end - at;
      at = end;
    }
    return {};
  }

 private:
  size_t Index(uint64_t offset) const {
    return static_cast<size_t>(offset / chunk_size_ % buffers_.size());
  }

  size_t chunk_size_;
  std::vector<AlignedBuffer> buffers_;
  std::vector<size_t> held_;
};

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
  if (options.expected_size > device.size() && options.size_is_limit) {
    return UsageError("Copy limit of " + std::to_string(options.expected_size) +
                      " bytes is beyond the end of '" + device.name() + "' (" +
                      std::to_string(device.size()) + " bytes)");
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
  std::optional<TargetContent> target;
  if (options.skip_unchanged) target.emplace(options.buffers, options.chunk_size);
  ChunkPipeline pipeline(buffers, options.chunk_size);

  Sha256 sha;
  CopyStats stats;
  auto produce = [&](uint64_t offset, std::span<uint8_t> buf) -> Expected<size_t> {
    auto n = FillFromStream(decoded, offset, buf, options, device);
    if (n && *n > 0 && options.progress) options.progress(offset + *n);
    return n;
  };
  auto hash = [&](uint64_t offset, std::span<const uint8_t> data) -> Result {
    sha.Update(data);
    stats.bytes = offset + data.size();
    return {};
  };
  auto write = [&](uint64_t offset, std::span<const uint8_t> data) -> Result {
    if (target) return target->WriteChanged(device, offset, data, stats.bytes_written);
    auto r = device.WriteAt(offset, data);
    if (r) stats.bytes_written += data.size();
    return r;
  };
  auto read_target = [&](uint64_t offset, std::span<const uint8_t> data) -> Result {
    return target->Read(device, offset, data.size());
  };
  // Skip-unchanged: the writer takes a chunk once the target's content there has been read.
  auto r = target ? pipeline.Run(produce, {hash, read_target, write}, {std::nullopt, std::nullopt, 1})
                  : pipeline.Run(produce, {hash, write});
  if (!r) return r.error();

  stats.sha256 = sha.HexDigest();
  std::string expected = Lower(options.expected_sha256);
  if (!options.size_is_limit && stats.sha256 != expected) {
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

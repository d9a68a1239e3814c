// The index of a partial-fetch bundle's image: the image member is a series of zstd frames,
// one per content-defined chunk (a valid zstd stream, so a full download decodes it as one),
// and the index says where each frame sits and what it decodes to. Its sha256 is in the
// signed manifest (manifest `index:`), so a device that checked the signature trusts it.
//
// Why not libzck (zchunk): a .zck file is its own container (lead, header, index, optional
// dictionary, then the chunks), not a zstd stream, so the full path would need libzck to
// stream it and every bundle would carry two formats; its downloader asks for multi-range
// responses that S3 and many CDNs do not serve; and its file measured 123% of plain zstd on
// ext4 (issue 11). The chunking and the index here are ~300 lines and reuse libzstd.
//
// Binary layout, little-endian:
//   "OSUCHIDX" | u32 version (2 or 3) | u32 min | u32 avg | u32 max | (version 3: u32 window)
//   | u64 image size | u64 chunk count | per chunk: u32 size, u32 compressed size, 16 bytes
//   digest: the first half of the sha256 of the uncompressed chunk.
// Version 3 (bundle format 4) adds `window`: each chunk's frame was made with the up to
// `window` image bytes before the chunk as its zstd prefix, so the frames are no longer one
// plain zstd stream; a decoder keeps the last `window` bytes of output (DecodeWindow below).
// Version 4 (bundle format 5) adds `refs` (u32, 1-2) after the window, and after the chunk
// records a u64 count of references and per reference u32 chunk, u32 referenced chunk (in
// chunk order, the referenced one earlier): such a chunk's prefix is the referenced chunks
// (in that order) and then the window. A decoder keeps each referenced chunk from its own turn
// to its last use; the index is refused when those chunks would ever hold more than
// kMaxReferenceBytes at once, so a device's memory for them is bounded whatever it is sent.
// Version 2 is still written when the window is 0, so such bundles stay readable by devices
// that read versions 1-2 only.
// Version 1 (written until 2026-12) stored the whole sha256 (40 bytes a chunk, not 24); it is
// still read, its digests cut to 16 bytes. Why 16 are enough (zchunk cuts SHA-512 to 128 bits
// the same way): a chunk digest only finds reusable chunks and catches a wrong piece early;
// the whole image's sha256 in the signed manifest is still checked before a slot is verified,
// so a collision (2^64 work by the bundle's own builder) could fail an apply, never pass a
// wrong image. The index is what a device downloads in any case: 1.5 MB for a 1 GiB image at
// 16 KiB chunks, not 2.6 MB.
// Chunk i decodes to image bytes [sum of earlier sizes, + size) and its frame sits at the
// sum of earlier compressed sizes from the start of the image member.
#pragma once

#include <array>
#include <span>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/error.hpp"
#include "delta/chunker.hpp"
#include "io/stream.hpp"

namespace osu {

using Digest = std::array<uint8_t, 16>;  // first half of a sha256

// Version 4: earlier chunks a chunk's frame may refer to besides the window, and the bytes a
// decoder keeps for that at most (16 MiB; the 1 GiB ext4 of bench/delta.sh needs 12 MiB with
// no bound at all).
inline constexpr uint32_t kMaxChunkRefs = 2;
inline constexpr uint64_t kMaxReferenceBytes = 16u << 20;

struct ChunkEntry {
  uint64_t offset = 0;             // in the uncompressed image
  uint64_t compressed_offset = 0;  // in the image member
  uint32_t size = 0;
  uint32_t compressed_size = 0;
  Digest digest{};
  // Version 4: the earlier chunks put before the window in this chunk's prefix, in order.
  std::array<uint32_t, kMaxChunkRefs> refs{};
  uint32_t ref_count = 0;
  // The last chunk that refers to this one (0: none; always after it when set). Derived: the
  // parser and the builder fill it in, it is not stored.
  uint32_t last_use = 0;
};

// Bounds a device trusts: the window it keeps (2 x window of memory) and a frame's size.
inline constexpr uint32_t kMaxChunkWindow = 8u << 20;
// 2 MiB (level 9): 114.8% of the xz full bundle on a 1 GiB ext4, where 8 MiB at level 6 made
// 117.9% as 2 MiB did (lib/delta/README.md).
inline constexpr uint32_t kDefaultChunkWindow = 2u << 20;
// The largest frame a chunk of `size` bytes may have: above zstd's ZSTD_compressBound.
constexpr uint64_t MaxFrameSize(uint64_t size) { return size + (size >> 7) + 1024; }

struct ChunkIndex {
  ChunkSizes sizes;
  uint32_t window = 0;  // version 3: image bytes before a chunk its frame refers to
  uint32_t refs = 0;    // version 4: earlier chunks a frame may refer to (1-2); needs a window
  uint64_t image_size = 0;
  uint64_t compressed_size = 0;  // the image member's size
  std::vector<ChunkEntry> chunks;
};

std::string SerializeChunkIndex(const ChunkIndex& index);
// Checks the layout (magic, version, sizes that add up to image_size, chunk sizes within the
// chunker's limits, references to earlier chunks that never hold more than kMaxReferenceBytes
// at once): a Verification error naming `where` otherwise. Offsets and last uses are derived.
Expected<ChunkIndex> ParseChunkIndex(const std::string& bytes, const std::string& where);

// Fills in each chunk's `last_use` from the references (0: never referenced) and returns
// what that implies: the most bytes of referenced chunks a decoder holds at once (each kept
// from its own turn to its last use).
uint64_t DeriveLastUses(std::vector<ChunkEntry>& chunks);

// The index member's name for an image member.
std::string ChunkIndexName(const std::string& image_member);

// The decoded image's last `window` bytes and the chunk after them, in one buffer that
// slides (memmove) when full: what a chunk's frame needs as its prefix. `room` bytes are kept
// free before the window for the referenced chunks of version 4, so that they and the window
// are one prefix without copying the window. Memory: about 2 x window + room + the largest
// chunk.
class DecodeWindow {
 public:
  explicit DecodeWindow(uint32_t window, size_t room = 0) : window_(window), room_(room) {}
  // Room for the next chunk (`size` bytes) right after the image bytes before it.
  std::span<uint8_t> Next(size_t size);
  // The up to `window` image bytes before the chunk of the last Next() (empty at window 0),
  // after `before` (at most `room` bytes in all), copied in front of them.
  std::span<const uint8_t> prefix(std::span<const std::span<const uint8_t>> before = {});
  std::span<const uint8_t> chunk() const { return {buf_.data() + start_, end_ - start_}; }

 private:
  uint32_t window_;
  size_t room_;
  std::vector<uint8_t> buf_;
  size_t start_ = 0, end_ = 0;
};

// An image handed out chunk by chunk in index order, each chunk made by Fill into the window
// (the full path's frame decoder, the partial path's assembly): the bytes before a chunk are
// its prefix, whichever way they came.
// Chunks that later chunks refer to (version 4) are kept from their turn to their last use.
class ChunkStream : public Reader {
 public:
  explicit ChunkStream(const ChunkIndex& index);
  Expected<size_t> Read(std::span<uint8_t> out) final;

 protected:
  // Chunk `i`'s bytes into `into` (its size); `prefix` is what its frame was made with: the
  // chunks it refers to and the image before it.
  virtual Result Fill(size_t i, std::span<uint8_t> into, std::span<const uint8_t> prefix) = 0;
  // After the last chunk (a Verification error when the source has more).
  virtual Result End() { return {}; }

 private:
  const std::vector<ChunkEntry>& chunks_;
  DecodeWindow window_;
  std::unordered_map<uint32_t, std::vector<uint8_t>> kept_;  // referenced chunks, by index
  std::span<const uint8_t> chunk_;
  size_t pos_ = 0, next_ = 0;
};

// The chunk digest of `data` (the first 16 bytes of its sha256).
Digest DigestOf(std::span<const uint8_t> data);

}  // namespace osu

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
//   "OSUCHIDX" | u32 version (1) | u32 min | u32 avg | u32 max | u64 image size
//   | u64 chunk count | per chunk: u32 size, u32 compressed size, 32 bytes sha256 (of the
//   uncompressed chunk).
// Chunk i decodes to image bytes [sum of earlier sizes, + size) and its frame sits at the
// sum of earlier compressed sizes from the start of the image member.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "delta/chunker.hpp"

namespace osu {

using Digest = std::array<uint8_t, 32>;

struct ChunkEntry {
  uint64_t offset = 0;             // in the uncompressed image
  uint64_t compressed_offset = 0;  // in the image member
  uint32_t size = 0;
  uint32_t compressed_size = 0;
  Digest sha256{};
};

struct ChunkIndex {
  ChunkSizes sizes;
  uint64_t image_size = 0;
  uint64_t compressed_size = 0;  // the image member's size
  std::vector<ChunkEntry> chunks;
};

std::string SerializeChunkIndex(const ChunkIndex& index);
// Checks the layout (magic, version, sizes that add up to image_size, chunk sizes within the
// chunker's limits): a Verification error naming `where` otherwise. Offsets are recomputed.
Expected<ChunkIndex> ParseChunkIndex(const std::string& bytes, const std::string& where);

// The index member's name for an image member.
std::string ChunkIndexName(const std::string& image_member);

Digest DigestOf(std::span<const uint8_t> data);

}  // namespace osu

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
//   "OSUCHIDX" | u32 version (2) | u32 min | u32 avg | u32 max | u64 image size
//   | u64 chunk count | per chunk: u32 size, u32 compressed size, 16 bytes digest: the first
//   half of the sha256 of the uncompressed chunk.
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
#include <cstdint>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "delta/chunker.hpp"

namespace osu {

using Digest = std::array<uint8_t, 16>;  // first half of a sha256

struct ChunkEntry {
  uint64_t offset = 0;             // in the uncompressed image
  uint64_t compressed_offset = 0;  // in the image member
  uint32_t size = 0;
  uint32_t compressed_size = 0;
  Digest digest{};
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

// The chunk digest of `data` (the first 16 bytes of its sha256).
Digest DigestOf(std::span<const uint8_t> data);

}  // namespace osu

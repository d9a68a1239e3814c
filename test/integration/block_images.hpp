// Images laid out as a squashfs is (zstd blocks, raw bytes between some) and the patch
// header's parts, for the tests of patch format 2 (lib/delta/blocks.hpp).
#pragma once

#include <catch2/catch.hpp>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "crypto/signature.hpp"
#include "delta/patch_codec.hpp"
#include "delta/patch_format.hpp"
#include "integration/bundle_fixture.hpp"

namespace osu::test::blocks {

// Words from a small vocabulary: compressible like the files a squashfs holds.
inline std::string Text(size_t n, unsigned seed) {
  static const char* const kWords[] = {"kernel ", "slot ", "update ", "boot ", "image ",
                                       "verify ", "device ", "fleet ", "\n", "0x1f ", "root "};
  std::string out;
  uint32_t x = seed * 2654435761u + 1;
  while (out.size() < n) {
    x = x * 1664525u + 1013904223u;
    out += kWords[(x >> 16) % 11];
  }
  out.resize(n);
  return out;
}

// `content` as mksquashfs compresses a block (ZSTD_compressCCtx), at level 12.
inline std::string Frame(const std::string& content) {
  auto c = osu::delta::MakeFrameCompressor();
  REQUIRE(c.ok());
  std::vector<uint8_t> out(osu::delta::MaxFrameSize(content.size()));
  auto n = (*c)->Compress(
      std::span(reinterpret_cast<const uint8_t*>(content.data()), content.size()), 12, out);
  REQUIRE(n.ok());
  return std::string(reinterpret_cast<const char*>(out.data()), *n);
}

// A header of random bytes, then the blocks each compressed on its own, 3000 random bytes
// after every fifth, 8 KiB of random bytes at the end.
inline std::string Image(const std::vector<std::string>& blocks) {
  std::string image = osu::test::bundle::RandomBytes(4096, 1);
  for (size_t i = 0; i < blocks.size(); ++i) {
    image += Frame(blocks[i]);
    if (i % 5 == 4) image += osu::test::bundle::RandomBytes(3000, static_cast<unsigned>(i));
  }
  return image + osu::test::bundle::RandomBytes(8192, 2);
}

// Two releases: `count` blocks of 128 KiB of text; the target changes 64 bytes every 4 KiB
// of blocks 3, 17 and 30 (files rewritten), drops block 10 and adds a block unlike any other
// (hex digits: compressible, no run of words the base has), so the blocks after a change are
// the same, further along.
struct Pair {
  std::string base, target;
  uint64_t new_block = 0;  // compressed bytes of the added block: in any patch
};
inline Pair MakePair(unsigned count = 40) {
  std::vector<std::string> blocks;
  for (unsigned i = 0; i < count; ++i) blocks.push_back(Text(128u << 10, i));
  Pair p;
  p.base = Image(blocks);
  for (size_t i : {3u, 17u, 30u}) {
    for (size_t at = 0; at + 64 < blocks[i].size(); at += 4096) {
      blocks[i].replace(at, 64, osu::test::bundle::RandomBytes(64, static_cast<unsigned>(at)));
    }
  }
  blocks.erase(blocks.begin() + 10);
  std::string hex;
  for (char c : osu::test::bundle::RandomBytes(50000, 99)) {
    hex += "0123456789abcdef"[static_cast<uint8_t>(c) >> 4];
    hex += "0123456789abcdef"[static_cast<uint8_t>(c) & 15];
  }
  p.new_block = Frame(hex).size();
  blocks.insert(blocks.begin() + 20, hex);
  p.target = Image(blocks);
  return p;
}

// A patch's header parsed (the builder's own: only what it says is checked here).
struct ParsedPatch {
  osu::delta::PatchHeader h;
  std::string frames;  // everything after the signature
};
inline ParsedPatch Parse(const std::string& bytes) {
  ParsedPatch p;
  uint32_t count = 0;
  auto h = osu::delta::ParseFixed(bytes.substr(0, osu::delta::kFixedSize), &count);
  REQUIRE(h.ok());
  size_t at = osu::delta::kFixedSize;
  const size_t entries = size_t{count} * osu::delta::EntrySize(*h);
  REQUIRE(osu::delta::ParseEntries(bytes.substr(at, entries), *h).ok());
  at += entries;
  const size_t records = osu::delta::RecordBytes(*h);
  REQUIRE(osu::delta::ParseRecords(bytes.substr(at, records), *h).ok());
  at += records;
  uint32_t sig = 0;
  for (int i = 3; i >= 0; --i) {
    sig = (sig << 8) | static_cast<uint8_t>(bytes[at + static_cast<size_t>(i)]);
  }
  p.h = std::move(h).value();
  p.frames = bytes.substr(at + 4 + sig);
  return p;
}

// The patch again with its header as `p` says, signed with `key`: what a builder holding the
// signing key could publish.
inline std::string Signed(const ParsedPatch& p, const std::string& key) {
  using namespace osu::delta;
  const std::string head = SerializeFixed(p.h) + SerializeEntries(p.h) + SerializeRecords(p.h);
  auto sig = osu::Sign(head, key);
  REQUIRE(sig.ok());
  std::string size;
  for (int i = 0; i < 4; ++i) size.push_back(static_cast<char>((sig->size() >> (8 * i)) & 0xff));
  return head + size + *sig + p.frames;
}

// The first segment with changed blocks and base blocks.
inline osu::delta::SegmentEntry& WithBlocks(ParsedPatch& p) {
  for (auto& e : p.h.segments) {
    if (!e.blocks.empty() && !e.base_blocks.empty()) return e;
  }
  FAIL("no segment with changed and base blocks");
  return p.h.segments.front();
}

}  // namespace osu::test::blocks

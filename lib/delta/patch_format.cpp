#include "delta/patch_format.hpp"

#include <algorithm>
#include <cstring>

#include "delta/patch_codec.hpp"

namespace osu::delta {
namespace {

void Put32(std::string& s, uint32_t v) {
  for (int i = 0; i < 4; ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void Put64(std::string& s, uint64_t v) {
  for (int i = 0; i < 8; ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
uint64_t Get(const std::string& s, size_t pos, int bytes) {
  uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) {
    v = (v << 8) | static_cast<uint8_t>(s[pos + static_cast<size_t>(i)]);
  }
  return v;
}

}  // namespace

bool IsSha256Hex(const std::string& s) {
  return s.size() == 64 && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

uint64_t SegmentCount(uint64_t target_size, uint32_t segment_size) {
  // Not (size + segment - 1) / segment: near 2^64 that wraps, and 0 segments "covered" the image.
  return target_size / segment_size + (target_size % segment_size != 0 ? 1 : 0);
}

uint32_t PatchHeader::SegmentLength(size_t i) const {
  const uint64_t start = uint64_t{segment_size} * i;
  return static_cast<uint32_t>(std::min<uint64_t>(segment_size, target_size - start));
}

std::string SerializeFixed(const PatchHeader& h) {
  std::string s(kMagic, sizeof kMagic);
  Put32(s, h.format);
  Put32(s, h.segment_size);
  Put64(s, h.base_size);
  s += h.base_sha256;
  Put64(s, h.target_size);
  s += h.target_sha256;
  Put32(s, static_cast<uint32_t>(h.segments.size()));
  return s;
}

std::string SerializeEntries(const PatchHeader& h) {
  std::string s;
  for (const auto& e : h.segments) {
    Put32(s, e.frame_size);
    if (h.format == kFormatBlocks) {
      Put32(s, e.length);
      Put32(s, e.decoded_length);
      Put32(s, static_cast<uint32_t>(e.base_blocks.size()));
      Put32(s, static_cast<uint32_t>(e.blocks.size()));
    }
    s += e.sha256;
  }
  return s;
}

std::string SerializeRecords(const PatchHeader& h) {
  std::string s;
  if (h.format != kFormatBlocks) return s;
  for (const auto& e : h.segments) {
    for (const auto& b : e.base_blocks) {
      Put64(s, b.offset);
      Put32(s, b.size);
      Put32(s, b.content_size);
    }
    for (const auto& b : e.blocks) {
      Put32(s, b.offset);
      Put32(s, b.content_size);
      Put32(s, b.size);
      Put32(s, static_cast<uint32_t>(b.level));
    }
  }
  return s;
}

size_t EntrySize(const PatchHeader& h) { return h.format == kFormatBlocks ? kEntrySize2 : kEntrySize; }

Expected<PatchHeader> ParseFixed(const std::string& b, uint32_t* segment_count) {
  if (b.size() != kFixedSize || std::memcmp(b.data(), kMagic, sizeof kMagic) != 0) {
    return VerificationError("not an os-update patch (no OSUPATCH header)");
  }
  const auto format = static_cast<uint32_t>(Get(b, 8, 4));
  if (format != kFormat && format != kFormatBlocks) {
    return VerificationError("patch format " + std::to_string(format) + " is not supported (" +
                             std::to_string(kFormat) + " and " + std::to_string(kFormatBlocks) +
                             " are)");
  }
  PatchHeader h;
  h.format = format;
  h.segment_size = static_cast<uint32_t>(Get(b, 12, 4));
  h.base_size = Get(b, 16, 8);
  h.base_sha256 = b.substr(24, 64);
  h.target_size = Get(b, 88, 8);
  h.target_sha256 = b.substr(96, 64);
  *segment_count = static_cast<uint32_t>(Get(b, 160, 4));
  if (!IsSha256Hex(h.base_sha256) || !IsSha256Hex(h.target_sha256)) {
    return VerificationError("patch header holds an image sha256 that is not 64 hex digits");
  }
  if (h.segment_size < kMinSegment || h.segment_size > kMaxSegment) {
    return VerificationError("patch segment size " + std::to_string(h.segment_size) +
                             " is outside " + std::to_string(kMinSegment) + "-" +
                             std::to_string(kMaxSegment) + " bytes");
  }
  // Format 2's segments end at block boundaries: each is at least one byte, at most 32 MiB.
  const bool counted = format == kFormat
                           ? *segment_count == SegmentCount(h.target_size, h.segment_size)
                           : *segment_count != 0 && *segment_count <= h.target_size &&
                                 *segment_count >= SegmentCount(h.target_size, kMaxSegment);
  if (h.target_size == 0 || !counted) {
    return VerificationError("patch header: " + std::to_string(*segment_count) +
                             " segments do not cover an image of " +
                             std::to_string(h.target_size) + " bytes");
  }
  return h;
}

Result ParseEntries(const std::string& b, PatchHeader& h) {
  const size_t size = EntrySize(h), count = b.size() / size;
  const bool blocks = h.format == kFormatBlocks;
  h.segments.clear();
  uint64_t covered = 0, records = 0;
  for (size_t i = 0; i < count; ++i) {
    const size_t at = i * size;
    SegmentEntry e;
    e.frame_size = static_cast<uint32_t>(Get(b, at, 4));
    e.length = blocks ? static_cast<uint32_t>(Get(b, at + 4, 4)) : h.SegmentLength(i);
    e.decoded_length = blocks ? static_cast<uint32_t>(Get(b, at + 8, 4)) : e.length;
    const std::string what = "patch segment " + std::to_string(i);
    if (blocks) {
      // Bounded before anything is allocated for them.
      const uint64_t bases = Get(b, at + 12, 4), recompress = Get(b, at + 16, 4);
      records += bases + recompress;
      if (records > kMaxRecordBytes / kRecordSize) {
        return VerificationError(what + ": more than " +
                                 std::to_string(kMaxRecordBytes / kRecordSize) +
                                 " block records in the patch");
      }
      e.base_blocks.resize(bases);
      e.blocks.resize(recompress);
    }
    e.sha256 = b.substr(at + size - 64, 64);
    if (!IsSha256Hex(e.sha256)) return VerificationError(what + ": sha256 is not 64 hex digits");
    if (e.length == 0 || e.length > kMaxSegment || e.decoded_length == 0 ||
        e.decoded_length > h.segment_size) {
      return VerificationError(what + ": " + std::to_string(e.length) + " bytes decoded from " +
                               std::to_string(e.decoded_length) + ", outside 1-" +
                               std::to_string(h.segment_size));
    }
    if (e.frame_size == 0 || e.frame_size > MaxFrameSize(e.decoded_length)) {
      return VerificationError(what + ": frame of " + std::to_string(e.frame_size) +
                               " bytes for a segment of " + std::to_string(e.decoded_length));
    }
    covered += e.length;
    h.segments.push_back(std::move(e));
  }
  if (covered != h.target_size) {
    return VerificationError("patch segments cover " + std::to_string(covered) + " bytes of a " +
                             std::to_string(h.target_size) + "-byte image");
  }
  return {};
}

uint64_t RecordBytes(const PatchHeader& h) {
  uint64_t n = 0;
  for (const auto& e : h.segments) n += e.base_blocks.size() + e.blocks.size();
  return n * kRecordSize;
}

namespace {

Result CheckSegmentRecords(const SegmentEntry& e, const PatchHeader& h, const std::string& what) {
  uint64_t prefix = 0;
  for (const auto& b : e.base_blocks) {
    if (b.size == 0 || b.content_size == 0 || b.content_size > kMaxBlock ||
        b.size > MaxFrameSize(b.content_size) || b.offset > h.base_size ||
        b.size > h.base_size - b.offset) {
      return VerificationError(what + ": base block of " + std::to_string(b.size) + " bytes at " +
                               std::to_string(b.offset) + " is not within the base image");
    }
    prefix += b.content_size;
  }
  if (prefix > kMaxBasePrefix) {
    return VerificationError(what + ": asks for " + std::to_string(prefix) +
                             " bytes of decoded base blocks, more than " +
                             std::to_string(kMaxBasePrefix));
  }
  uint64_t end = 0, length = e.decoded_length;
  for (const auto& b : e.blocks) {
    if (b.offset < end || b.offset > e.decoded_length || b.content_size == 0 ||
        b.content_size > kMaxBlock || b.content_size > e.decoded_length - b.offset ||
        b.size == 0 || b.size > MaxFrameSize(b.content_size) || b.level < 1 ||
        b.level > MaxFrameLevel()) {
      return VerificationError(what + ": block to compress at " + std::to_string(b.offset) +
                               " (" + std::to_string(b.content_size) + " bytes, level " +
                               std::to_string(b.level) + ") is not a block of the segment");
    }
    end = uint64_t{b.offset} + b.content_size;
    length = length - b.content_size + b.size;
  }
  if (length != e.length) {
    return VerificationError(what + ": its blocks make " + std::to_string(length) +
                             " bytes, not " + std::to_string(e.length));
  }
  return {};
}

}  // namespace

Result ParseRecords(const std::string& b, PatchHeader& h) {
  size_t at = 0;
  for (size_t i = 0; i < h.segments.size(); ++i) {
    SegmentEntry& e = h.segments[i];
    if (b.size() - at < (e.base_blocks.size() + e.blocks.size()) * kRecordSize) {
      return VerificationError("patch block records are truncated");
    }
    for (auto& r : e.base_blocks) {
      r.offset = Get(b, at, 8);
      r.size = static_cast<uint32_t>(Get(b, at + 8, 4));
      r.content_size = static_cast<uint32_t>(Get(b, at + 12, 4));
      at += kRecordSize;
    }
    for (auto& r : e.blocks) {
      r.offset = static_cast<uint32_t>(Get(b, at, 4));
      r.content_size = static_cast<uint32_t>(Get(b, at + 4, 4));
      r.size = static_cast<uint32_t>(Get(b, at + 8, 4));
      r.level = static_cast<int32_t>(static_cast<uint32_t>(Get(b, at + 12, 4)));
      at += kRecordSize;
    }
    if (auto r = CheckSegmentRecords(e, h, "patch segment " + std::to_string(i)); !r) return r;
  }
  if (at != b.size()) return VerificationError("patch block records: trailing bytes");
  return {};
}

}  // namespace osu::delta

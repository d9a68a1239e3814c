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
  Put32(s, kFormat);
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
    s += e.sha256;
  }
  return s;
}

Expected<PatchHeader> ParseFixed(const std::string& b, uint32_t* segment_count) {
  if (b.size() != kFixedSize || std::memcmp(b.data(), kMagic, sizeof kMagic) != 0) {
    return VerificationError("not an os-update patch (no OSUPATCH header)");
  }
  const auto format = static_cast<uint32_t>(Get(b, 8, 4));
  if (format != kFormat) {
    return VerificationError("patch format " + std::to_string(format) + " is not supported (" +
                             std::to_string(kFormat) + " is)");
  }
  PatchHeader h;
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
  if (h.target_size == 0 || *segment_count != SegmentCount(h.target_size, h.segment_size)) {
    return VerificationError("patch header: " + std::to_string(*segment_count) +
                             " segments do not cover an image of " +
                             std::to_string(h.target_size) + " bytes");
  }
  return h;
}

Result ParseEntries(const std::string& b, PatchHeader& h) {
  const size_t count = b.size() / kEntrySize;
  h.segments.clear();
  for (size_t i = 0; i < count; ++i) {
    SegmentEntry e;
    e.frame_size = static_cast<uint32_t>(Get(b, i * kEntrySize, 4));
    e.sha256 = b.substr(i * kEntrySize + 4, 64);
    if (!IsSha256Hex(e.sha256)) {
      return VerificationError("patch segment " + std::to_string(i) +
                               ": sha256 is not 64 hex digits");
    }
    if (e.frame_size == 0 || e.frame_size > MaxFrameSize(h.SegmentLength(i))) {
      return VerificationError("patch segment " + std::to_string(i) + ": frame of " +
                               std::to_string(e.frame_size) + " bytes for a segment of " +
                               std::to_string(h.SegmentLength(i)));
    }
    h.segments.push_back(std::move(e));
  }
  return {};
}

}  // namespace osu::delta

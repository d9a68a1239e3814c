#include "delta/chunk_index.hpp"

#include <algorithm>
#include <cstring>

#include "common/text.hpp"
#include "crypto/sha256.hpp"

namespace osu {
namespace {

constexpr char kMagic[8] = {'O', 'S', 'U', 'C', 'H', 'I', 'D', 'X'};
constexpr uint32_t kVersion = 2, kVersionWindow = 3;
constexpr size_t Header(uint64_t version) { return 8 + 4 * 4 + (version >= 3 ? 4 : 0) + 8 + 8; }
// Bytes of digest a chunk carries in each version (1: the whole sha256).
constexpr size_t DigestBytes(uint64_t version) { return version == 1 ? 32 : 16; }
// No chunker setting outside these bounds is ever written; a wider one is a forged index.
constexpr uint32_t kMaxChunk = 4u << 20;

void Put(std::string& s, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

uint64_t Get(const std::string& s, size_t pos, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i)
    v |= static_cast<uint64_t>(static_cast<uint8_t>(s[pos + static_cast<size_t>(i)])) << (8 * i);
  return v;
}

}  // namespace

std::string ChunkIndexName(const std::string& image_member) { return image_member + ".index"; }

Digest DigestOf(std::span<const uint8_t> data) {
  const auto full = Sha256Raw(data);
  Digest d;
  std::memcpy(d.data(), full.data(), d.size());
  return d;
}

std::string SerializeChunkIndex(const ChunkIndex& index) {
  std::string s(kMagic, sizeof kMagic);
  Put(s, index.window ? kVersionWindow : kVersion, 4);
  Put(s, index.sizes.min, 4);
  Put(s, index.sizes.avg, 4);
  Put(s, index.sizes.max, 4);
  if (index.window) Put(s, index.window, 4);
  Put(s, index.image_size, 8);
  Put(s, index.chunks.size(), 8);
  for (const auto& c : index.chunks) {
    Put(s, c.size, 4);
    Put(s, c.compressed_size, 4);
    s.append(reinterpret_cast<const char*>(c.digest.data()), c.digest.size());
  }
  return s;
}

Expected<ChunkIndex> ParseChunkIndex(const std::string& b, const std::string& where) {
  auto bad = [&](const std::string& why) {
    return VerificationError("chunk index of " + InQuotes(where) + ": " + why);
  };
  if (b.size() < Header(1) || std::memcmp(b.data(), kMagic, sizeof kMagic) != 0)
    return bad("not an os-update chunk index");
  const uint64_t version = Get(b, 8, 4);
  if (version != 1 && version != kVersion && version != kVersionWindow)
    return bad("unsupported version " + std::to_string(version));
  const size_t header = Header(version);
  if (b.size() < header) return bad("truncated header");
  const size_t entry = 4 + 4 + DigestBytes(version);
  ChunkIndex idx;
  idx.sizes.min = static_cast<uint32_t>(Get(b, 12, 4));
  idx.sizes.avg = static_cast<uint32_t>(Get(b, 16, 4));
  idx.sizes.max = static_cast<uint32_t>(Get(b, 20, 4));
  if (idx.sizes.min == 0 || idx.sizes.min > idx.sizes.avg || idx.sizes.avg > idx.sizes.max ||
      idx.sizes.max > kMaxChunk || (idx.sizes.avg & (idx.sizes.avg - 1)) != 0 ||
      idx.sizes.avg < 64)
    return bad("chunk sizes out of range");
  size_t at = 24;
  if (version >= kVersionWindow) {
    idx.window = static_cast<uint32_t>(Get(b, at, 4));
    at += 4;
    if (idx.window == 0 || idx.window > kMaxChunkWindow)
      return bad("window " + std::to_string(idx.window) + " out of range 1-" +
                 std::to_string(kMaxChunkWindow));
  }
  idx.image_size = Get(b, at, 8);
  const uint64_t count = Get(b, at + 8, 8);
  if (count > (b.size() - header) / entry || b.size() != header + count * entry)
    return bad("size " + std::to_string(b.size()) + " does not match its " +
               std::to_string(count) + " chunks");
  idx.chunks.resize(count);
  uint64_t offset = 0, compressed = 0;
  for (size_t i = 0; i < count; ++i) {
    const size_t p = header + i * entry;
    ChunkEntry& c = idx.chunks[i];
    c.size = static_cast<uint32_t>(Get(b, p, 4));
    c.compressed_size = static_cast<uint32_t>(Get(b, p + 4, 4));
    std::memcpy(c.digest.data(), b.data() + p + 8, c.digest.size());
    if (c.size == 0 || c.size > idx.sizes.max || c.compressed_size == 0 ||
        c.compressed_size > MaxFrameSize(c.size))
      return bad("chunk " + std::to_string(i) + " has an impossible size");
    c.offset = offset;
    c.compressed_offset = compressed;
    offset += c.size;
    compressed += c.compressed_size;
  }
  if (offset != idx.image_size)
    return bad("chunks add up to " + std::to_string(offset) + " bytes, the image is " +
               std::to_string(idx.image_size));
  idx.compressed_size = compressed;
  return idx;
}

std::span<uint8_t> DecodeWindow::Next(size_t size) {
  if (end_ + size > buf_.size()) {
    const size_t keep = std::min<size_t>(window_, end_);
    if (keep > 0) std::memmove(buf_.data(), buf_.data() + end_ - keep, keep);  // never on null
    end_ = keep;
    if (buf_.size() < keep + size) buf_.resize(std::max<size_t>(2 * size_t{window_}, keep + size));
  }
  start_ = end_;
  end_ += size;
  return {buf_.data() + start_, size};
}

std::span<const uint8_t> DecodeWindow::prefix() const {
  const size_t n = std::min<size_t>(window_, start_);
  return {buf_.data() + start_ - n, n};
}

Expected<size_t> ChunkStream::Read(std::span<uint8_t> out) {
  if (pos_ == chunk_.size()) {
    if (next_ == chunks_.size()) {
      if (auto r = End(); !r) return r.error();
      return size_t{0};
    }
    const std::span<uint8_t> into = window_.Next(chunks_[next_].size);
    if (auto r = Fill(next_, into); !r) return r.error();
    chunk_ = into;
    ++next_;
    pos_ = 0;
  }
  const size_t n = std::min(out.size(), chunk_.size() - pos_);
  std::memcpy(out.data(), chunk_.data() + pos_, n);
  pos_ += n;
  return n;
}

}  // namespace osu

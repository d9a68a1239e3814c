#include "delta/chunk_index.hpp"

#include <algorithm>
#include <cstring>

#include "common/text.hpp"
#include "crypto/sha256.hpp"

namespace osu {
namespace {

constexpr char kMagic[8] = {'O', 'S', 'U', 'C', 'H', 'I', 'D', 'X'};
constexpr uint32_t kVersion = 2, kVersionWindow = 3, kVersionRefs = 4;
constexpr size_t Header(uint64_t version) {
  return size_t{8 + 4 * 4 + 8 + 8} + (version >= 3 ? 4u : 0u) + (version >= 4 ? 4u : 0u);
}
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

uint64_t DeriveLastUses(std::vector<ChunkEntry>& chunks) {
  for (auto& c : chunks) c.last_use = 0;
  for (size_t i = 0; i < chunks.size(); ++i)
    for (uint32_t k = 0; k < chunks[i].ref_count; ++k)
      chunks[chunks[i].refs[k]].last_use = static_cast<uint32_t>(i);
  // A chunk is held from its turn to its last use: bytes kept, after each turn.
  std::vector<int64_t> change(chunks.size() + 1, 0);
  for (size_t j = 0; j < chunks.size(); ++j) {
    if (chunks[j].last_use == 0) continue;
    change[j] += chunks[j].size;
    change[chunks[j].last_use] -= chunks[j].size;
  }
  int64_t held = 0, most = 0;
  for (int64_t d : change) most = std::max(most, held += d);
  return static_cast<uint64_t>(most);
}

std::string SerializeChunkIndex(const ChunkIndex& index) {
  std::string s(kMagic, sizeof kMagic);
  Put(s, index.refs ? kVersionRefs : index.window ? kVersionWindow : kVersion, 4);
  Put(s, index.sizes.min, 4);
  Put(s, index.sizes.avg, 4);
  Put(s, index.sizes.max, 4);
  if (index.window) Put(s, index.window, 4);
  if (index.refs) Put(s, index.refs, 4);
  Put(s, index.image_size, 8);
  Put(s, index.chunks.size(), 8);
  uint64_t refs = 0;
  for (const auto& c : index.chunks) {
    Put(s, c.size, 4);
    Put(s, c.compressed_size, 4);
    s.append(reinterpret_cast<const char*>(c.digest.data()), c.digest.size());
    refs += c.ref_count;
  }
  if (index.refs) {
    Put(s, refs, 8);
    for (size_t i = 0; i < index.chunks.size(); ++i)
      for (uint32_t k = 0; k < index.chunks[i].ref_count; ++k) {
        Put(s, i, 4);
        Put(s, index.chunks[i].refs[k], 4);
      }
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
  if (version < 1 || version > kVersionRefs)
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
  if (version >= kVersionRefs) {
    idx.refs = static_cast<uint32_t>(Get(b, at, 4));
    at += 4;
    if (idx.refs == 0 || idx.refs > kMaxChunkRefs)
      return bad("references per chunk " + std::to_string(idx.refs) + " out of range 1-" +
                 std::to_string(kMaxChunkRefs));
  }
  idx.image_size = Get(b, at, 8);
  const uint64_t count = Get(b, at + 8, 8);
  // Version 4: the references follow the chunks (a count, then 8 bytes each).
  const size_t tail = version >= kVersionRefs ? 8 : 0;
  if (count > (b.size() - header) / entry || b.size() < header + count * entry + tail)
    return bad("size " + std::to_string(b.size()) + " does not match its " +
               std::to_string(count) + " chunks");
  const size_t refs_at = header + count * entry;
  const uint64_t ref_count = tail ? Get(b, refs_at, 8) : 0;
  if (ref_count > (b.size() - refs_at - tail) / 8 || b.size() != refs_at + tail + ref_count * 8)
    return bad("size " + std::to_string(b.size()) + " does not match its " +
               std::to_string(count) + " chunks and " + std::to_string(ref_count) + " references");
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
  uint64_t prev = 0;
  for (uint64_t r = 0; r < ref_count; ++r) {
    const uint64_t chunk = Get(b, refs_at + tail + r * 8, 4), of = Get(b, refs_at + tail + r * 8 + 4, 4);
    const std::string which = "reference " + std::to_string(r) + " (chunk " + std::to_string(chunk) +
                              " to chunk " + std::to_string(of) + ")";
    if (chunk >= count || of >= chunk) return bad(which + ": not to an earlier chunk");
    if (chunk < prev) return bad(which + ": out of order");
    prev = chunk;
    ChunkEntry& c = idx.chunks[chunk];
    if (c.ref_count == idx.refs) return bad(which + ": more than " + std::to_string(idx.refs));
    c.refs[c.ref_count++] = static_cast<uint32_t>(of);
  }
  if (const uint64_t held = DeriveLastUses(idx.chunks); held > kMaxReferenceBytes)
    return bad("its referenced chunks need " + std::to_string(held) + " bytes kept at once, at most " +
               std::to_string(kMaxReferenceBytes));
  return idx;
}

// The buffer: [room][image bytes, the last `window` of them kept][the chunk]; the room only
// ever holds copies of referenced chunks right before the window.
std::span<uint8_t> DecodeWindow::Next(size_t size) {
  if (end_ < room_) end_ = room_;
  if (end_ + size > buf_.size()) {
    const size_t keep = std::min<size_t>(window_, end_ - room_);
    if (keep > 0) std::memmove(buf_.data() + room_, buf_.data() + end_ - keep, keep);  // never on null
    end_ = room_ + keep;
    if (buf_.size() < end_ + size)
      buf_.resize(std::max<size_t>(room_ + 2 * size_t{window_}, end_ + size));
  }
  start_ = end_;
  end_ += size;
  return {buf_.data() + start_, size};
}

std::span<const uint8_t> DecodeWindow::prefix(std::span<const std::span<const uint8_t>> before) {
  const size_t n = std::min<size_t>(window_, start_ - std::min(start_, room_));
  size_t from = start_ - n, total = 0;
  for (const auto& b : before) total += b.size();
  if (total > room_ || total > from) return {};  // never: ChunkStream sizes the room
  for (auto b = before.rbegin(); b != before.rend(); ++b) {
    from -= b->size();
    if (!b->empty()) std::memcpy(buf_.data() + from, b->data(), b->size());
  }
  return {buf_.data() + from, start_ - from};
}

ChunkStream::ChunkStream(const ChunkIndex& index)
    : chunks_(index.chunks), window_(index.window, size_t{index.refs} * index.sizes.max) {}

Expected<size_t> ChunkStream::Read(std::span<uint8_t> out) {
  if (pos_ == chunk_.size()) {
    if (next_ == chunks_.size()) {
      if (auto r = End(); !r) return r.error();
      return size_t{0};
    }
    const ChunkEntry& c = chunks_[next_];
    const std::span<uint8_t> into = window_.Next(c.size);
    std::array<std::span<const uint8_t>, kMaxChunkRefs> refs;
    for (uint32_t k = 0; k < c.ref_count; ++k) {
      auto kept = kept_.find(c.refs[k]);
      if (kept == kept_.end())  // an index not from ParseChunkIndex (last uses not derived)
        return VerificationError("chunk " + std::to_string(next_) + " refers to chunk " +
                                 std::to_string(c.refs[k]) + ", which was not kept");
      refs[k] = kept->second;
    }
    if (auto r = Fill(next_, into, window_.prefix(std::span(refs).first(c.ref_count))); !r)
      return r.error();
    for (uint32_t k = 0; k < c.ref_count; ++k)
      if (chunks_[c.refs[k]].last_use == next_) kept_.erase(c.refs[k]);
    if (c.last_use > next_) kept_[static_cast<uint32_t>(next_)].assign(into.begin(), into.end());
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

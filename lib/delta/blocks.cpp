#include "delta/blocks.hpp"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <map>
#include <string_view>
#include <thread>
#include <unordered_set>

#include "delta/anchors.hpp"
#include "delta/patch_codec.hpp"

namespace osu::delta {
namespace {

std::string_view View(std::span<const uint8_t> data, uint64_t offset, uint32_t size) {
  return {reinterpret_cast<const char*>(data.data() + offset), size};
}

// Anchor key -> the base block it was first seen in, sorted by key.
using AnchorIndex = std::vector<std::pair<uint64_t, uint32_t>>;

AnchorIndex IndexBase(std::span<const uint8_t> base, const std::vector<ImageBlock>& blocks) {
  AnchorIndex index;
  std::vector<uint8_t> buf;
  for (size_t i = 0; i < blocks.size(); ++i) {
    const ImageBlock& b = blocks[i];
    buf.resize(b.content_size);
    if (!DecodeFrame(base.subspan(b.offset, b.size), buf)) continue;
    ForEachAnchor(buf, [&](uint64_t key) { index.emplace_back(key, static_cast<uint32_t>(i)); });
  }
  std::stable_sort(index.begin(), index.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  index.erase(std::unique(index.begin(), index.end(),
                          [](const auto& a, const auto& b) { return a.first == b.first; }),
              index.end());
  return index;
}

// The (at most two) base blocks sharing the most anchors with `content`, two at least, and
// the share of its anchors found in the base at all.
struct Likeness {
  std::vector<uint32_t> blocks;
  double share = 0;
};
Likeness Resembling(const AnchorIndex& index, std::span<const uint8_t> content) {
  std::map<uint32_t, uint32_t> votes;
  uint32_t anchors = 0, found = 0;
  ForEachAnchor(content, [&](uint64_t key) {
    ++anchors;
    auto it = std::lower_bound(index.begin(), index.end(), std::make_pair(key, uint32_t{0}));
    if (it != index.end() && it->first == key) {
      ++votes[it->second];
      ++found;
    }
  });
  return {MostVoted(votes, 2), anchors ? double(found) / anchors : 0.0};
}

// Which changed blocks go uncompressed (the others stay as they are): those with base blocks
// like them, but when more content than `share` of theirs would be compressed again on the
// device, the blocks whose carrying costs the fewest patch bytes per byte of content (the
// least like the base, the most compressible) stay compressed until it is not. The bytes a
// block adds as it is: about its compressed size times the share of it the base has.
std::vector<Likeness> ChooseUncompressed(const AnchorIndex& index, std::span<const uint8_t> target,
                                         const std::vector<ImageBlock>& changed,
                                         uint32_t segment_size, double share) {
  std::vector<Likeness> out(changed.size());
  std::vector<uint8_t> content;
  uint64_t total = 0;
  for (size_t i = 0; i < changed.size(); ++i) {
    const ImageBlock& b = changed[i];
    if (b.content_size > segment_size) continue;
    content.resize(b.content_size);
    if (!DecodeFrame(target.subspan(b.offset, b.size), content)) continue;
    out[i] = Resembling(index, content);
    if (!out[i].blocks.empty()) total += b.content_size;
  }
  if (share >= 1) return out;
  auto cost = [&](size_t i) { return out[i].share * changed[i].size / changed[i].content_size; };
  std::vector<size_t> order;
  for (size_t i = 0; i < changed.size(); ++i)
    if (!out[i].blocks.empty()) order.push_back(i);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return cost(a) < cost(b); });
  const auto budget = static_cast<uint64_t>(share * static_cast<double>(total));
  for (size_t i : order) {
    if (total <= budget) break;
    total -= changed[i].content_size;
    out[i].blocks.clear();
  }
  return out;
}

// Levels to try, most likely first: mksquashfs's default (15), then the others.
std::vector<int> LevelOrder() {
  std::vector<int> order{15, 19, 3, 22, 9, 12, 6, 1};
  for (int l = 1; l <= MaxFrameLevel(); ++l) {
    if (std::find(order.begin(), order.end(), l) == order.end()) order.push_back(l);
  }
  return order;
}

}  // namespace

std::vector<ImageBlock> FindBlocks(std::span<const uint8_t> image) {
  std::vector<ImageBlock> out;
  const uint8_t* data = image.data();
  for (size_t i = 0; i + 4 <= image.size();) {
    const void* hit = std::memchr(data + i, 0x28, image.size() - i);
    if (!hit) break;
    i = static_cast<size_t>(static_cast<const uint8_t*>(hit) - data);
    auto f = ProbeFrame(image.subspan(i), kMaxBlock);
    if (!f) {
      ++i;
      continue;
    }
    out.push_back({i, f->size, f->content_size, 0, f->checksum});
    i += f->size;
  }
  return out;
}

std::vector<ImageBlock> FindChangedBlocks(std::span<const uint8_t> target,
                                          const std::vector<ImageBlock>& base_blocks,
                                          std::span<const uint8_t> base, unsigned threads) {
  std::unordered_set<std::string_view> known;
  for (const auto& b : base_blocks) known.insert(View(base, b.offset, b.size));
  std::vector<ImageBlock> candidates;
  for (const auto& b : FindBlocks(target)) {
    // A frame with a checksum was not made as mksquashfs makes blocks: never reproducible.
    if (!b.checksum && !known.count(View(target, b.offset, b.size))) candidates.push_back(b);
  }
  const std::vector<int> order = LevelOrder();
  std::atomic<size_t> next{0};
  // Frames of another maker (files compressed inside an ext4, say) fail at every level:
  // after 64 such and none that worked, only the levels that worked are tried.
  std::atomic<unsigned> failed{0}, reproduced{0};
  auto work = [&] {
    auto compressor = MakeFrameCompressor();
    if (!compressor) return;
    std::vector<uint8_t> raw, again;
    int last = order.front();
    for (size_t i; (i = next++) < candidates.size();) {
      ImageBlock& b = candidates[i];
      raw.resize(b.content_size);
      again.resize(MaxFrameSize(b.content_size));
      if (!DecodeFrame(target.subspan(b.offset, b.size), raw)) continue;
      std::vector<int> tries{last};
      const bool all = reproduced > 0 || failed < 64;
      for (int l : order) {
        if (l != last && all) tries.push_back(l);
      }
      for (int level : tries) {
        auto n = (*compressor)->Compress(raw, level, again);
        if (n && *n == b.size && std::memcmp(again.data(), target.data() + b.offset, b.size) == 0) {
          b.level = last = level;
          ++reproduced;
          break;
        }
      }
      if (b.level == 0) ++failed;
    }
  };
  std::vector<std::thread> pool;
  for (unsigned t = 0; t < std::max(1u, threads); ++t) pool.emplace_back(work);
  for (auto& t : pool) t.join();
  std::erase_if(candidates, [](const ImageBlock& b) { return b.level == 0; });
  return candidates;
}

std::vector<SegmentPlan> PlanSegments(std::span<const uint8_t> base,
                                      const std::vector<ImageBlock>& base_blocks,
                                      std::span<const uint8_t> target,
                                      const std::vector<ImageBlock>& changed,
                                      uint32_t segment_size, double recompress_share) {
  const AnchorIndex index = IndexBase(base, base_blocks);
  const std::vector<Likeness> likeness =
      ChooseUncompressed(index, target, changed, segment_size, recompress_share);
  std::vector<SegmentPlan> out;
  SegmentPlan cur;
  std::vector<uint32_t> chosen;  // base blocks of the current segment
  uint64_t prefix = 0;
  auto flush = [&](uint64_t pos) {
    std::sort(chosen.begin(), chosen.end());
    for (uint32_t id : chosen) {
      const ImageBlock& b = base_blocks[id];
      cur.entry.base_blocks.push_back({b.offset, b.size, b.content_size});
    }
    out.push_back(std::move(cur));
    cur = SegmentPlan{};
    cur.offset = pos;
    chosen.clear();
    prefix = 0;
  };
  uint64_t pos = 0;
  size_t next = 0;
  while (pos < target.size()) {
    SegmentEntry& e = cur.entry;
    const uint32_t used = std::max(e.length, e.decoded_length);
    if (next < changed.size() && changed[next].offset == pos &&
        changed[next].content_size <= segment_size) {
      const ImageBlock& b = changed[next];
      const std::vector<uint32_t>& like = likeness[next].blocks;
      if (like.empty()) {
        // Nothing in the base to copy it from: its compressed bytes (made at the image's
        // level) are smaller than the patch's own coding of its content would be. Or kept so
        // by the share (ChooseUncompressed).
        ++next;
        continue;
      }
      std::vector<uint32_t> extra;
      uint64_t need = 0;
      for (uint32_t id : like) {
        if (std::find(chosen.begin(), chosen.end(), id) != chosen.end()) continue;
        extra.push_back(id);
        need += base_blocks[id].content_size;
      }
      const bool fits = uint64_t{used} + std::max(b.size, b.content_size) <= segment_size &&
                        prefix + need <= kMaxBasePrefix;
      if (!fits && used > 0) {
        flush(pos);
        continue;
      }
      if (prefix + need <= kMaxBasePrefix) {
        chosen.insert(chosen.end(), extra.begin(), extra.end());
        prefix += need;
      }
      e.blocks.push_back({e.decoded_length, b.content_size, b.size, b.level});
      e.decoded_length += b.content_size;
      e.length += b.size;
      pos += b.size;
      ++next;
      continue;
    }
    if (next < changed.size() && changed[next].offset == pos) ++next;  // too large: raw
    const uint64_t until = next < changed.size() ? changed[next].offset : target.size();
    if (used >= segment_size) {
      flush(pos);
      continue;
    }
    const auto n = static_cast<uint32_t>(std::min<uint64_t>(until - pos, segment_size - used));
    e.decoded_length += n;
    e.length += n;
    pos += n;
  }
  if (cur.entry.length > 0) flush(pos);
  return out;
}

Result DecodeSegment(std::span<const uint8_t> target, const SegmentPlan& plan,
                     std::span<uint8_t> out) {
  uint64_t from = plan.offset;
  uint32_t to = 0;
  auto copy = [&](uint32_t n) {
    std::memcpy(out.data() + to, target.data() + from, n);
    from += n;
    to += n;
  };
  for (const Recompress& b : plan.entry.blocks) {
    copy(b.offset - to);
    if (auto r = DecodeFrame(target.subspan(from, b.size), out.subspan(to, b.content_size)); !r) {
      return r;
    }
    from += b.size;
    to += b.content_size;
  }
  copy(plan.entry.decoded_length - to);
  return {};
}

uint64_t DecodedSize(const std::vector<BaseBlock>& blocks) {
  uint64_t n = 0;
  for (const auto& b : blocks) n += b.content_size;
  return n;
}

Result DecodeBaseBlocks(std::span<const uint8_t> base, const std::vector<BaseBlock>& blocks,
                        std::span<uint8_t> out) {
  size_t at = 0;
  for (const BaseBlock& b : blocks) {
    if (auto r = DecodeFrame(base.subspan(b.offset, b.size), out.subspan(at, b.content_size)); !r) {
      return r.error().Context("base block at byte " + std::to_string(b.offset));
    }
    at += b.content_size;
  }
  return {};
}

}  // namespace osu::delta

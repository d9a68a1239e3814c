#include "delta/plan.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "common/fd.hpp"
#include "common/text.hpp"
#include "compress/compression.hpp"

namespace osu {
namespace {

struct DigestHash {
  size_t operator()(const Digest& d) const {
    size_t h;
    std::memcpy(&h, d.data(), sizeof h);
    return h;
  }
};

// [offset, offset + size) of an fd, for the chunker.
class RegionReader final : public Reader {
 public:
  RegionReader(int fd, uint64_t offset, uint64_t size, std::string what)
      : fd_(fd), pos_(offset), end_(offset + size), what_(std::move(what)) {}
  Expected<size_t> Read(std::span<uint8_t> out) override {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(out.size(), end_ - pos_));
    if (n == 0) return size_t{0};
    if (auto r = PReadExact(fd_, out.first(n), pos_, what_); !r) return r.error();
    pos_ += n;
    return n;
  }

 private:
  int fd_;
  uint64_t pos_, end_;
  std::string what_;
};

}  // namespace

DeltaPlan PlanDelta(const ChunkIndex& index, const std::vector<LocalImage>& locals,
                    uint64_t merge_gap, uint64_t max_range,
                    const std::function<void(const std::string&)>& warn) {
  DeltaPlan plan;
  plan.sources.resize(index.chunks.size());
  plan.reused.assign(locals.size(), 0);
  // Each distinct chunk the image needs, with the first chunk that has it.
  std::unordered_map<Digest, size_t, DigestHash> wanted;
  wanted.reserve(index.chunks.size());
  for (size_t i = 0; i < index.chunks.size(); ++i) wanted.emplace(index.chunks[i].digest, i);
  // Where each wanted digest was found: (local, offset); the booted slot is scanned first.
  struct Found {
    uint8_t local;
    uint64_t offset;
  };
  std::unordered_map<Digest, std::vector<Found>, DigestHash> found;

  // Each local cut into as many parts as there are cores (at least 32 MiB each), every part on
  // its own thread; the hits are merged in locals' and parts' order afterwards. A part's chunking
  // starts at its own first byte: around each seam a chunk or two may not be found (fetched).
  struct Part {
    size_t local;
    uint64_t begin, end;
  };
  std::vector<Part> parts;
  const uint64_t cores = std::max(1u, std::thread::hardware_concurrency());
  std::vector<std::vector<std::pair<size_t, uint64_t>>> hits_of_known(locals.size());
  for (size_t l = 0; l < locals.size(); ++l) {
    if (const auto& known = locals[l].known) {
      for (const ChunkEntry& c : known->chunks)
        if (auto it = wanted.find(c.digest); it != wanted.end() && c.offset + c.size <= locals[l].size)
          hits_of_known[l].emplace_back(it->second, c.offset);
      continue;
    }
    const uint64_t size = locals[l].size;
    const uint64_t n = std::clamp<uint64_t>(size / (32u << 20), 1, cores);
    for (uint64_t k = 0; k < n; ++k) parts.push_back(Part{l, size * k / n, size * (k + 1) / n});
  }
  std::vector<std::vector<std::pair<size_t, uint64_t>>> hits(parts.size());  // (chunk, offset)
  std::vector<std::string> warnings(locals.size());
  std::mutex warn_mu;
  auto scan = [&](size_t p) {
    const Part& part = parts[p];
    const LocalImage& li = locals[part.local];
    auto fail = [&](const std::string& what) {
      std::lock_guard lock(warn_mu);
      if (warnings[part.local].empty()) warnings[part.local] = what;
    };
    auto fd = Fd::Open(li.path, O_RDONLY);
    if (!fd) return fail("Not looking for chunks in " + li.name + ": " + fd.error().message());
    RegionReader reader(fd->get(), li.offset + part.begin, part.end - part.begin, li.name);
    auto r = ForEachChunk(reader, part.end - part.begin, index.sizes,
                          [&](uint64_t offset, std::span<const uint8_t> data) -> Result {
                            if (auto it = wanted.find(DigestOf(data)); it != wanted.end())
                              hits[p].emplace_back(it->second, part.begin + offset);
                            return {};
                          });
    if (!r) fail("Stopped looking for chunks in " + li.name + ": " + r.error().message());
  };
  {
    std::vector<std::thread> threads;
    for (size_t p = 1; p < parts.size(); ++p) threads.emplace_back(scan, p);
    if (!parts.empty()) scan(0);
    for (auto& t : threads) t.join();
  }
  for (size_t l = 0; l < locals.size(); ++l)
    if (!warnings[l].empty() && warn) warn(warnings[l]);
  auto add = [&](size_t local, const std::vector<std::pair<size_t, uint64_t>>& from) {
    for (const auto& [chunk, offset] : from) {
      auto& v = found[index.chunks[chunk].digest];
      if (v.size() < 4) v.push_back(Found{static_cast<uint8_t>(local), offset});
    }
  };
  size_t p = 0;
  for (size_t l = 0; l < locals.size(); ++l) {
    add(l, hits_of_known[l]);
    for (; p < parts.size() && parts[p].local == l; ++p) add(l, hits[p]);
  }

  // Zeros: a frame of a few bytes that decodes to a whole chunk is worth one check.
  std::unordered_map<uint32_t, Digest> zero_digest;
  for (size_t i = 0; i < index.chunks.size(); ++i) {
    const ChunkEntry& c = index.chunks[i];
    DeltaPlan::Source& s = plan.sources[i];
    if (auto it = found.find(c.digest); it != found.end()) {
      for (const Found& f : it->second) {
        if (locals[f.local].is_target && f.offset < c.offset) continue;
        s = DeltaPlan::Source{DeltaPlan::From::Local, f.local, f.offset};
        plan.reused[f.local] += c.size;
        break;
      }
      if (s.from == DeltaPlan::From::Local) continue;
    }
    if (c.compressed_size < 64) {
      auto z = zero_digest.find(c.size);
      if (z == zero_digest.end()) {
        std::vector<uint8_t> zeros(c.size, 0);
        z = zero_digest.emplace(c.size, DigestOf(zeros)).first;
      }
      if (z->second == c.digest) {
        s.from = DeltaPlan::From::Zero;
        plan.zero_bytes += c.size;
        continue;
      }
    }
    // Fetched: extend the last range or start one.
    if (!plan.ranges.empty()) {
      DeltaPlan::Range& last = plan.ranges.back();
      const uint64_t end = last.offset + last.length;
      if (c.compressed_offset - end <= merge_gap &&
          c.compressed_offset + c.compressed_size - last.offset <= max_range) {
        plan.fetch_bytes += c.compressed_offset + c.compressed_size - end;
        last.length = c.compressed_offset + c.compressed_size - last.offset;
        continue;
      }
    }
    plan.ranges.push_back(DeltaPlan::Range{c.compressed_offset, c.compressed_size});
    plan.fetch_bytes += c.compressed_size;
  }
  return plan;
}

namespace {

class PlannedImage final : public ChunkStream {
 public:
  PlannedImage(const ChunkIndex& index, const DeltaPlan& plan,
               const std::vector<LocalImage>& locals, RangeSource& bundle, uint64_t member_offset,
               const ZstdDictionary* dictionary, DeltaCounters* counters)
      : ChunkStream(index), index_(index), plan_(plan), locals_(locals), bundle_(bundle),
        member_offset_(member_offset), dictionary_(dictionary), counters_(counters) {}

 private:
  // Every chunk goes through the window, local ones too: a fetched frame's prefix is the
  // image assembled before it, whichever way its bytes came.
  Result Fill(size_t i, std::span<uint8_t> chunk, std::span<const uint8_t> prefix) override {
    const ChunkEntry& c = index_.chunks[i];
    const DeltaPlan::Source& s = plan_.sources[i];
    const std::string what = "chunk " + std::to_string(i) + " (image bytes " +
                             std::to_string(c.offset) + "+" + std::to_string(c.size) + ")";
    switch (s.from) {
      case DeltaPlan::From::Zero:
        std::fill(chunk.begin(), chunk.end(), uint8_t{0});
        break;
      case DeltaPlan::From::Local: {
        const LocalImage& li = locals_[s.local];
        auto& fd = fds_[s.local];
        if (!fd) {
          auto opened = Fd::Open(li.path, O_RDONLY);
          if (!opened) return opened.error();
          fd = std::make_unique<Fd>(std::move(opened).value());
        }
        if (auto r = PReadExact(fd->get(), chunk, li.offset + s.offset, li.name); !r) return r;
        if (DigestOf(chunk) != c.digest) {
          if (li.known && counters_) counters_->stale_list = true;
          return VerificationError(what + ": " + li.name + " no longer holds it at byte " +
                                   std::to_string(s.offset) + " (the slot changed)");
        }
        break;
      }
      case DeltaPlan::From::Fetch: {
        if (auto r = Frame(c, chunk, prefix, what); !r) return r;
        break;
      }
    }
    if (counters_) {
      if (s.from != DeltaPlan::From::Fetch) counters_->reused += c.size;
      counters_->fetched = fetched_;
    }
    return {};
  }

  // The chunk's frame from the range that holds it: ranges come from the fetcher thread, in
  // plan order, while this thread copies and checks the chunks between them.
  Result Frame(const ChunkEntry& c, std::span<uint8_t> chunk, std::span<const uint8_t> prefix,
               const std::string& what) {
    while (!range_ || c.compressed_offset + c.compressed_size > range_->offset + range_->length) {
      if (next_range_ == plan_.ranges.size())
        return VerificationError(what + ": not in the planned ranges");
      if (!fetcher_) fetcher_ = std::make_unique<Fetcher>(plan_.ranges, bundle_, member_offset_);
      range_ = &plan_.ranges[next_range_++];
      if (c.compressed_offset < range_->offset) return VerificationError(what + ": ranges out of order");
      if (auto r = fetcher_->Next(buf_); !r) return r;
      fetched_ += range_->length;
    }
    const std::span<const uint8_t> frame(buf_.data() + (c.compressed_offset - range_->offset),
                                         c.compressed_size);
    if (auto r = ZstdDecompressFrame(frame, chunk, dictionary_, prefix); !r)
      return r.error().Context(what);
    if (DigestOf(chunk) != c.digest)
      return VerificationError(what + ": the fetched bytes do not match the signed index");
    return {};
  }

  // Fetches the planned ranges in order on its own thread, up to kAhead bytes ahead of the
  // reader: over a link, the wait for the next range overlaps the copying of local chunks.
  class Fetcher {
   public:
    static constexpr uint64_t kAhead = 16u << 20;
    Fetcher(const std::vector<DeltaPlan::Range>& ranges, RangeSource& bundle, uint64_t base)
        : thread_([this, &ranges, &bundle, base] { Run(ranges, bundle, base); }) {}
    ~Fetcher() {
      {
        std::lock_guard lock(mu_);
        stop_ = true;
      }
      cv_.notify_all();
      thread_.join();
    }
    // The next range's bytes (in order), or the fetch error.
    Result Next(std::vector<uint8_t>& out) {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return !ready_.empty() || !error_.ok(); });
      if (ready_.empty()) return error_;
      out = std::move(ready_.front());
      ready_.pop_front();
      queued_ -= out.size();
      cv_.notify_all();
      return {};
    }

   private:
    void Run(const std::vector<DeltaPlan::Range>& ranges, RangeSource& bundle, uint64_t base) {
      for (const DeltaPlan::Range& r : ranges) {
        {
          std::unique_lock lock(mu_);
          // One range may always be queued, however large: the reader needs it to go on.
          cv_.wait(lock, [&] { return stop_ || queued_ == 0 || queued_ + r.length <= kAhead; });
          if (stop_) return;
        }
        std::vector<uint8_t> buf(static_cast<size_t>(r.length));
        Result got = bundle.Read(base + r.offset, buf);
        std::lock_guard lock(mu_);
        if (!got) {
          error_ = got;
          cv_.notify_all();
          return;
        }
        queued_ += buf.size();
        ready_.push_back(std::move(buf));
        cv_.notify_all();
      }
    }

    std::mutex mu_;
    std::condition_variable cv_;
    std::deque<std::vector<uint8_t>> ready_;
    uint64_t queued_ = 0;
    Result error_;
    bool stop_ = false;
    std::thread thread_;  // last: started once the rest is set up
  };

  const ChunkIndex& index_;
  const DeltaPlan& plan_;
  const std::vector<LocalImage>& locals_;
  RangeSource& bundle_;
  uint64_t member_offset_;
  const ZstdDictionary* dictionary_;
  DeltaCounters* counters_;
  std::vector<uint8_t> buf_;
  size_t next_range_ = 0;
  const DeltaPlan::Range* range_ = nullptr;
  std::unordered_map<uint8_t, std::unique_ptr<Fd>> fds_;
  uint64_t fetched_ = 0;
  std::unique_ptr<Fetcher> fetcher_;  // last: its thread stops before the rest goes
};

}  // namespace

std::unique_ptr<Reader> MakePlannedImage(const ChunkIndex& index, const DeltaPlan& plan,
                                         const std::vector<LocalImage>& locals,
                                         RangeSource& bundle, uint64_t member_offset,
                                         const ZstdDictionary* dictionary,
                                         DeltaCounters* counters) {
  return std::make_unique<PlannedImage>(index, plan, locals, bundle, member_offset, dictionary,
                                        counters);
}

}  // namespace osu

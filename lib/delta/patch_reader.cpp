// The device side: a patch and the base slot in, the new image's bytes out, one verified
// segment at a time.
#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <cstring>
#include <thread>

#include "common/text.hpp"
#include "crypto/sha256.hpp"
#include "crypto/signature.hpp"
#include "delta/blocks.hpp"
#include "delta/mapping.hpp"
#include "delta/patch.hpp"
#include "delta/patch_codec.hpp"
#include "delta/patch_format.hpp"
#include "io/read_ahead.hpp"

namespace osu {

using delta::PatchHeader;

std::string PatchFileName(const std::string& bundle_name, const std::string& base_sha256) {
  return bundle_name + ".delta-" + base_sha256.substr(0, 16);
}

namespace {

constexpr size_t kReadAhead = size_t{8} << 20;

// Reads exactly out.size() bytes; fewer (end of stream) is a truncated patch.
Result ReadExactInto(Reader& in, std::span<uint8_t> out, const std::string& what) {
  size_t got = 0;
  while (got < out.size()) {
    auto n = in.Read(out.subspan(got));
    if (!n) return n.error();
    if (*n == 0) {
      return VerificationError("patch is truncated in " + what + " (" + std::to_string(got) +
                               " of " + std::to_string(out.size()) + " bytes)");
    }
    got += *n;
  }
  return {};
}

Expected<std::string> ReadExact(Reader& in, size_t size, const std::string& what) {
  std::string out(size, '\0');
  auto r = ReadExactInto(in, std::span<uint8_t>(reinterpret_cast<uint8_t*>(out.data()), size), what);
  if (!r) return r.error();
  return out;
}

std::string Short(const std::string& sha) { return sha.substr(0, 16); }

// Reads and checks everything before the first frame. Is the patch for this base and this
// target? Answered from the fixed fields before the rest is read; the signature then covers
// all of them and the segment table.
Expected<PatchHeader> ReadHeader(Reader& patch, const PatchExpectation& expect) {
  auto fixed = ReadExact(patch, delta::kFixedSize, "its header");
  if (!fixed) return fixed.error();
  uint32_t count = 0;
  auto h = delta::ParseFixed(*fixed, &count);
  if (!h) return h.error();
  if (h->base_sha256 != expect.base_sha256 || h->base_size != expect.base_size) {
    return VerificationError("patch is for base image " + Short(h->base_sha256) + " (" +
                             std::to_string(h->base_size) + " bytes), not for " +
                             Short(expect.base_sha256) + " (" +
                             std::to_string(expect.base_size) + " bytes)");
  }
  if (h->target_sha256 != expect.target_sha256 || h->target_size != expect.target_size) {
    return VerificationError("patch makes image " + Short(h->target_sha256) +
                             ", not the bundle's " + Short(expect.target_sha256));
  }
  auto entries = ReadExact(patch, size_t{count} * delta::EntrySize(*h), "its segment table");
  if (!entries) return entries.error();
  // Format 2: the entries say how many block records follow (parsed again once signed).
  if (auto r = delta::ParseEntries(*entries, *h); !r) return r.error();
  auto records = ReadExact(patch, delta::RecordBytes(*h), "its block records");
  if (!records) return records.error();
  auto sig_size = ReadExact(patch, 4, "its signature");
  if (!sig_size) return sig_size.error();
  uint32_t n = 0;
  for (int i = 3; i >= 0; --i) n = (n << 8) | static_cast<uint8_t>((*sig_size)[static_cast<size_t>(i)]);
  if (n == 0 || n > delta::kSignatureLimit) {
    return VerificationError("patch signature of " + std::to_string(n) + " bytes");
  }
  auto sig = ReadExact(patch, n, "its signature");
  if (!sig) return sig.error();
  auto key = VerifyWithAnyKey(*fixed + *entries + *records, *sig, expect.keys);
  if (!key) return key.error().Context("patch signature");
  if (auto r = delta::ParseRecords(*records, *h); !r) return r.error();
  return h;
}

class PatchedImageReader final : public Reader {
 public:
  PatchedImageReader(delta::Mapping base, std::unique_ptr<Reader> patch, PatchHeader header,
                     std::unique_ptr<delta::SegmentDecoder> decoder,
                     std::vector<std::unique_ptr<delta::FrameCompressor>> compressors,
                     std::string where)
      : base_(std::move(base)), patch_(std::move(patch)), header_(std::move(header)),
        decoder_(std::move(decoder)), compressors_(std::move(compressors)),
        where_(std::move(where)) {}

  ~PatchedImageReader() override {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    if (worker_.joinable()) worker_.join();
  }

  Expected<size_t> Read(std::span<uint8_t> buf) override {
    if (failed_) return *failed_;
    if (buf.empty() || done_) return size_t{0};
    if (pos_ == segment_.size()) {
      // The next segment is decoded while the caller writes this one (started on the first
      // read: a dry run that only opens the patch decodes nothing).
      if (!worker_.joinable()) worker_ = std::thread([this] { Work(); });
      Next next;
      {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [&] { return ready_.has_value(); });
        next = std::move(*ready_);
        ready_.reset();
        // The worker decodes the segment after it into this one's buffer: two in all.
        spare_ = std::move(segment_);
      }
      cv_.notify_all();
      if (next.error) return Fail(*next.error);
      if (next.end) {
        done_ = true;
        return size_t{0};
      }
      segment_ = std::move(next.bytes);
      pos_ = 0;
    }
    const size_t n = std::min(buf.size(), segment_.size() - pos_);
    std::memcpy(buf.data(), segment_.data() + pos_, n);
    pos_ += n;
    return n;
  }

 private:
  struct Next {
    std::vector<uint8_t> bytes;
    std::optional<Error> error;
    bool end = false;
  };

  // The worker thread: one segment after the other, each decoded once the previous one was
  // taken (so two segments at most: the caller's and the one being decoded), then the end.
  void Work() {
    for (size_t i = 0;; ++i) {
      Next n;
      {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [&] { return stop_ || !ready_.has_value(); });
        if (stop_) return;
        n.bytes = std::move(spare_);
      }
      if (i == header_.segments.size()) {
        if (auto r = CheckEnd(); r) {
          n.end = true;
        } else {
          n.error = r.error();
        }
      } else if (auto r = LoadSegment(i, n.bytes); !r) {
        n.error = r.error();
      }
      const bool last = n.end || n.error;
      {
        std::lock_guard lock(mu_);
        ready_ = std::move(n);
      }
      cv_.notify_all();
      if (last) return;
    }
  }

  Result LoadSegment(size_t i, std::vector<uint8_t>& segment) {
    const delta::SegmentEntry& e = header_.segments[i];
    const std::string what = "segment " + std::to_string(i);
    // Sized to this segment: the buffers never outgrow one segment and one frame.
    frame_.resize(e.frame_size);
    segment.resize(e.length);
    if (auto r = ReadExactInto(*patch_, frame_, what); !r) return r;
    // Format 2: the base blocks it names, decoded right before the base (the prefix).
    const uint64_t prefix = delta::DecodedSize(e.base_blocks);
    if (auto r = delta::DecodeBaseBlocks(base_.bytes(), e.base_blocks, base_.Room(prefix)); !r) {
      return VerificationError(what + ": " + r.error().message() +
                               "; the base slot is not what it claims");
    }
    if (e.blocks.empty()) {
      if (auto r = decoder_->Decode(base_.WithRoom(prefix), frame_, segment); !r) {
        return r.error().Context(what);
      }
    } else {
      decoded_.resize(e.decoded_length);
      if (auto r = decoder_->Decode(base_.WithRoom(prefix), frame_, decoded_); !r) {
        return r.error().Context(what);
      }
      if (auto r = CompressBlocks(e, what, segment); !r) return r;
    }
    const std::string got = Sha256Hex(segment);
    if (got != e.sha256) {
      // Either the patch was altered or the base slot no longer holds the base image.
      return VerificationError(what + ": sha256 mismatch (expected " + e.sha256 + ", got " +
                               got + "); the patch or the base slot is not what it claims");
    }
    return {};
  }

  // The segment from its decoded form: its blocks compressed again (on every core: level 15
  // is ~10x slower than the rest of the decoding), the bytes between copied.
  Result CompressBlocks(const delta::SegmentEntry& e, const std::string& what,
                        std::vector<uint8_t>& segment) {
    uint32_t from = 0, to = 0;
    std::vector<uint32_t> at;  // where each block goes in the segment
    for (const delta::Recompress& b : e.blocks) {
      std::memcpy(segment.data() + to, decoded_.data() + from, b.offset - from);
      to += b.offset - from;
      at.push_back(to);
      to += b.size;
      from = b.offset + b.content_size;
    }
    std::memcpy(segment.data() + to, decoded_.data() + from, e.decoded_length - from);
    std::atomic<size_t> next{0};
    std::vector<Result> results(compressors_.size());
    auto work = [&](size_t t) {
      std::vector<uint8_t> out;
      for (size_t k; (k = next++) < e.blocks.size();) {
        const delta::Recompress& b = e.blocks[k];
        out.resize(delta::MaxFrameSize(b.content_size));
        auto n = compressors_[t]->Compress(
            std::span<const uint8_t>(decoded_).subspan(b.offset, b.content_size), b.level, out);
        if (!n) {
          results[t] = n.error().Context(what);
          return;
        }
        if (*n != b.size) {
          results[t] = VerificationError(
              what + ": a block compressed at level " + std::to_string(b.level) + " is " +
              std::to_string(*n) + " bytes, not " + std::to_string(b.size) +
              " (this device's zstd compresses otherwise than the builder's)");
          return;
        }
        std::memcpy(segment.data() + at[k], out.data(), b.size);
      }
    };
    std::vector<std::thread> pool;
    for (size_t t = 1; t < compressors_.size() && t < e.blocks.size(); ++t) pool.emplace_back(work, t);
    work(0);
    for (auto& t : pool) t.join();
    for (auto& r : results) {
      if (!r) return r;
    }
    return {};
  }

  Result CheckEnd() {
    uint8_t extra;
    auto n = patch_->Read(std::span<uint8_t>(&extra, 1));
    if (!n) return n.error();
    if (*n != 0) return VerificationError("trailing bytes after the last segment");
    return {};
  }

  Error Fail(const Error& e) {
    // Errors of the patch source (network) name themselves; ours get the patch's name.
    failed_ = e.kind() == ErrorKind::Verification ? e.Context(where_) : e;
    segment_.clear();
    pos_ = 0;
    return *failed_;
  }

  delta::Mapping base_;
  std::unique_ptr<Reader> patch_;
  PatchHeader header_;
  std::unique_ptr<delta::SegmentDecoder> decoder_;
  std::vector<std::unique_ptr<delta::FrameCompressor>> compressors_;  // format 2: one a core
  std::string where_;
  std::vector<uint8_t> frame_, decoded_;  // the worker's
  std::vector<uint8_t> segment_;          // the caller's
  size_t pos_ = 0;
  bool done_ = false;
  std::optional<Error> failed_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::optional<Next> ready_;    // decoded, not taken yet
  std::vector<uint8_t> spare_;  // the buffer the caller is done with
  bool stop_ = false;
  std::thread worker_;  // last: joined before the members it uses go
};

// Seconds this device takes to compress `bytes` of the header's blocks again on `cores`
// cores, from compressing a sample of the base blocks it names (each is what a changed block
// was patched against) at the blocks' level. 0: nothing to sample, or the base slot does not
// decode (the segments will say so).
double EstimateRecompressSeconds(std::span<const uint8_t> base, const PatchHeader& h,
                                 delta::FrameCompressor& compressor, size_t cores,
                                 uint64_t bytes) {
  // Up to 8 blocks spread over the whole header (the first ones alone were 40-80% off on a
  // 1 GiB squashfs), ~1 MiB of content at most.
  constexpr size_t kSampleBlocks = 8;
  constexpr uint64_t kSampleBytes = 1u << 20;
  std::vector<const delta::BaseBlock*> all;
  int level = 0;
  for (const auto& e : h.segments) {
    if (level == 0 && !e.blocks.empty()) level = e.blocks.front().level;
    for (const auto& b : e.base_blocks) all.push_back(&b);
  }
  std::vector<delta::BaseBlock> sample;
  uint64_t content = 0;
  const size_t stride = std::max<size_t>(1, all.size() / kSampleBlocks);
  for (size_t i = 0; i < all.size() && sample.size() < kSampleBlocks && content < kSampleBytes;
       i += stride) {
    sample.push_back(*all[i]);
    content += all[i]->content_size;
  }
  if (sample.empty() || level == 0 || content == 0) return 0;
  std::vector<uint8_t> decoded(content), out;
  if (!delta::DecodeBaseBlocks(base, sample, decoded)) return 0;
  const auto start = std::chrono::steady_clock::now();
  size_t at = 0;
  for (const auto& b : sample) {
    out.resize(delta::MaxFrameSize(b.content_size));
    if (!compressor.Compress(std::span<const uint8_t>(decoded).subspan(at, b.content_size), level, out))
      return 0;
    at += b.content_size;
  }
  const std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
  return took.count() * static_cast<double>(bytes) / static_cast<double>(content) /
         static_cast<double>(std::max<size_t>(cores, 1));
}

}  // namespace

Expected<std::unique_ptr<Reader>> OpenPatchedImage(const PatchBase& base_slot,
                                                   std::unique_ptr<Reader> patch,
                                                   const PatchExpectation& expect,
                                                   const std::string& where,
                                                   PatchFacts* facts) {
  auto header = ReadHeader(*patch, expect);
  if (!header) {
    const Error& e = header.error();
    return e.kind() == ErrorKind::Verification || e.kind() == ErrorKind::Usage
               ? e.Context(where)
               : e;
  }
  const std::string what = base_slot.name.empty() ? "the base image" : base_slot.name;
  if (expect.base_size > base_slot.length) {
    return StateError(what + " is " + std::to_string(base_slot.length) +
                      " bytes, smaller than the base image's " + std::to_string(expect.base_size));
  }
  const bool blocks = header->format == delta::kFormatBlocks;
  if (facts) {
    facts->recompress_bytes = 0;
    facts->recompress_seconds = 0;
    for (const auto& e : header->segments)
      for (const auto& b : e.blocks) facts->recompress_bytes += b.content_size;
  }
  auto base = delta::Mapping::Create(base_slot.fd, base_slot.offset, expect.base_size, what,
                                     blocks ? delta::kMaxBasePrefix : 0);
  if (!base) return base.error();
  auto decoder = delta::MakeSegmentDecoder();
  if (!decoder) return decoder.error();
  std::vector<std::unique_ptr<delta::FrameCompressor>> compressors;
  for (unsigned t = 0; blocks && t < std::max(1u, std::thread::hardware_concurrency()); ++t) {
    auto c = delta::MakeFrameCompressor();
    if (!c) return c.error();
    compressors.push_back(std::move(c).value());
  }
  if (facts && facts->estimate && facts->recompress_bytes > 0)
    facts->recompress_seconds = EstimateRecompressSeconds(
        base->bytes(), *header, *compressors.front(), compressors.size(), facts->recompress_bytes);
  // The frames are downloaded up to 8 MiB ahead while the worker decodes: over a slow link
  // the decoding hides behind the download instead of adding to it.
  return std::unique_ptr<Reader>(std::make_unique<PatchedImageReader>(
      std::move(base).value(), MakeReadAhead(std::move(patch), kReadAhead),
      std::move(header).value(),
      std::move(decoder).value(), std::move(compressors), where));
}

}  // namespace osu

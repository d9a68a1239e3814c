// xz with liblzma 5.4: a multi-threaded pull decoder and a multi-block encoder.
#include <lzma.h>
#include <sys/mman.h>

#include <algorithm>
#include <cstddef>
#include <cstdlib>
#include <cstdint>
#include <memory>
#include <vector>

#include "compress/codecs.hpp"

namespace osu::codec {
namespace {

// Memory the threaded decoder may use: worker input buffers, block decoders (9 MiB each for
// preset 6) and the output queue (a whole block each). For our 16 MiB blocks a block in
// flight costs ~30 MiB. At 64 MiB a finished block waiting for the copy stopped the second
// worker: the 1 GiB bench image took 5.1-5.5 s against 4.0-4.2 s for `xz -dc -T0` in the
// same runs. At 96 MiB both cores stay busy (4.4-4.9 s: decoding plus hashing saturate two
// cores). With the allocator below, RSS follows this figure (~115 MiB for the whole copy),
// inside apply's 128 MiB target. Bigger blocks get fewer threads, never a failure:
// memlimit_stop is unlimited, so at worst a block is decoded on one thread.
constexpr uint64_t kDecoderThreadingMemlimit = 96u << 20;

// liblzma's allocations of a block's size (output buffers, compressed input) are mapped and
// unmapped directly. Through malloc they would stay resident after free (glibc raises its
// mmap threshold after the first free of a large chunk and then serves them from the heap),
// and peak RSS would drift 30 MiB above the memory liblzma accounts for.
class MappingAllocator {
 public:
  static const lzma_allocator* get() {
    static const lzma_allocator allocator{&Alloc, &Free, nullptr};
    return &allocator;
  }

 private:
  static constexpr size_t kMapFrom = 1u << 20;
  // In front of every block: its total size, or 0 for one from malloc. Keeps max_align_t.
  static constexpr size_t kHeader = alignof(std::max_align_t);

  static void* Alloc(void*, size_t nmemb, size_t size) {
    if (size != 0 && nmemb > (SIZE_MAX - kHeader) / size) return nullptr;
    const size_t total = nmemb * size + kHeader;
    void* base;
    if (total >= kMapFrom) {
      base = ::mmap(nullptr, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (base == MAP_FAILED) return nullptr;
      *static_cast<size_t*>(base) = total;
    } else {
      base = std::malloc(total);
      if (base == nullptr) return nullptr;
      *static_cast<size_t*>(base) = 0;
    }
    return static_cast<uint8_t*>(base) + kHeader;
  }

  static void Free(void*, void* ptr) {
    if (ptr == nullptr) return;
    void* base = static_cast<uint8_t*>(ptr) - kHeader;
    const size_t mapped = *static_cast<size_t*>(base);
    if (mapped != 0) {
      ::munmap(base, mapped);
    } else {
      std::free(base);
    }
  }
};

const char* LzmaReason(lzma_ret ret) {
  switch (ret) {
    case LZMA_MEM_ERROR: return "out of memory";
    case LZMA_MEMLIMIT_ERROR: return "memory usage limit reached";
    case LZMA_FORMAT_ERROR: return "not in the xz format";
    case LZMA_OPTIONS_ERROR: return "unsupported compression options";
    case LZMA_DATA_ERROR: return "compressed data is corrupt";
    case LZMA_BUF_ERROR: return "unexpected end of input";
    case LZMA_UNSUPPORTED_CHECK: return "unsupported integrity check";
    case LZMA_PROG_ERROR: return "internal error (LZMA_PROG_ERROR)";
    default: return "unknown liblzma error";
  }
}

struct LzmaStream {
  lzma_stream s = LZMA_STREAM_INIT;
  LzmaStream() = default;
  LzmaStream(const LzmaStream&) = delete;
  LzmaStream& operator=(const LzmaStream&) = delete;
  ~LzmaStream() { lzma_end(&s); }
};

uint32_t ResolveThreads(unsigned threads) {
  if (threads == 0) {
    uint32_t n = lzma_cputhreads();
    threads = n > 0 ? n : OnlineCpus();
  }
  return std::min<uint32_t>(threads, 16384);  // liblzma's LZMA_THREADS_MAX (not public)
}

class XzDecoder final : public Reader {
 public:
  explicit XzDecoder(Reader& compressed) : in_(compressed), buf_(kInputChunk) {}

  Result Init(unsigned threads) {
    lzma_mt mt{};
    mt.flags = LZMA_CONCATENATED;  // several streams back to back, as `xz -dc` accepts
    mt.threads = ResolveThreads(threads);
    mt.timeout = 0;  // block until the workers make progress: we have nothing else to do
    mt.memlimit_threading = kDecoderThreadingMemlimit;
    mt.memlimit_stop = UINT64_MAX;
    z_.s.allocator = MappingAllocator::get();
    lzma_ret ret = lzma_stream_decoder_mt(&z_.s, &mt);
    if (ret != LZMA_OK) {
      return DeviceError(std::string("Failed to start the xz decoder: ") + LzmaReason(ret));
    }
    return {};
  }

  Expected<size_t> Read(std::span<uint8_t> out) override {
    if (done_ || out.empty()) return size_t{0};
    lzma_stream& s = z_.s;
    s.next_out = out.data();
    s.avail_out = out.size();
    while (s.avail_out > 0) {
      if (s.avail_in == 0 && action_ == LZMA_RUN) {
        auto n = in_.Read(buf_);
        if (!n) return n.error();
        if (*n == 0) action_ = LZMA_FINISH;
        s.next_in = buf_.data();
        s.avail_in = *n;
      }
      lzma_ret ret = lzma_code(&s, action_);
      if (ret == LZMA_STREAM_END) {
        done_ = true;
        break;
      }
      if (ret == LZMA_BUF_ERROR && action_ == LZMA_FINISH) {
        return VerificationError("xz stream is truncated");
      }
      if (ret != LZMA_OK) {
        return VerificationError(std::string("corrupt xz stream: ") + LzmaReason(ret));
      }
    }
    return out.size() - s.avail_out;
  }

 private:
  Reader& in_;
  std::vector<uint8_t> buf_;
  LzmaStream z_;
  lzma_action action_ = LZMA_RUN;
  bool done_ = false;
};

}  // namespace

Expected<std::unique_ptr<Reader>> MakeXzDecoder(Reader& compressed, unsigned threads) {
  auto decoder = std::make_unique<XzDecoder>(compressed);
  if (auto r = decoder->Init(threads); !r) return r.error();
  return std::unique_ptr<Reader>(std::move(decoder));
}

Result XzEncode(Reader& input, const ChunkSink& out, const EncodeOptions& options) {
  const int level = options.level < 0 ? 6 : options.level;
  if (level > 9) return UsageError("xz level " + std::to_string(level) + " is out of range 0-9");
  lzma_mt mt{};
  mt.threads = ResolveThreads(options.threads);
  // Independent blocks are what lets a device decode on all its cores.
  mt.block_size = options.xz_block_size;
  mt.timeout = 0;
  mt.preset = static_cast<uint32_t>(level);
  mt.check = LZMA_CHECK_CRC64;
  // Each encoder thread holds ~3 blocks plus the match finder (~130 MiB at preset 6, 16 MiB
  // blocks): stay within a quarter of RAM, as xz itself does, by using fewer threads.
  const uint64_t budget = lzma_physmem() / 4;
  while (mt.threads > 1 && budget > 0 && lzma_stream_encoder_mt_memusage(&mt) > budget) {
    --mt.threads;
  }
  LzmaStream z;
  lzma_ret ret = lzma_stream_encoder_mt(&z.s, &mt);
  if (ret != LZMA_OK) {
    return UsageError(std::string("Failed to start the xz encoder: ") + LzmaReason(ret));
  }
  std::vector<uint8_t> in_buf(kInputChunk), out_buf(kInputChunk);
  lzma_action action = LZMA_RUN;
  for (;;) {
    if (z.s.avail_in == 0 && action == LZMA_RUN) {
      auto n = input.Read(in_buf);
      if (!n) return n.error();
      if (*n == 0) action = LZMA_FINISH;
      z.s.next_in = in_buf.data();
      z.s.avail_in = *n;
    }
    z.s.next_out = out_buf.data();
    z.s.avail_out = out_buf.size();
    ret = lzma_code(&z.s, action);
    if (ret != LZMA_OK && ret != LZMA_STREAM_END) {
      return DeviceError(std::string("xz encoder failed: ") + LzmaReason(ret));
    }
    const size_t produced = out_buf.size() - z.s.avail_out;
    if (produced > 0) {
      if (auto r = out(std::span<const uint8_t>(out_buf.data(), produced)); !r) return r;
    }
    if (ret == LZMA_STREAM_END) return {};
  }
}

}  // namespace osu::codec

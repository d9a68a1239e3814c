// The build side: `os-update-bundle delta`. Frames are compressed on all cores (each one
// indexes the whole base again: that, not the coding, is the cost) and written in order.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "bundle/bundle.hpp"
#include "bundle/checked_reader.hpp"
#include "common/fd.hpp"
#include "common/text.hpp"
#include "crypto/sha256.hpp"
#include "crypto/signature.hpp"
#include "delta/blocks.hpp"
#include "delta/mapping.hpp"
#include "delta/patch.hpp"
#include "delta/patch_codec.hpp"
#include "delta/patch_format.hpp"

namespace osu {
namespace {

using delta::PatchHeader;

Expected<uint64_t> SizeOf(int fd, const std::string& what) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return ErrnoError("Failed to stat " + what);
  return static_cast<uint64_t>(st.st_size);
}

Expected<std::string> HashOf(std::span<const uint8_t> data) {
  Sha256 h;
  for (size_t at = 0; at < data.size(); at += 64u << 20) {
    h.Update(data.subspan(at, std::min<size_t>(64u << 20, data.size() - at)));
  }
  return h.HexDigest();
}

// Encodes `count` segments on `threads` threads, each with the function make_worker gave it,
// and hands the frames to `sink` in order. At most 2 frames per thread wait to be written:
// memory stays bounded.
using SegmentWork = std::function<Expected<std::vector<uint8_t>>(size_t)>;
Result EncodeSegments(size_t count, unsigned threads,
                      const std::function<Expected<SegmentWork>()>& make_worker,
                      const std::function<Result(size_t, const std::vector<uint8_t>&)>& sink) {
  std::mutex mu;
  std::condition_variable cv;
  std::map<size_t, Expected<std::vector<uint8_t>>> done;
  size_t next = 0, written = 0;
  bool stop = false;
  auto work = [&] {
    auto worker = make_worker();
    for (;;) {
      size_t i;
      {
        std::unique_lock lock(mu);
        cv.wait(lock, [&] { return stop || next >= count || next < written + 2 * threads; });
        if (stop || next >= count) return;
        i = next++;
      }
      Expected<std::vector<uint8_t>> frame =
          worker ? (*worker)(i) : Expected<std::vector<uint8_t>>(worker.error());
      std::lock_guard lock(mu);
      done.emplace(i, std::move(frame));
      cv.notify_all();
    }
  };
  std::vector<std::thread> pool;
  for (unsigned t = 0; t < threads; ++t) pool.emplace_back(work);
  Result result;
  while (written < count && result) {
    std::optional<Expected<std::vector<uint8_t>>> frame;
    {
      std::unique_lock lock(mu);
      cv.wait(lock, [&] { return done.count(written) > 0; });
      auto it = done.find(written);
      frame.emplace(std::move(it->second));
      done.erase(it);
    }
    result = *frame ? sink(written, **frame) : Result(frame->error());
    std::lock_guard lock(mu);
    ++written;
    if (!result) stop = true;
    cv.notify_all();
  }
  for (auto& t : pool) t.join();
  return result;
}

// Format 1: the target in segments of h.segment_size bytes, as the header's reader cuts them.
std::vector<delta::SegmentPlan> FixedSegments(const PatchHeader& h) {
  std::vector<delta::SegmentPlan> plans(delta::SegmentCount(h.target_size, h.segment_size));
  for (size_t i = 0; i < plans.size(); ++i) {
    plans[i].offset = uint64_t{h.segment_size} * i;
    plans[i].entry.length = plans[i].entry.decoded_length = h.SegmentLength(i);
  }
  return plans;
}

// An unlinked file in `dir` (nothing is left behind if the build stops).
Expected<Fd> TempFile(const std::string& dir) {
  auto fd = Fd::Open(dir.empty() ? "." : dir, O_TMPFILE | O_RDWR, 0600);
  if (!fd) return fd.error().Context("Failed to create a temporary file in " + InQuotes(dir));
  return fd;
}

Result CopyFile(int from, int to, const std::string& what) {
  if (::lseek(from, 0, SEEK_SET) != 0) return ErrnoError("Failed to rewind " + what);
  std::vector<uint8_t> buf(1u << 20);
  for (;;) {
    auto n = ReadFull(from, buf, what);
    if (!n) return n.error();
    if (*n == 0) return {};
    if (auto r = WriteAll(to, std::span<const uint8_t>(buf.data(), *n), what); !r) return r;
  }
}

Result CreatePatchFromFds(int base_fd, int target_fd, const std::string& private_key,
                          const std::string& output, const PatchOptions& options) {
  if (options.segment_size < delta::kMinSegment || options.segment_size > delta::kMaxSegment) {
    return UsageError("segment size must be " + std::to_string(delta::kMinSegment) + "-" +
                      std::to_string(delta::kMaxSegment) + " bytes");
  }
  auto base_size = SizeOf(base_fd, "the base image");
  if (!base_size) return base_size.error();
  auto target_size = SizeOf(target_fd, "the new image");
  if (!target_size) return target_size.error();
  auto base = delta::Mapping::Create(base_fd, 0, *base_size, "the base image");
  if (!base) return base.error();
  auto target = delta::Mapping::Create(target_fd, 0, *target_size, "the new image");
  if (!target) return target.error();
  // Refuse a key that cannot sign before minutes of compression.
  if (auto probe = Sign("probe", private_key); !probe) return probe.error();

  PatchHeader h;
  h.segment_size = options.segment_size;
  h.base_size = *base_size;
  h.target_size = *target_size;
  auto base_sha = HashOf(base->bytes());
  auto target_sha = HashOf(target->bytes());
  h.base_sha256 = *base_sha;
  h.target_sha256 = *target_sha;
  const unsigned threads =
      options.threads ? options.threads : std::max(1u, std::thread::hardware_concurrency());

  // Format 2 when the target has zstd blocks the base lacks and they can be made again here.
  std::vector<delta::SegmentPlan> plans;
  if (options.blocks) {
    const auto base_blocks = delta::FindBlocks(base->bytes());
    const auto changed =
        delta::FindChangedBlocks(target->bytes(), base_blocks, base->bytes(), threads);
    if (!changed.empty()) {
      plans = delta::PlanSegments(base->bytes(), base_blocks, target->bytes(), changed,
                                  options.segment_size, options.recompress_share);
    }
    if (std::none_of(plans.begin(), plans.end(),
                     [](const auto& p) { return !p.entry.blocks.empty(); })) {
      plans.clear();  // no block worth it: format 1, which every device reads
    } else {
      h.format = delta::kFormatBlocks;
    }
  }
  if (plans.empty()) plans = FixedSegments(h);
  for (auto& plan : plans) {
    plan.entry.sha256 = Sha256Hex(target->bytes().subspan(plan.offset, plan.entry.length));
    h.segments.push_back(plan.entry);
  }

  auto frames = TempFile(DirName(output));
  if (!frames) return frames.error();
  const std::string frames_what = "the patch's frames";
  const uint64_t room = h.format == delta::kFormatBlocks ? delta::kMaxBasePrefix : 0;
  auto make_worker = [&]() -> Expected<SegmentWork> {
    auto encoder =
        delta::MakeSegmentEncoder(*base_size + room, options.segment_size, options.level);
    if (!encoder) return encoder.error();
    // Each thread its own view of the base with room before it for decoded base blocks.
    auto view = delta::Mapping::Create(base_fd, 0, *base_size, "the base image", room);
    if (!view) return view.error();
    auto state = std::make_shared<std::pair<std::unique_ptr<delta::SegmentEncoder>,
                                            delta::Mapping>>(std::move(encoder).value(),
                                                             std::move(view).value());
    return SegmentWork([&, state](size_t i) -> Expected<std::vector<uint8_t>> {
      auto& [enc, base_view] = *state;
      const delta::SegmentPlan& plan = plans[i];
      const uint64_t prefix = delta::DecodedSize(plan.entry.base_blocks);
      if (auto r = delta::DecodeBaseBlocks(base_view.bytes(), plan.entry.base_blocks, base_view.Room(prefix));
          !r) {
        return r.error();
      }
      if (plan.entry.blocks.empty()) {
        return enc->Encode(base_view.WithRoom(prefix),
                           target->bytes().subspan(plan.offset, plan.entry.length));
      }
      std::vector<uint8_t> decoded(plan.entry.decoded_length);
      if (auto r = delta::DecodeSegment(target->bytes(), plan, decoded); !r) return r.error();
      return enc->Encode(base_view.WithRoom(prefix), decoded);
    });
  };
  if (auto r = EncodeSegments(plans.size(), threads, make_worker,
                              [&](size_t i, const std::vector<uint8_t>& f) {
                                h.segments[i].frame_size = static_cast<uint32_t>(f.size());
                                return WriteAll(frames->get(), f, frames_what);
                              });
      !r) {
    return r;
  }

  const std::string signed_part =
      delta::SerializeFixed(h) + delta::SerializeEntries(h) + delta::SerializeRecords(h);
  auto sig = Sign(signed_part, private_key);
  if (!sig) return sig.error();
  std::string head = signed_part;
  for (int i = 0; i < 4; ++i) head.push_back(static_cast<char>((sig->size() >> (8 * i)) & 0xff));
  head += *sig;

  const std::string staged = output + ".tmp";
  auto out = CreateStagedFile(staged);
  if (!out) return out.error();
  Result r = WriteAll(out->get(), std::span<const uint8_t>(
                                      reinterpret_cast<const uint8_t*>(head.data()), head.size()),
                      InQuotes(staged));
  if (r) r = CopyFile(frames->get(), out->get(), InQuotes(staged));
  if (r && ::fsync(out->get()) != 0) r = ErrnoError("Failed to fsync " + InQuotes(staged));
  if (r) r = RenameIntoPlace(staged, output);
  if (!r) {
    ::unlink(staged.c_str());
    return r;
  }
  return SyncDirectory(DirName(output));
}

// Decodes the image of `bundle` into an unlinked file in `dir`, checked against its manifest.
Expected<Fd> ExtractImage(const std::string& bundle, const std::string& dir,
                          std::string* sha256, std::string* compatible) {
  auto fd = Fd::Open(bundle, O_RDONLY);
  if (!fd) return UsageError(fd.error().message());
  auto source = MakeFdReader(fd->Release(), true, InQuotes(bundle));
  auto b = BundleReader::OpenUnverified(*source, bundle);
  if (!b) return b.error();
  for (;;) {
    auto member = (*b)->NextBootFile();
    if (!member) return member.error();
    if (!*member) break;
    std::vector<uint8_t> buf(1u << 16);
    for (;;) {
      auto n = (*member)->data->Read(buf);
      if (!n) return n.error();
      if (*n == 0) break;
    }
  }
  auto raw = (*b)->Image();
  if (!raw) return raw.error();
  const Manifest& m = (*b)->manifest();
  auto decoder = MakeImageDecoder(**b, **raw, 0);
  if (!decoder) return decoder.error();
  const std::string what = InQuotes(bundle) + ": image " + InQuotes(m.image.name);
  auto checked = MakeCheckedReader(**decoder, m.image.size, m.image.sha256, what);
  auto out = TempFile(dir);
  if (!out) return out.error();
  std::vector<uint8_t> buf(1u << 20);
  for (;;) {
    auto n = checked->Read(buf);
    if (!n) return n.error();
    if (*n == 0) break;
    if (auto r = WriteAll(out->get(), std::span<const uint8_t>(buf.data(), *n),
                          "a temporary file");
        !r) {
      return r.error();
    }
  }
  *sha256 = m.image.sha256;
  *compatible = m.compatible;
  return out;
}

}  // namespace

Result CreatePatch(const std::string& base, const std::string& target,
                   const std::string& private_key, const std::string& output,
                   const PatchOptions& options) {
  auto b = Fd::Open(base, O_RDONLY);
  if (!b) return UsageError(b.error().message());
  auto t = Fd::Open(target, O_RDONLY);
  if (!t) return UsageError(t.error().message());
  return CreatePatchFromFds(b->get(), t->get(), private_key, output, options);
}

Expected<std::string> CreateBundlePatch(const std::string& old_bundle,
                                        const std::string& new_bundle,
                                        const std::string& private_key, std::string output,
                                        const PatchOptions& options) {
  std::string old_sha, new_sha, old_compatible, new_compatible;
  const std::string dir = DirName(output.empty() ? new_bundle : output);
  auto base = ExtractImage(old_bundle, dir, &old_sha, &old_compatible);
  if (!base) return base.error();
  auto target = ExtractImage(new_bundle, dir, &new_sha, &new_compatible);
  if (!target) return target.error();
  if (old_compatible != new_compatible) {
    return UsageError(InQuotes(old_bundle) + " is for " + InQuotes(old_compatible) + ", " +
                      InQuotes(new_bundle) + " for " + InQuotes(new_compatible) +
                      ": no device moves from one to the other");
  }
  if (output.empty()) output = PatchFileName(new_bundle, old_sha);
  if (auto r = CreatePatchFromFds(base->get(), target->get(), private_key, output, options); !r) {
    return r.error();
  }
  return output;
}

}  // namespace osu

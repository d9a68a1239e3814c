#include "install/apply_delta.hpp"

#include <fcntl.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <functional>
#include <optional>

#include "bundle/bundle.hpp"
#include "bundle/checked_reader.hpp"
#include "common/fd.hpp"
#include "common/text.hpp"
#include "crypto/sha256.hpp"
#include "delta/chunk_index.hpp"
#include "delta/patch.hpp"
#include "delta/plan.hpp"
#include "delta/range_source.hpp"

namespace osu {

std::string PatchSlowerThanWhole(uint64_t patch_bytes, double recompress_seconds,
                                 uint64_t whole_bytes, double rate) {
  if (recompress_seconds <= 0 || rate <= 0) return "";
  const double patch = std::max(static_cast<double>(patch_bytes) / rate, recompress_seconds);
  const double whole = static_cast<double>(whole_bytes) / rate;
  if (patch <= whole) return "";
  auto seconds = [](double s) {
    char text[32];
    if (s < 1) std::snprintf(text, sizeof text, "%.0f ms", s * 1e3);
    else std::snprintf(text, sizeof text, "%.1f s", s);
    return std::string(text);
  };
  char rate_text[32];
  std::snprintf(rate_text, sizeof rate_text, "%.1f MB/s", rate / 1e6);
  return "compressing its zstd blocks again takes ~" + seconds(recompress_seconds) +
         " here, longer than the whole bundle's download at " + rate_text + " (~" +
         seconds(whole) + ")";
}

namespace {

// Every tar member before the image has a 512-byte ustar header (the bundle writer uses
// short names and sizes below 8 GiB) and data padded to 512 bytes.
uint64_t MemberSpan(uint64_t size) { return 512 + (size + 511) / 512 * 512; }

// The front of the bundle in growing ranges, 64 KiB doubling up to 1 MiB: what is
// read past the index (and dictionary) is image bytes a partial fetch may not need, so the
// last range stays small.
std::unique_ptr<Reader> FrontReader(RangeSource& source, uint64_t size,
                                    const uint64_t* cap = nullptr) {
  return MakeRangeReader(source, 0, size, 64u << 10, 1u << 20, cap);
}

Expected<std::string> FileSha256(const std::string& path) {
  auto fd = Fd::Open(path, O_RDONLY);
  if (!fd) return fd.error();
  auto reader = MakeFdReader(fd->Release(), true, path);
  Sha256 hash;
  std::vector<uint8_t> buf(1u << 20);
  for (;;) {
    auto n = reader->Read(buf);
    if (!n) return n.error();
    if (*n == 0) return hash.HexDigest();
    hash.Update(std::span<const uint8_t>(buf.data(), *n));
  }
}

// The chunk index, read from the bundle the first time the chunks are needed (a patch does
// without it).
using IndexLoader = std::function<Expected<const ChunkIndex*>()>;

class DeltaContent final : public SlotContent {
 public:
  DeltaContent(const SystemState& state, const BundleReader& b, IndexLoader index,
               RangeSource& source, std::vector<uint64_t> boot_offsets, uint64_t image_offset,
               std::string uri, SourceOptions options, bool try_patch, bool stored_lists,
               uint64_t whole_size)
      : state_(state), b_(b), load_index_(std::move(index)), source_(source),
        boot_offsets_(std::move(boot_offsets)), image_offset_(image_offset), whole_size_(whole_size),
        uri_(std::move(uri)), options_(std::move(options)), try_patch_(try_patch),
        stored_lists_(stored_lists) {}

  bool patched() const { return patched_; }
  uint64_t patch_size() const { return patch_size_; }
  uint64_t recompress_bytes() const { return recompress_bytes_; }
  // Ends the patch's reading (its download runs ahead on a thread of its own) so that the
  // counters below hold still.
  void StopPatch() {
    if (!patched_) return;
    failing_.reset();
    image_.reset();
    patch_.reset();
  }
  uint64_t patch_bytes() const { return patch_ranges_ ? patch_ranges_->bytes() : 0; }
  uint64_t patch_requests() const { return patch_ranges_ ? patch_ranges_->requests() : 0; }

  bool failed() const { return failed_; }
  const DeltaPlan& plan() const { return plan_; }
  const DeltaCounters& counters() const { return counters_; }
  uint64_t boot_fetched() const { return boot_fetched_; }
  uint64_t boot_reused() const { return boot_reused_; }

  Result Prepare(const Reporter& reporter) override {
    if (TryPatch(reporter)) return {};
    auto index = load_index_();
    if (!index) return Fail(index.error());
    index_ = *index;
    if (!b_.dictionary_bytes().empty()) {
      auto dict = ZstdDictionary::ForDecoding(AsBytes(b_.dictionary_bytes()));
      if (!dict) return Fail(dict.error());
      dictionary_ = std::move(dict).value();
    }
    const SlotId target = OtherSlot(state_.booted);
    for (SlotId id : {state_.booted, target}) {
      const Slot& slot = state_.slots[id];
      const auto& rec = state_.record(id);
      LocalImage li{"slot " + SlotName(id), slot.WritePath(), slot.WriteOffset(), 0, id == target};
      // The booted slot: its verified image. The target: whatever os-update last wrote there
      // (an older release, an install cut short), every chunk is checked anyway. A target
      // without a record (a new device's empty slot) is not read: a whole slot from an SD card
      // is ~20 s of reading for chunks it is unlikely to hold.
      if (id == state_.booted && rec && rec->state == SlotState::Verified) li.size = rec->size;
      if (id == target && rec) li.size = std::min(slot.part.size, index_->image_size);
      // A verified slot's stored chunk list, if made with the same chunk sizes: no reading.
      if (stored_lists_ && rec && rec->state == SlotState::Verified && li.size > 0) {
        li.known = StoredChunkList(id, *rec);
        if (li.known) li.size = rec->size;
      }
      if (li.size > 0) locals_.push_back(li);
      if (li.known)
        reporter.Info("Chunks of " + li.name + ": its stored chunk list (the slot is not read first)");
    }
    // Gaps of at most 4 KiB merged: on the 256 MiB ext4 bench (5% change) a 64 KiB gap
    // fetched 14.5 MB in 140 ranges, 4 KiB 12.0 MB in 239, none 12.0 MB in 272; a request
    // costs ~0.5 KiB of headers, so the bytes on the link are what the gap decides.
    plan_ = PlanDelta(*index_, locals_, 4u << 10, 8u << 20,
                      [&](const std::string& line) { reporter.Info(line); });
    std::string reused;  // " X from slot A, Y from slot B,"
    for (size_t i = 0; i < locals_.size(); ++i)
      reused += " " + HumanBytes(plan_.reused[i]) + " from " + locals_[i].name + ",";
    reporter.Info("Partial fetch: " + std::to_string(plan_.fetch_bytes) + " bytes (" +
                  HumanBytes(plan_.fetch_bytes) + ") of the image's " +
                  HumanBytes(index_->compressed_size) + " to download in " +
                  std::to_string(plan_.ranges.size()) + " ranges; reusing" + reused + " " +
                  HumanBytes(plan_.zero_bytes) + " of zeros");
    // Past this share, merged ranges and a later fallback could cost more than the whole.
    if (plan_.fetch_bytes > index_->compressed_size / 10 * 9)
      return Fail(SourceError("the device holds too little of the new image: a full download is cheaper"));
    return {};
  }

  Result StageBootFiles(SlotInstall& install, const Reporter& reporter) override {
    const auto& files = b_.manifest().boot_files;
    for (size_t i = 0; i < files.size(); ++i) {
      const FileEntry& f = files[i];
      const std::string what = InQuotes(b_.manifest().image.name) + ": boot file " + InQuotes(f.name);
      std::unique_ptr<Reader> data;
      std::optional<std::string> held = HeldBootFile(f);
      if (held) {
        auto fd = Fd::Open(*held, O_RDONLY);
        if (!fd) return Fail(fd.error());
        data = MakeFdReader(fd->Release(), true, *held);
        reporter.Info("Boot file " + f.name + " (" + HumanBytes(f.size) + "): copied from " + *held);
        boot_reused_ += f.size;
      } else {
        data = MakeRangeReader(source_, boot_offsets_[i], f.size, 4u << 20);
        reporter.Info("Boot file " + f.name + " (" + HumanBytes(f.size) + "): fetched");
        boot_fetched_ += f.size;
      }
      auto checked = MakeCheckedReader(*data, f.size, f.sha256, what);
      if (auto r = install.StageBootFile(f, *checked); !r) return Fail(r.error());
    }
    return {};
  }

  Expected<Reader*> Image() override {
    if (patch_) image_ = std::move(patch_);
    else image_ = MakePlannedImage(*index_, plan_, locals_, source_, image_offset_,
                                   dictionary_ ? &*dictionary_ : nullptr, &counters_);
    failing_ = std::make_unique<Marker>(*image_, *this);
    return failing_.get();
  }
  Result Finish() override { return {}; }

 private:
  // Marks the content failed when the image's own reading fails.
  class Marker final : public Reader {
   public:
    Marker(Reader& inner, DeltaContent& owner) : inner_(inner), owner_(owner) {}
    Expected<size_t> Read(std::span<uint8_t> out) override {
      auto n = inner_.Read(out);
      if (!n) owner_.failed_ = true;
      return n;
    }

   private:
    Reader& inner_;
    DeltaContent& owner_;
  };

  Error Fail(const Error& e) {
    failed_ = true;
    return e;
  }

  // The first choice: `<bundle>.delta-<base>` beside the bundle, for the booted slot's
  // verified image (lib/delta/patch.hpp). Only the booted slot: decoding reads any byte of the
  // base while the target is written, so a base in the target slot would be overwritten under
  // it (the chunks reuse the target slot instead). A missing patch is normal; a bad one is a
  // warning. The patch is read in growing single-range GETs, retried and resumed.
  bool TryPatch(const Reporter& reporter) {
    if (!try_patch_) return false;
    const Slot& slot = state_.slots[state_.booted];
    const auto& rec = state_.record(state_.booted);
    if (!rec || rec->state != SlotState::Verified || rec->sha256.empty()) return false;
    const std::string uri = PatchFileName(uri_, rec->sha256);
    const std::string where = DescribeSource(uri);
    auto not_used = [&](const Error& e) {
      const std::string& why = e.message();
      if (why.find("HTTP 404") != std::string::npos || why.find("not found") != std::string::npos ||
          why.find(std::strerror(ENOENT)) != std::string::npos)
        reporter.Info("No patch for slot " + SlotName(state_.booted) + "'s image at " + where);
      else
        reporter.Info("warning: patch " + where + " not used: " + why);
      return false;
    };
    auto ranges = OpenRangeSource(uri, options_);
    if (!ranges) return not_used(ranges.error());
    if (!*ranges) return false;  // a source read front to back only (the bundle's is not)
    patch_ranges_ = std::move(ranges).value();
    auto size = patch_ranges_->Size();
    if (!size) return not_used(size.error());
    // Its first MiB in one request, timed: the link's rate, for the choice below (the bytes
    // are the patch's own, not fetched again).
    auto probed = ProbeRange(*patch_ranges_, 0, *size, 1u << 20, 1u << 20);
    if (!probed) return not_used(probed.error());
    auto base = Fd::Open(slot.WritePath(), O_RDONLY);
    if (!base) return not_used(base.error());
    base_ = std::make_unique<Fd>(std::move(base).value());
    const PatchBase base_slot{base_->get(), slot.WriteOffset(), slot.part.size,
                              "slot " + SlotName(state_.booted)};
    PatchExpectation expect{rec->sha256, rec->size, b_.manifest().image.sha256,
                            b_.manifest().image.size, state_.config.keys};
    PatchFacts facts;
    facts.estimate = state_.config.delta_prefer == DeltaPrefer::Time;
    auto reader = OpenPatchedImage(base_slot, std::move(probed->reader), expect, where, &facts);
    if (!reader) return not_used(reader.error());
    if (state_.config.delta_prefer == DeltaPrefer::Time) {
      const double rate = state_.config.link_rate ? state_.config.link_rate : probed->bytes_per_second;
      if (auto why = PatchSlowerThanWhole(*size, facts.recompress_seconds, whole_size_, rate);
          !why.empty()) {
        reporter.Info("Patch " + where + " not used: " + why +
                      " (update.delta_prefer: bytes takes it)");
        return false;
      }
    }
    patch_ = std::move(reader).value();
    patched_ = true;
    patch_size_ = *size;
    recompress_bytes_ = facts.recompress_bytes;
    reporter.Info("Patch " + where + " against slot " + SlotName(state_.booted) + " (" +
                  rec->version + "): " + std::to_string(*size) + " bytes (" + HumanBytes(*size) +
                  ") to download" +
                  (recompress_bytes_ ? ", " + HumanBytes(recompress_bytes_) +
                                           " of zstd blocks to compress again here"
                                     : std::string()));
    return true;
  }

  std::shared_ptr<const ChunkIndex> StoredChunkList(SlotId id, const Record& rec) const {
    auto bytes = state_.boot().LoadChunkList(id);
    if (!bytes) return nullptr;
    auto list = ParseChunkIndex(*bytes, state_.boot().SlotDirectory(id) + "/chunks.idx");
    if (!list || list->image_size != rec.size || !(list->sizes == index_->sizes)) return nullptr;
    return std::make_shared<const ChunkIndex>(std::move(list).value());
  }

  // A boot file with the same sha256 in a slot's directory whose record lists it, checked
  // again now (a record is what was true once).
  std::optional<std::string> HeldBootFile(const FileEntry& f) const {
    for (SlotId id : {state_.booted, OtherSlot(state_.booted)}) {
      const auto& rec = state_.record(id);
      if (!rec || rec->state != SlotState::Verified) continue;
      for (const auto& held : rec->boot_files) {
        if (held.sha256 != f.sha256 || held.size != f.size) continue;
        const std::string path = state_.boot().SlotDirectory(id) + "/" + held.name;
        auto sha = FileSha256(path);
        if (sha && *sha == f.sha256) return path;
      }
    }
    return std::nullopt;
  }

  const SystemState& state_;
  const BundleReader& b_;
  IndexLoader load_index_;
  const ChunkIndex* index_ = nullptr;
  RangeSource& source_;
  std::vector<uint64_t> boot_offsets_;
  uint64_t image_offset_;
  uint64_t whole_size_;  // the bundle's bytes: a full download
  std::vector<LocalImage> locals_;
  DeltaPlan plan_;
  std::optional<ZstdDictionary> dictionary_;
  DeltaCounters counters_;
  std::unique_ptr<RangeSource> patch_ranges_;  // before the readers that use it
  std::unique_ptr<Fd> base_;
  std::unique_ptr<Reader> image_, failing_, patch_;
  std::string uri_;
  SourceOptions options_;
  uint64_t boot_fetched_ = 0, boot_reused_ = 0, patch_size_ = 0, recompress_bytes_ = 0;
  bool try_patch_, stored_lists_, failed_ = false, patched_ = false;
};

}  // namespace

Expected<std::optional<ApplyResult>> ApplyDelta(const SystemState& state, BootEnv& env,
                                                const std::string& uri,
                                                const SourceOptions& options,
                                                const ApplyRequest& request,
                                                const Reporter& reporter) {
  using None = std::optional<ApplyResult>;
  auto fall_back = [&](const std::string& why) -> Expected<None> {
    reporter.Info("warning: partial fetch not possible, downloading the whole bundle: " + why);
    return None();
  };
  if (auto r = CheckInstallAllowed(state); !r) return r.error();
  auto source = OpenRangeSource(uri, options);
  if (!source) return fall_back(source.error().message());
  if (!*source) return None();
  RangeSource& ranges = **source;
  auto size = ranges.Size();
  if (!size) return fall_back(size.error().message());
  if (request.target_length && *size != *request.target_length)  // TUF: the target's length
    return VerificationError(InQuotes(request.where) + " (against its TUF target): size mismatch (expected " +
                             std::to_string(*request.target_length) + " bytes, got " + std::to_string(*size) + ")");

  // The head only (manifest, signature): the index is fetched when the chunks are needed.
  uint64_t front_end = *size;  // lowered to the index's end once the manifest says where it is
  auto front = FrontReader(ranges, *size, &front_end);
  auto bundle = OpenRequestedHead(*front, request, state.config);
  if (!bundle) {
    // Signature and manifest errors are the same in a full download: no point in one.
    if (bundle.error().kind() == ErrorKind::Verification) return bundle.error();
    return fall_back(bundle.error().message());
  }
  BundleReader& b = **bundle;
  const Manifest& m = b.manifest();
  if (!m.index) return None();  // made with --no-chunks or before chunks: the full path

  // Where the members are: after the head (the tar reader says where it ends: a bundle that
  // another tool wrote for TUF may have no signature member at all), in manifest order, with
  // the manifest's sizes.
  uint64_t at = b.head_end() + MemberSpan(m.index->size);
  if (m.dictionary) at += MemberSpan(m.dictionary->size);
  front_end = std::min(at, *size);  // the front reads no further than the index (and dictionary)
  std::vector<uint64_t> boot_offsets;
  for (const auto& f : m.boot_files) {
    boot_offsets.push_back(at + 512);
    at += MemberSpan(f.size);
  }
  const uint64_t image_offset = at + 512;
  if (image_offset > *size)
    return fall_back("the bundle is " + std::to_string(*size) + " bytes, too short for its members");

  std::optional<ChunkIndex> index;
  bool index_refused = false;  // its bytes are not the signed ones: a full download has them too
  IndexLoader load_index = [&]() -> Expected<const ChunkIndex*> {
    if (index) return &*index;
    if (auto r = b.ReadIndex(); !r) {
      index_refused = r.error().kind() == ErrorKind::Verification;
      return r.error();
    }
    auto parsed = ParseChunkIndex(b.index_bytes(), request.where);
    if (!parsed) return parsed.error();
    // Frames made with a window decode only with one, and the full path goes by the format.
    if (auto why = IndexFormatMismatch(m, *parsed); !why.empty())
      return VerificationError("chunk index of " + InQuotes(request.where) + ": " + why);
    if (parsed->image_size != m.image.size)
      return SourceError("the chunk index describes an image of " +
                         std::to_string(parsed->image_size) + " bytes, the manifest one of " +
                         std::to_string(m.image.size));
    if (image_offset + parsed->compressed_size > *size)
      return SourceError("the bundle is " + std::to_string(*size) +
                         " bytes, too short for its chunk index");
    index = std::move(parsed).value();
    return &*index;
  };

  // The patch first; a patch that fails while decoding (truncated, tampered, the base slot
  // changed) is a warning and the chunks are tried: the target slot is written again.
  uint64_t patch_fetched = 0, patch_requests = 0;
  // A stored chunk list that no longer matches its slot (the slot changed under its record):
  // a warning, and the chunks once more with the slots read.
  bool try_patch = true, stored_lists = true;
  for (;;) {
    DeltaContent content(state, b, load_index, ranges, boot_offsets, image_offset, uri, options,
                         try_patch, stored_lists, *size);
    auto result = InstallContent(state, env, b, content, request, reporter);
    content.StopPatch();
    patch_fetched += content.patch_bytes();
    patch_requests += content.patch_requests();
    if (!result) {
      if (index_refused) return result.error();
      if (content.failed() && !request.dry_run) {
        if (content.patched()) {
          reporter.Info("warning: the patch failed, trying the chunks it lacks: " +
                        result.error().message());
          try_patch = false;
          continue;
        }
        if (content.counters().stale_list) {
          reporter.Info("warning: a stored chunk list is out of date, reading the slots: " +
                        result.error().message());
          try_patch = stored_lists = false;
          continue;
        }
      }
      if (content.failed() || result.error().kind() == ErrorKind::Verification ||
          result.error().kind() == ErrorKind::Source)
        if (!request.dry_run || content.failed()) return fall_back(result.error().message());
      return result.error();
    }
    DeltaSummary d;
    d.way = content.patched() ? "patch" : "chunks";
    d.planned = content.patched() ? content.patch_size() : content.plan().fetch_bytes;
    d.fetched = ranges.bytes() + patch_fetched;
    d.requests = ranges.requests() + patch_requests;
    d.reused = content.counters().reused + content.boot_reused();
    d.ranges = content.patched() ? 1 : content.plan().ranges.size();
    d.recompress_bytes = content.patched() ? content.recompress_bytes() : 0;
    result->delta = d;
    if (!request.dry_run)
      reporter.Info("Fetched " + HumanBytes(d.fetched) + " in " + std::to_string(d.requests) +
                    " requests; reused " + HumanBytes(d.reused) + " held by the device");
    return None(std::move(result).value());
  }
}

}  // namespace osu

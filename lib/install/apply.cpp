#include "install/apply.hpp"

#include <algorithm>
#include <chrono>

#include "boot/selection.hpp"
#include "bootenv/grub_slot_config.hpp"
#include "bootenv/pi_firmware.hpp"
#include "bootenv/uboot_slot_config.hpp"
#include "bundle/bundle.hpp"
#include "bundle/checked_reader.hpp"
#include "bundle/content_rules.hpp"
#include "common/fault.hpp"
#include "common/text.hpp"
#include "compress/compression.hpp"
#include "delta/chunk_index.hpp"
#include "device/block_device.hpp"
#include "device/storage_media.hpp"
#include "install/version.hpp"

namespace osu {
namespace {

// Why this device may not take the bundle yet because of its min_version (" needs at least
// ..."), or nothing. A device whose installed version is unknown does not meet a floor either:
// the floor stands for a migration the running system must already have made.
std::optional<std::string> BelowFloor(const SystemState& state, const std::string& min_version) {
  if (min_version.empty()) return std::nullopt;
  const std::string need = " needs at least version " + min_version + " installed";
  if (state.installed_version.empty())
    return need + ", and this device's version is unknown (slot " +
           SlotName(state.booted) + " has no verified record, '" +
           state.config.os_release_path + "' no IMAGE_VERSION or VERSION_ID)";
  if (CompareVersions(state.installed_version, min_version) < 0)
    return need + ", this device runs " + state.installed_version;
  return std::nullopt;
}

// The checks that need only the verified manifest. Nothing has been written when they fail.
Result CheckManifestAgainstDevice(const SystemState& state, const Manifest& m,
                                  bool allow_downgrade) {
  const Config& config = state.config;
  if (config.compatible.empty())
    return UsageError("config '" + config.path +
                      "': update.compatible is not set, so no bundle can be checked against "
                      "this device");
  if (m.compatible != config.compatible)
    return VerificationError("bundle is for '" + m.compatible + "', this device is '" +
                             config.compatible + "' (update.compatible)");
  if (!allow_downgrade && state.boot().WasRolledBack(m.version))
    return VerificationError("version " + m.version +
                             " was rolled back on this device (use --allow-downgrade)");
  return CheckVersionFloor(state, "bundle", m.version, m.min_version.value_or(""), allow_downgrade);
}

// The file the bootloader script reads for the slot's root= and command line.
Expected<BootSnippet> SlotBootSnippet(const Config& config, const Slot& slot,
                                      const Manifest& m) {
  const std::string root = "PARTUUID=" + slot.part.partuuid;
  if (slot.part.partuuid.empty())
    return StateError("slot " + SlotName(slot.id) + " (" + slot.Describe() +
                      ") has no partition UUID for the bootloader's root=");
  if (config.bootloader == Bootloader::Grub) {
    auto text = GrubSlotConfig(root, m.cmdline);
    if (!text) return text.error();
    return BootSnippet{"grub.cfg", *text};
  }
  if (config.bootloader == Bootloader::PiFirmware) {
    auto text = PiSlotCmdlineText(root, slot.id, m.cmdline);
    if (!text) return text.error().Context("bundle's cmdline");
    return BootSnippet{kPiSlotCmdline, *text};
  }
  auto text = UbootSlotEnv(root, m.cmdline);
  if (!text) return text.error().Context("bundle's cmdline");
  return BootSnippet{"boot.env", *text};
}

}  // namespace

Result CheckVersionFloor(const SystemState& state, const std::string& what,
                         const std::string& version, const std::string& min_version,
                         bool allow_downgrade) {
  if (auto floor = BelowFloor(state, min_version))
    return VerificationError(what + " " + version + *floor);
  const std::string& installed = state.installed_version;
  if (!allow_downgrade && !installed.empty() && CompareVersions(version, installed) < 0)
    return VerificationError(what + " version " + version + " is older than the installed " +
                             installed + " (use --allow-downgrade)");
  return {};
}

Expected<CheckResult> JudgeRelease(const SystemState& state, const Manifest& m,
                                   const std::string& where) {
  CheckResult result;
  result.source = where;
  result.installed_version = state.installed_version;
  result.manifest = m;
  if (!state.config.compatible.empty() && m.compatible != state.config.compatible)
    return VerificationError("bundle is for '" + m.compatible + "', this device is '" +
                             state.config.compatible + "' (update.compatible)");
  if (state.boot().WasRolledBack(m.version)) {
    result.reason = "version " + m.version + " was rolled back on this device";
  } else if (auto floor = BelowFloor(state, m.min_version.value_or(""))) {
    // --apply would refuse it (exit 2): not an update this device can take yet.
    result.reason = m.version + *floor;
  } else if (state.installed_version.empty()) {
    result.update_available = true;
    result.reason = "installed version unknown";
  } else if (CompareVersions(m.version, state.installed_version) > 0) {
    result.update_available = true;
    result.reason = m.version + " is newer than " + state.installed_version;
  } else {
    result.reason = "up to date";
  }
  return result;
}

Expected<CheckResult> Check(const SystemState& state, Reader& source, const std::string& where) {
  auto bundle = BundleReader::OpenHead(source, where, state.config.keys);
  if (!bundle) return bundle.error();
  if (auto r = CheckBundleContent((*bundle)->manifest()); !r)
    return r.error().Context(InQuotes(where));
  return JudgeRelease(state, (*bundle)->manifest(), where);
}

Expected<std::unique_ptr<BlockDevice>> OpenTargetSlot(const SystemState& state, BootEnv& env,
                                                      SlotId target) {
  const Slot& slot = state.slots[target];
  BlockDeviceOptions dev_options;
  dev_options.offset = slot.WriteOffset();
  dev_options.size = slot.part.size;
  auto device = OpenBlockDevice(slot.WritePath(), dev_options);
  if (!device) return device.error();
  if (state.selection &&
      (state.selection->attempts(target) != 0 || state.selection->try_slot == target)) {
    BootSelection sel = *state.selection;
    sel.attempts(target) = 0;
    if (sel.try_slot == target) sel.try_slot.reset();
    FaultPoint("install: boot env, target out of the boot order");
    if (auto r = env.Apply(SelectionChanges(sel)); !r) return r.error();
  }
  return device;
}

CopyOptions SlotCopyOptions(const Config& config, const Slot& target, const Reporter& reporter,
                            uint64_t total) {
  CopyOptions copy;
  const StorageMedia media = ProbeStorageMedia(target.WritePath());
  copy.skip_unchanged = SkipUnchangedFor(config.skip_unchanged, media);
  if (copy.skip_unchanged)
    reporter.Info("Writing only the blocks that differ (install.skip_unchanged, " +
                  StorageMediaName(media) + ")");
  copy.verify_readback = config.verify_readback;
  if (reporter.progress) {
    auto progress = reporter.progress;
    copy.progress = [progress, total](uint64_t done) { progress(Progress{"write", done, total}); };
  }
  return copy;
}

void ReportUnchanged(const CopyOptions& copy, const CopyStats& stats, const Reporter& reporter) {
  if (copy.skip_unchanged)
    reporter.Info("Wrote " + HumanBytes(stats.bytes_written) + " of " + HumanBytes(stats.bytes) +
                  "; the rest was unchanged");
}

namespace {

// The bundle read front to back: today's full download.
class StreamedContent final : public SlotContent {
 public:
  // `whole`: the checked reader the bundle is read through (TUF), drained at the end.
  StreamedContent(BundleReader& b, unsigned threads, Reader* whole)
      : b_(b), threads_(threads), whole_(whole) {}
  Result StageBootFiles(SlotInstall& install, const Reporter& reporter) override {
    for (;;) {
      auto member = b_.NextBootFile();
      if (!member) return member.error();
      if (!*member) return {};
      reporter.Info("Boot file " + (*member)->entry->name + " (" +
                    HumanBytes((*member)->entry->size) + ")");
      if (auto r = install.StageBootFile(*(*member)->entry, *(*member)->data); !r)
        return r.error().Context("boot file '" + (*member)->entry->name + "'");
    }
  }
  Expected<Reader*> Image() override {
    auto image = b_.Image();
    if (!image) return image.error();
    auto decoder = MakeImageDecoder(b_, **image, threads_);
    if (!decoder) return decoder.error();
    decoder_ = std::move(decoder).value();
    return decoder_.get();
  }
  Result Finish() override {
    if (auto r = b_.Finish(); !r) return r;
    return whole_ ? Drain(*whole_) : Result{};
  }

 private:
  BundleReader& b_;
  unsigned threads_;
  Reader* whole_;
  std::unique_ptr<Reader> decoder_;
};

}  // namespace

Expected<std::unique_ptr<BundleReader>> OpenRequestedBundle(Reader& source, const ApplyRequest& request,
                                                            const Config& config) {
  // TUF mode: the manifest's hash from the verified target entry stands in for update.keys.
  if (!request.manifest_sha256.empty())
    return BundleReader::OpenWithManifestSha256(source, request.where, request.manifest_sha256);
  return BundleReader::Open(source, request.where, config.keys);
}

Expected<std::unique_ptr<BundleReader>> OpenRequestedHead(Reader& source, const ApplyRequest& request,
                                                          const Config& config) {
  if (!request.manifest_sha256.empty())
    return BundleReader::OpenHeadWithManifestSha256(source, request.where, request.manifest_sha256);
  return BundleReader::OpenHead(source, request.where, config.keys);
}

Expected<ApplyResult> Apply(const SystemState& state, BootEnv& env, Reader& source,
                            const ApplyRequest& request, const Reporter& reporter) {
  // Invariants 5 and 1: no trial pending; the target is neither committed nor mounted.
  if (auto r = CheckInstallAllowed(state); !r) return r.error();
  std::unique_ptr<Reader> whole;
  if (request.target_length)
    whole = MakeCheckedReader(source, *request.target_length, request.target_sha256,
                              InQuotes(request.where) + " (against its TUF target)");
  auto bundle = OpenRequestedBundle(whole ? *whole : source, request, state.config);
  if (!bundle) return bundle.error();
  StreamedContent content(**bundle, state.config.threads, whole.get());
  return InstallContent(state, env, **bundle, content, request, reporter);
}

Expected<ApplyResult> InstallContent(const SystemState& state, BootEnv& env,
                                     const BundleReader& b, SlotContent& content,
                                     const ApplyRequest& request, const Reporter& reporter) {
  const auto start = std::chrono::steady_clock::now();
  const Config& config = state.config;
  ApplyResult result;
  result.target = OtherSlot(state.booted);
  result.dry_run = request.dry_run;
  const Slot& target = state.slots[result.target];
  const char letter = SlotLetter(result.target);

  if (auto r = CheckInstallAllowed(state); !r) return r.error();
  if (auto r = CheckBundleContent(b.manifest()); !r)
    return r.error().Context(InQuotes(request.where));
  const Manifest& m = b.manifest();
  result.manifest = m;
  reporter.Info("Bundle " + m.version + " for " + m.compatible + ", signed by " + b.key_used());

  if (auto r = CheckManifestAgainstDevice(state, m, request.allow_downgrade); !r) return r.error();
  if (m.image.size > target.part.size)
    return VerificationError("image of " + std::to_string(m.image.size) + " bytes (" +
                             HumanBytes(m.image.size) + ") does not fit slot " + letter + " (" +
                             target.Describe() + ", " + std::to_string(target.part.size) +
                             " bytes)");

  auto snippet = SlotBootSnippet(config, target, m);
  if (!snippet) return snippet.error();

  reporter.Info(std::string("Target slot ") + letter + ": " + target.Describe() + ", " +
                HumanBytes(target.part.size) + "; image " + HumanBytes(m.image.size) + " " +
                CompressionName(m.compression) + ", " + std::to_string(m.boot_files.size()) +
                " boot files");
  if (auto r = content.Prepare(reporter); !r) return r.error();
  if (request.dry_run) return result;

  auto device = OpenTargetSlot(state, env, result.target);
  if (!device) return device.error();

  // From here on the slot's content is unknown until proven: record that first.
  Record installing;
  installing.slot = result.target;
  installing.version = m.version;
  installing.compatible = m.compatible;
  installing.cmdline = m.cmdline;
  installing.min_version = m.min_version.value_or("");
  auto install = SlotInstall::Begin(state.boot(), installing);
  if (!install) return install.error();
  auto fail = [&](const Error& error) { return install->Fail(error); };

  if (auto r = content.StageBootFiles(*install, reporter); !r) return fail(r.error());
  // The image's chunk index (checked against the signed manifest), if it describes this image:
  // the next partial fetch finds the slot's chunks through it without reading the slot first.
  if (auto idx = ParseChunkIndex(b.index_bytes(), request.where); idx && idx->image_size == m.image.size)
    if (auto r = install->StageChunkList(b.index_bytes()); !r)
      reporter.Info("warning: the chunk list of slot " + std::string(1, letter) +
                    " not kept (the next partial fetch reads the slot): " + r.error().message());
  auto decoded = content.Image();
  if (!decoded) return fail(decoded.error());

  CopyOptions copy = SlotCopyOptions(config, target, reporter, m.image.size);
  copy.expected_size = m.image.size;
  copy.expected_sha256 = m.image.sha256;
  auto copied = StreamToDevice(**decoded, **device, copy);
  if (!copied) return fail(copied.error().Context(std::string("slot ") + letter));
  result.copy = *copied;
  ReportUnchanged(copy, *copied, reporter);
  FaultPoint("apply: image written and synced");
  if (auto r = content.Finish(); !r) return fail(r.error());
  if (auto r = install->Finish(*snippet, copied->sha256, copied->bytes); !r)
    return fail(r.error());

  result.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

}  // namespace osu

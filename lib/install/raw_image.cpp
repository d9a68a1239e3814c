#include "install/raw_image.hpp"

#include <chrono>

#include "boot/selection.hpp"
#include "common/fault.hpp"
#include "device/block_device.hpp"
#include "install/stream_copy.hpp"

namespace osu {

Result CheckUnsignedImageAllowed(const Config& config, const std::string& where) {
  const std::string path = config.path.empty() ? std::string(kDefaultConfigPath) : config.path;
  // TUF mode installs only what its signed targets list: a raw image never is such a target,
  // so update.allow_unsigned_ssh cannot open a way around the metadata.
  if (!config.tuf_root.empty())
    return VerificationError("'" + where + "' serves an unsigned raw image; TUF mode (tuf.root in '" +
                             path + "') installs only bundles its targets metadata lists");
  if (config.allow_unsigned_ssh) return {};
  return VerificationError("'" + where + "' serves an unsigned raw image; set update.allow_unsigned_ssh: true in '" +
                           path + "' to accept it");
}

Expected<ApplyResult> ApplyRawImage(const SystemState& state, BootEnv& env, Reader& image,
                                    const RawImageRequest& request, const Reporter& reporter) {
  const auto start = std::chrono::steady_clock::now();
  const Config& config = state.config;
  if (auto r = CheckInstallAllowed(state); !r) return r.error();
  if (auto r = CheckUnsignedImageAllowed(config, request.where); !r) return r.error();

  ApplyResult result;
  result.target = OtherSlot(state.booted);
  result.manifest.version = kUnsignedVersion;
  result.manifest.compatible = config.compatible;
  const Slot& target = state.slots[result.target];
  const char letter = SlotLetter(result.target);
  reporter.Info(std::string("Unsigned raw image from ") + request.where + " into slot " + letter +
                ": " + target.Describe() + ", " + std::to_string(target.part.size) + " bytes");

  auto device = OpenTargetSlot(state, env, result.target);
  if (!device) return device.error();

  Record installing;
  installing.slot = result.target;
  installing.version = kUnsignedVersion;
  installing.compatible = config.compatible;
  installing.source = request.record_source;
  auto install = SlotInstall::Begin(state.boot(), installing);
  if (!install) return install.error();
  auto fail = [&](const Error& error) { return install->Fail(error); };
  if (auto r = install->RemoveBootFiles(); !r) return fail(r.error());

  // No manifest: the slot's size bounds the stream, and what arrived is what gets recorded.
  CopyOptions copy = SlotCopyOptions(config, target, reporter, 0);
  copy.size_is_limit = true;
  copy.expected_size = (*device)->size();
  auto copied = StreamToDevice(image, **device, copy);
  if (copied && copied->bytes == 0) copied = VerificationError("raw image is empty");
  if (!copied) return fail(copied.error().Context(std::string("slot ") + letter));
  result.copy = *copied;
  ReportUnchanged(copy, *copied, reporter);
  FaultPoint("apply raw: image written and synced");
  if (auto r = install->Finish(std::nullopt, copied->sha256, copied->bytes); !r)
    return fail(r.error());
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

}  // namespace osu

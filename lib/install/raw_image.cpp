#include "install/raw_image.hpp"

#include <dirent.h>
#include <unistd.h>

#include <chrono>
#include <cerrno>
#include <vector>

#include "boot/selection.hpp"
#include "common/fault.hpp"
#include "common/fd.hpp"
#include "device/block_device.hpp"
#include "install/stream_copy.hpp"

namespace osu {
namespace {

// Everything but the record: an older install's kernel and bootloader snippet must not be
// paired with the new root file system.
Result RemoveBootFiles(const std::string& dir) {
  std::vector<std::string> names;
  if (DIR* d = ::opendir(dir.c_str())) {
    while (dirent* e = ::readdir(d)) {
      std::string name = e->d_name;
      if (name != "." && name != ".." && name != "record.yml") names.push_back(name);
    }
    ::closedir(d);
  }
  for (const auto& name : names) {
    const std::string path = dir + "/" + name;
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) return ErrnoError("Failed to remove '" + path + "'");
  }
  return SyncDirectory(dir);
}

}  // namespace

Result CheckUnsignedImageAllowed(const Config& config, const std::string& where) {
  if (config.allow_unsigned_ssh) return {};
  return VerificationError("'" + where + "' serves an unsigned raw image; set update.allow_unsigned_ssh: true in '" +
                           (config.path.empty() ? std::string(kDefaultConfigPath) : config.path) +
                           "' to accept it");
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

  auto device = OpenTargetSlot(state, env, result.target,
                               "apply raw: boot env, target out of the boot order");
  if (!device) return device.error();

  Record record;
  record.slot = result.target;
  record.state = SlotState::Installing;
  record.version = kUnsignedVersion;
  record.compatible = config.compatible;
  record.source = request.record_source;
  record.updated_at = UtcNow();
  if (auto r = SaveRecord(config.boot_path, record); !r) return r.error();
  auto fail = [&](const Error& error) { return SaveInvalidRecord(config.boot_path, record, error); };
  if (auto r = RemoveBootFiles(SlotDirectory(config.boot_path, result.target)); !r) return fail(r.error());

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

  record.state = SlotState::Verified;
  record.sha256 = copied->sha256;
  record.size = copied->bytes;
  record.updated_at = UtcNow();
  if (auto r = SaveRecord(config.boot_path, record); !r) return fail(r.error());
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

}  // namespace osu

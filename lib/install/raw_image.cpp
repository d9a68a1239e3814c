#include "install/raw_image.hpp"

#include <dirent.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <vector>

#include "boot/selection.hpp"
#include "common/fault.hpp"
#include "common/fd.hpp"
#include "crypto/sha256.hpp"
#include "device/block_device.hpp"

namespace osu {
namespace {

constexpr size_t kChunk = 4u << 20;

// Fills buf unless the stream ends first; returns the bytes read.
Expected<size_t> ReadChunk(Reader& in, std::span<uint8_t> buf) {
  size_t have = 0;
  while (have < buf.size()) {
    auto n = in.Read(buf.subspan(have));
    if (!n) return n.error();
    if (*n == 0) break;
    have += *n;
  }
  return have;
}

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

Expected<CopyStats> CopyRaw(Reader& image, BlockDevice& device, const Reporter& reporter,
                            bool verify_readback, char letter) {
  CopyStats stats;
  Sha256 hash;
  std::vector<uint8_t> buf(kChunk);
  for (;;) {
    auto n = ReadChunk(image, buf);
    if (!n) return n.error();
    if (*n == 0) break;
    if (stats.bytes + *n > device.size())
      return VerificationError("raw image is larger than slot " + std::string(1, letter) + " (" +
                               device.name() + ", " + std::to_string(device.size()) +
                               " bytes): stopped at the slot's end");
    auto data = std::span<const uint8_t>(buf.data(), *n);
    if (auto r = device.WriteAt(stats.bytes, data); !r) return r.error();
    hash.Update(data);
    stats.bytes += *n;
    if (reporter.progress) reporter.progress(Progress{"write", stats.bytes, 0});
  }
  if (stats.bytes == 0) return VerificationError("raw image is empty");
  if (auto r = device.Sync(); !r) return r.error();
  stats.sha256 = hash.HexDigest();
  stats.bytes_written = device.bytes_written();
  if (verify_readback) {
    Sha256 again;
    for (uint64_t at = 0; at < stats.bytes;) {
      size_t want = static_cast<size_t>(std::min<uint64_t>(kChunk, stats.bytes - at));
      auto got = device.ReadAt(at, std::span(buf.data(), want));
      if (!got) return got.error();
      if (*got == 0) return DeviceError("'" + device.name() + "' ended early on read-back");
      again.Update(std::span<const uint8_t>(buf.data(), *got));
      at += *got;
    }
    if (again.HexDigest() != stats.sha256)
      return VerificationError("read-back of '" + device.name() + "' differs from what was written");
  }
  return stats;
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
  auto fail = [&](const Error& error) -> Error {
    Record invalid = record;
    invalid.state = SlotState::Invalid;
    invalid.reason = error.message();
    invalid.updated_at = UtcNow();
    (void)SaveRecord(config.boot_path, invalid);  // best effort: "installing" is not bootable either
    return error;
  };
  if (auto r = RemoveBootFiles(SlotDirectory(config.boot_path, result.target)); !r) return fail(r.error());

  auto copied = CopyRaw(image, **device, reporter, config.verify_readback, letter);
  if (!copied) return fail(copied.error().Context(std::string("slot ") + letter));
  result.copy = *copied;
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

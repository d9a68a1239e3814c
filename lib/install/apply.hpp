// --check and --apply: from a bundle source to a verified, recorded inactive slot.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "bootenv/boot_env.hpp"
#include "bootpart/boot_partition.hpp"
#include "bundle/manifest.hpp"
#include "device/block_device.hpp"
#include "install/stream_copy.hpp"
#include "install/system.hpp"
#include "io/stream.hpp"

namespace osu {

class BundleReader;

struct CheckResult {
  std::string source;
  std::string installed_version;  // "" when unknown
  Manifest manifest;
  bool update_available = false;
  std::string reason;  // why (not) available, one line
  std::string warning;  // said beside the answer (TUF: the clock used, no machine id)
};

// Reads only manifest and signature from `source` (which should be opened with a read limit).
Expected<CheckResult> Check(const SystemState& state, Reader& source, const std::string& where);
// What --check says of a release (a verified manifest, or a TUF target's signed fields).
Expected<CheckResult> JudgeRelease(const SystemState& state, const Manifest& m,
                                   const std::string& where);

struct ApplyRequest {
  std::string where;            // the source, for messages
  bool dry_run = false;         // verify manifest and signature, print the plan, write nothing
  bool allow_downgrade = false;  // also: a version this device rolled back from
  std::string manifest_sha256;  // TUF mode: the target's; trusted instead of update.keys
  // TUF mode: the target's length and sha256 of the whole bundle. A full download reads no
  // more than the length (one byte past it is an error) and checks the hash at its end,
  // before the slot is recorded as verified.
  std::optional<uint64_t> target_length;
  std::string target_sha256;
};

// What a partial fetch did (install/apply_delta.hpp).
struct DeltaSummary {
  std::string way;        // "patch" or "chunks"
  uint64_t planned = 0;   // compressed bytes of the image the plan fetches
  uint64_t fetched = 0;   // bytes received, front (manifest, index) and boot files included
  uint64_t requests = 0;  // range requests, retries included
  uint64_t reused = 0;    // image and boot file bytes the device already held
  uint64_t ranges = 0;
  uint64_t recompress_bytes = 0;  // a format 2 patch: zstd block content compressed again here
};

struct ApplyResult {
  SlotId target = SlotId::B;
  Manifest manifest;
  CopyStats copy;
  double seconds = 0;
  bool dry_run = false;
  std::optional<DeltaSummary> delta;  // set when a partial fetch filled the slot
};

// Whether the device may install into the inactive slot at all: not during a trial (invariant
// 5), not into the committed slot or a mounted one (invariant 1). State error otherwise.
// Apply() checks it first; the CLI also checks it before it opens (or downloads) a source.
Result CheckInstallAllowed(const SystemState& state);

// The downgrade floor of --apply and --activate: `version` not below the signed `min_version`
// (a device whose version is unknown does not meet one), and not older than the installed
// version unless allow_downgrade. Verification error otherwise.
// `what` names it in the message ("bundle", "slot B").
Result CheckVersionFloor(const SystemState& state, const std::string& what,
                         const std::string& version, const std::string& min_version,
                         bool allow_downgrade);

// Opens the target slot for writing, after taking it out of the boot order (no attempts, not
// the one-shot try): the bootloader must never fall back to a slot that is being rewritten.
Expected<std::unique_ptr<BlockDevice>> OpenTargetSlot(const SystemState& state, BootEnv& env,
                                                      SlotId target);

// What every install into a slot shares: skip-unchanged as configured for the slot's storage
// (said in an Info line when on), read-back verification, and progress out of `total` bytes
// (0: unknown). The caller sets the size and sha256 it expects.
CopyOptions SlotCopyOptions(const Config& config, const Slot& target, const Reporter& reporter,
                            uint64_t total);
// After a copy with skip_unchanged: how much of it was written (an Info line).
void ReportUnchanged(const CopyOptions& copy, const CopyStats& stats, const Reporter& reporter);

// The whole install into the slot that is neither booted nor committed:
//   refuse during a trial; verify signature, compatible, version floor, size
//   -> nothing written before this
//   -> boot env: target's attempts 0 and no OSU_TRY of it (the bootloader must not fall back
//      to a slot being rewritten); record "installing"
//   -> boot files staged -> image streamed, hashed, fsynced -> boot files and the slot's
//      bootloader snippet renamed into place -> record "verified".
// On failure after the record says "installing", the record is set to "invalid" with the reason.
// The bundle an apply installs: verified by update.keys, or in TUF mode by the target's
// manifest sha256 before its manifest is parsed.
Expected<std::unique_ptr<BundleReader>> OpenRequestedBundle(Reader& source, const ApplyRequest& request,
                                                            const Config& config);
// The same check, the manifest and signature only (BundleReader::OpenHead*).
Expected<std::unique_ptr<BundleReader>> OpenRequestedHead(Reader& source, const ApplyRequest& request,
                                                          const Config& config);

Expected<ApplyResult> Apply(const SystemState& state, BootEnv& env, Reader& source,
                            const ApplyRequest& request, const Reporter& reporter);

// Where a slot's boot files and decoded image come from: the bundle streamed front to back
// (Apply), or a partial fetch (install/apply_delta.hpp). The install around it is the same.
class SlotContent {
 public:
  virtual ~SlotContent() = default;
  // After the manifest checks, before --dry-run returns: say the plan (nothing written yet).
  virtual Result Prepare(const Reporter&) { return {}; }
  virtual Result StageBootFiles(SlotInstall& install, const Reporter& reporter) = 0;
  virtual Expected<Reader*> Image() = 0;  // the decoded image, checked by the install
  virtual Result Finish() = 0;            // after the image was read to its end
};

// Apply's steps after the bundle's manifest and signature were read and verified.
Expected<ApplyResult> InstallContent(const SystemState& state, BootEnv& env,
                                     const BundleReader& bundle, SlotContent& content,
                                     const ApplyRequest& request, const Reporter& reporter);

}  // namespace osu

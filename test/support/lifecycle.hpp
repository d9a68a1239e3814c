// Devices brought to a point of their life before the action under test runs (shared by the
// fault-injection and crash-state tests): one signed bundle per version for every device,
// all devices with the same key pair.
#pragma once

#include <string>

#include "support/device.hpp"

namespace osu::test {

inline constexpr uint64_t kLifecycleImageSize = (1u << 20) + 4096 * 3;

// Bundles "2.0" and "3.0" (zstd) of kLifecycleImageSize bytes, made once per process.
struct SharedBundles {
  TempDir dir;
  std::string v2, v3, private_key, public_key;
  SharedBundles();
};
SharedBundles& Shared();
void UseSharedKeys(FakeDevice& d);

// The kernel command line the last in-process --apply asked its (fake) activator to kexec.
std::string KexecCmdlineOfLastApply();

// --apply of 2.0 (kexec) and the trial "running": booted B on trial.
void ApplyAndRunTrial(FakeDevice& d);
// ... and --commit: B committed.
void ApplyTrialCommit(FakeDevice& d);
// --apply --no-activate of 2.0: B verified, still booted A.
void InstalledNotActivated(FakeDevice& d);
// Committed B, rolled back to A and booted there: 2.0 in B is a rejected version.
void RolledBackFromB(FakeDevice& d);

}  // namespace osu::test

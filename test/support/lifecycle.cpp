#include "support/lifecycle.hpp"

#include <catch2/catch.hpp>

#include <filesystem>

namespace osu::test {

SharedBundles::SharedBundles() {
  FakeDevice origin;
  private_key = dir / "private.pem";
  public_key = dir / "public.pem";
  std::filesystem::copy_file(origin.private_key(), private_key);
  std::filesystem::copy_file(origin.public_key(), public_key);
  const std::string image2 = origin.MakeImage("rootfs2.img", kLifecycleImageSize, 77);
  const std::string image3 = origin.MakeImage("rootfs3.img", kLifecycleImageSize, 78);
  v2 = dir / "v2.osu";
  v3 = dir / "v3.osu";
  std::filesystem::copy_file(origin.MakeBundle("v2.osu", image2, "2.0", "zstd"), v2);
  std::filesystem::copy_file(origin.MakeBundle("v3.osu", image3, "3.0", "zstd"), v3);
}

SharedBundles& Shared() {
  static SharedBundles shared;
  return shared;
}

void UseSharedKeys(FakeDevice& d) {
  std::filesystem::copy_file(Shared().public_key, d.public_key(),
                             std::filesystem::copy_options::overwrite_existing);
}

std::string KexecCmdlineOfLastApply() {
  for (const auto& call : LastActivatorCalls()) {
    if (call.rfind("load ", 0) != 0) continue;
    // "load <kernel> <initrd> <cmdline...>"
    auto first = call.find(' ', 5);
    auto second = call.find(' ', first + 1);
    return call.substr(second + 1);
  }
  return "";
}

void ApplyAndRunTrial(FakeDevice& d) {
  auto r = RunUpdate({"--config", d.config(), "--apply", Shared().v2});
  INFO(r.err);
  REQUIRE(r.code == 0);
  d.SetCmdline(KexecCmdlineOfLastApply());  // as if kexec'd into B
}

void ApplyTrialCommit(FakeDevice& d) {
  ApplyAndRunTrial(d);
  auto r = RunUpdate({"--config", d.config(), "--commit"});
  INFO(r.err);
  REQUIRE(r.code == 0);
}

void InstalledNotActivated(FakeDevice& d) {
  auto r = RunUpdate({"--config", d.config(), "--apply", Shared().v2, "--no-activate"});
  INFO(r.err);
  REQUIRE(r.code == 0);
}

void RolledBackFromB(FakeDevice& d) {
  ApplyTrialCommit(d);
  auto r = RunUpdate({"--config", d.config(), "--rollback"});
  INFO(r.err);
  REQUIRE(r.code == 0);
  d.SetCmdline("console=ttyS0 root=PARTLABEL=p.lxreadonly ro quiet");
}

}  // namespace osu::test

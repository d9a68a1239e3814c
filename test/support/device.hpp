// A whole fake device in a temp directory, built from partition-layouts/: a GPT disk image
// file with A/B slots, a boot directory, a kernel command line, a config, a signing key pair.
// os-update runs against it without root, exactly as on a device.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "support/support.hpp"

namespace osu::test {

struct Region {
  uint64_t offset = 0, size = 0;
};

class FakeDevice {
 public:
  explicit FakeDevice(const std::string& layout = "x86-kvm");

  const std::string& root() const { return dir_.path(); }
  std::string path(const std::string& name) const { return dir_ / name; }
  std::string disk() const { return path("disk.img"); }
  std::string boot() const { return path("boot"); }
  std::string config() const { return path("os-update.yml"); }
  std::string private_key() const { return path("keys/private.pem"); }
  std::string public_key() const { return path("keys/public.pem"); }
  std::string grubenv() const { return boot() + "/osu/grubenv"; }
  // The boot env as grub-editenv lists it, and one variable of it ("<unset>" if absent).
  std::string Env() const;
  std::string EnvVar(const std::string& name) const;

  // Partition regions read with `sfdisk --json` (the oracle), by PARTLABEL.
  Region Partition(const std::string& label) const;
  Region SlotA() const { return Partition("p.lxreadonly"); }
  Region SlotB() const { return Partition("p.lxrootclone1"); }

  // Rewrites the config; `extra` is appended verbatim (YAML sections), `update_extra` goes
  // into the update: section (indented "  key: value\n" lines).
  void WriteConfig(const std::string& extra = "", const std::string& compatible = "demo-x86_64",
                   const std::string& update_extra = "");
  void SetCmdline(const std::string& cmdline);
  // The boot partition of a Pi image on the Pi firmware backend: pi-firmware/'s files as
  // kiwi/config.sh installs them, slot A's device tree and cmdline.txt (the device tree listed
  // in A's record, as an install lists it), no grubenv, boot.bootloader: pi-firmware.
  void UsePiFirmware();
  // Lines (indented by two) added to the config's boot: section.
  void AddToBootSection(const std::string& lines);

  // A root image of `size` bytes: pseudo-random blocks mixed with zero runs (compressible,
  // but not trivially). Returns its path.
  std::string MakeImage(const std::string& name, uint64_t size, unsigned seed);
  // A bundle made with os-update-bundle create (in-process), signed with private_key().
  std::string MakeBundle(const std::string& name, const std::string& image,
                         const std::string& version, const std::string& compression = "xz",
                         const std::vector<std::string>& extra_args = {});
  // Two small boot files (vmlinuz, initrd.img) in the temp dir.
  std::vector<std::string> BootFiles();

  // Content fingerprint of a region of the disk image: sha256 over its data extents
  // (SEEK_DATA/SEEK_HOLE), so a write anywhere in it, even of zeros into a hole, shows.
  std::string Fingerprint(Region r) const;
  // sha256 of the first `length` bytes of a region (dd | sha256sum).
  std::string RegionSha256(Region r, uint64_t length) const;

  // Everything an apply must never change: slot A's bytes, A's boot directory and record,
  // the committed slot and its attempts in the boot env, the config. (Slot B may change; its
  // record must then say what happened.)
  std::string Snapshot() const;

 private:
  TempDir dir_;
  std::string layout_;
  mutable std::map<std::string, Region> partitions_;  // by PARTLABEL, from sfdisk -d
};

// os-update with the device's config: `--config <d.config()>` + args.
MainResult Update(FakeDevice& d, std::vector<std::string> args);

// One field of `os-update --status --json` ("slots.A.state"), as python3's json.dumps prints
// it ("B", true, 3, null): python3's json reads our JSON.
std::string StatusField(FakeDevice& d, const std::string& field);

}  // namespace osu::test

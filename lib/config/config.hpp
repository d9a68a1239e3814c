// /etc/os-update.yml. EOS's keys keep their meaning; every key is optional and a missing key
// is absent (its default applies), never the string "null".
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "slots/slots.hpp"

namespace osu {

inline constexpr const char* kDefaultConfigPath = "/etc/os-update.yml";

// pi-firmware: the Raspberry Pi firmware itself (config.txt / tryboot.txt, bootenv/pi_firmware.hpp).
enum class Bootloader { Grub, Uboot, PiFirmware };
// kexec: kexec_file_load the new slot's kernel and jump (bootloader env untouched).
// reboot: set the bootloader's one-shot OSU_TRY and reboot (Raspberry Pi: kexec unreliable;
// with the Pi firmware: tryboot.txt selects the slot, and the reboot carries "0 tryboot").
enum class Activation { Kexec, Reboot };
// Between the ways of a delta update (a patch, the chunks the device lacks): time = the one
// that ends soonest at the link's rate (a patch whose zstd blocks the device compresses again
// can lose to the chunks on a fast link), bytes = always the fewest bytes (a metered link).
enum class DeltaPrefer { Time, Bytes };
#if defined(__x86_64__)
inline constexpr Bootloader kNativeBootloader = Bootloader::Grub;
inline constexpr Activation kNativeActivation = Activation::Kexec;
#else
inline constexpr Bootloader kNativeBootloader = Bootloader::Uboot;
inline constexpr Activation kNativeActivation = Activation::Reboot;
#endif
std::string BootloaderName(Bootloader b);
std::string ActivationName(Activation a);

struct Config {
  std::string path;  // where it was read from ("" when no file)

  // update:
  std::string server;                // update.server: base URL (or EOS user@host for ssh)
  std::string name;                  // update.name: bundle name on the server
  std::string pkey;                  // update.pkey: EOS's key (ssh private key, kept as given)
  std::vector<std::string> keys;     // update.keys: PEM public keys trusted for bundles
  std::string compatible;            // update.compatible: must equal the manifest's
  std::string ca_file;               // update.ca_file: CA bundle for https
  std::string pinned_pubkey;         // update.pinned_pubkey: "sha256//<base64>[;sha256//...]"
  unsigned connect_timeout_s = 30;   // update.connect_timeout: seconds to connect (http, ssh)
  unsigned low_speed_limit = 1024;   // update.low_speed_limit: bytes/s ...
  unsigned low_speed_time_s = 60;    // update.low_speed_time: ... for this long aborts (0: never)
  unsigned retries = 3;              // update.retries: resumed attempts per download (http)
  std::string known_hosts;           // update.known_hosts: ssh host keys; "" = ssh's defaults
  bool allow_unsigned_ssh = false;   // update.allow_unsigned_ssh: accept ssh's raw images
  DeltaPrefer delta_prefer = DeltaPrefer::Time;  // update.delta_prefer: time | bytes
  unsigned link_rate = 0;            // update.link_rate: bytes/s for that choice; 0 = measured

  // slots:
  std::string disk;                  // slots.disk: disk or image file; "" = scan all devices
  SlotLabels labels;                 // slots.a / slots.b

  // boot:
  std::string boot_path = "/boot";   // boot.path: the mounted boot partition (ESP / RPi boot)
  Bootloader bootloader = kNativeBootloader;        // boot.bootloader: grub | uboot | pi-firmware
  std::string grubenv;               // boot.grubenv: "" = <boot.path>/osu/grubenv
  std::string fw_env_config = "/etc/fw_env.config";  // boot.fw_env_config (U-Boot)

  // activation: how a verified slot becomes the running system after --apply.
  Activation activation = kNativeActivation;

  // system: (inputs, so that tests run the whole tool on a fake system)
  std::string cmdline_path = "/proc/cmdline";          // system.cmdline
  std::string mountinfo_path = "/proc/self/mountinfo";  // system.mountinfo
  std::string lock_path = "/run/os-update.lock";        // system.lock
  std::string os_release_path = "/etc/os-release";      // system.os_release
  std::string systemd_path = "/run/systemd/system";     // system.systemd: exists = systemd runs
  std::string device_tree_path = "/proc/device-tree";   // system.device_tree: the Pi's tryboot flag
  std::string machine_id_path = "/etc/machine-id";      // system.machine_id: rollout's device id

  // install:
  bool verify_readback = false;      // install.verify: read the slot back after writing
  std::optional<bool> skip_unchanged;  // install.skip_unchanged: unset = on for flash media
  unsigned threads = 0;              // install.threads: decoder threads, 0 = all CPUs

  // tuf: (README "Trust"): set tuf.root and bundles are TUF targets of update.server.
  std::string tuf_root;              // tuf.root: the root.json shipped in the image
  std::string tuf_state_dir = "/var/lib/os-update/tuf";  // tuf.state_dir: outside both slots
  std::string tuf_build_time;        // tuf.build_time: "2026-01-31T00:00:00Z"; "" = tuf.root's mtime

  // The bundle URL: update.server + "/" + update.name + ".osu" ("" when not configured).
  // An ssh server (ssh://user@host[:port] or EOS's user@host) serves update.name + ".raw.dev".
  std::string DefaultSource() const;
  std::string GrubenvPath() const { return grubenv.empty() ? boot_path + "/osu/grubenv" : grubenv; }
};

// Reads `path`. `explicit_path`: the user named it (--config), so a missing file is an error;
// the default path may be missing (defaults apply). Errors are Usage errors:
// "config '/etc/os-update.yml': line 3: update.keys must be a list of file names".
Expected<Config> LoadConfig(const std::string& path, bool explicit_path);
Expected<Config> ParseConfig(const std::string& yaml, const std::string& path);

}  // namespace osu

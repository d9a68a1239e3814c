// The lifecycle over sequences: a model-based test that drives the real os-update (UpdateMain
// in-process: config, state, Apply, Activate, Commit, Rollback) on a temp-directory device
// through every sequence of events up to depth 4, and through a seeded random walk, checking
// the invariants after every step (DESIGN "Lifecycle"):
//   I1 the next power-on boots a slot whose bytes and boot files match its verified record,
//      and that slot has run to boot-complete before (committed), or it is a one-shot trial
//      whose committed fallback has attempts left; a kernel that does not come up ends, within
//      a few resets, in such a slot (never stranded);
//   I2 the running slot's bytes never change;
//   I3 a verified record matches its slot's bytes and a signed manifest;
//   I4 a refused command (non-zero exit, no power cut) changes nothing.
// Boots follow lib/boot/selection's SimulateBoot, which grub_cfg_test holds to the real
// grub.cfg in grub-emu and uboot_script_test to boot.cmd; on the Pi firmware backend they
// follow a simulated Pi 5 firmware (support/pi_firmware_sim.hpp) that reads config.txt, or
// tryboot.txt after a reboot with the tryboot flag, their includes and os_prefix. Power cuts stop the command at any
// of its fault points (the page cache kept: issue 16's crash-state test covers torn writes).
// A failure prints the sequence as the commands and events that reproduce it.
//
// Longer runs (the random walk's total steps over the four env backends, and its seed):
//   OSU_SEQUENCE_STEPS=1000000 OSU_SEQUENCE_SEED=7 build/test/osu-tests "*random walk*"
#include <fcntl.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <algorithm>
#include <filesystem>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <sstream>

#include "boot/selection.hpp"
#include "bootenv/boot_env.hpp"
#include "bootenv/pi_firmware.hpp"
#include "bootpart/boot_partition.hpp"
#include "common/fault.hpp"
#include "crypto/sha256.hpp"
#include "record/record.hpp"
#include "support/device.hpp"
#include "support/pi_firmware_sim.hpp"
#include "support/support.hpp"

using namespace osu::test;
using osu::SlotId;

namespace {

constexpr uint64_t kImageSize = 64 * 1024;

enum class Backend { Fake, Grub, Uboot, Pi };
std::string BackendName(Backend b) {
  switch (b) {
    case Backend::Fake: return "FakeBootEnv";
    case Backend::Grub: return "grubenv";
    case Backend::Uboot: return "U-Boot env";
    case Backend::Pi: return "Pi firmware";
  }
  return "?";
}

enum class Event {
  ApplyKexec,       // the next newer good bundle, activated by kexec
  ApplyReboot,      // ... by a one-shot reboot
  ApplyNoActivate,  // ... written and verified only
  ApplyBadKernel,   // a signed bundle whose kernel never comes up, --reboot
  ApplyUnhealthy,   // one that boots but never reaches boot-complete, --kexec
  ApplyCorrupt,     // a bundle whose image does not match its manifest
  ApplyOlder,       // an older version, --allow-downgrade --no-activate
  ActivateKexec,
  ActivateReboot,
  BootComplete,     // the commit unit: --commit, if the running system is healthy
  Rollback,
  RollbackReboot,
  PowerCycle,       // a reset: power cut, watchdog, or the trial timeout's reboot
  DamageRecord,     // the running slot's record.yml garbled
  DamageBootFile,   // the other slot's initrd changed
  TearEnv,          // the env's primary copy torn (grubenv; a U-Boot redundant copy)
  kCount
};

const char* EventName(Event e) {
  switch (e) {
    case Event::ApplyKexec: return "apply --kexec";
    case Event::ApplyReboot: return "apply --reboot";
    case Event::ApplyNoActivate: return "apply --no-activate";
    case Event::ApplyBadKernel: return "apply (kernel that does not boot) --reboot";
    case Event::ApplyUnhealthy: return "apply (health check fails) --kexec";
    case Event::ApplyCorrupt: return "apply (corrupt image)";
    case Event::ApplyOlder: return "apply (older) --allow-downgrade --no-activate";
    case Event::ActivateKexec: return "activate --kexec";
    case Event::ActivateReboot: return "activate --reboot";
    case Event::BootComplete: return "boot-complete: commit";
    case Event::Rollback: return "rollback";
    case Event::RollbackReboot: return "rollback --reboot";
    case Event::PowerCycle: return "power cycle";
    case Event::DamageRecord: return "damage the running slot's record";
    case Event::DamageBootFile: return "damage the initrd of the slot neither running nor committed";
    case Event::TearEnv: return "tear the env copy a cut write would tear";
    case Event::kCount: break;
  }
  return "?";
}

struct Step {
  Event event;
  long cut = 0;  // power cut at this fault point of the command (0: none)
};

std::string Describe(const std::vector<Step>& steps) {
  std::ostringstream s;
  for (size_t i = 0; i < steps.size(); ++i) {
    s << "  " << i + 1 << ". " << EventName(steps[i].event);
    if (steps[i].cut) s << ", power cut at its fault point #" << steps[i].cut;
    s << "\n";
  }
  return s.str();
}

struct Bundle {
  std::string path, version, image_sha256;
};

// Signed bundles made once for every world: good versions 2..9, and the hostile ones.
struct Bundles {
  TempDir dir;
  std::string private_key, public_key;
  std::vector<Bundle> good;  // versions 2.0 .. 9.0
  Bundle bad_kernel, unhealthy, corrupt, older;
  std::set<std::string> signed_images;
  // What each release's kernel and initrd are, by its image's sha256: a slot boots only with
  // the boot files of the image it holds.
  std::map<std::string, std::pair<std::string, std::string>> releases;

  Bundles() {
    FakeDevice origin;
    private_key = dir / "private.pem";
    public_key = dir / "public.pem";
    std::filesystem::copy_file(origin.private_key(), private_key);
    std::filesystem::copy_file(origin.public_key(), public_key);
    for (int v = 2; v <= 9; ++v)
      good.push_back(Make(origin, std::to_string(v) + ".0", 100u + static_cast<unsigned>(v), "good"));
    bad_kernel = Make(origin, "5.5", 201, "PANIC");
    unhealthy = Make(origin, "5.6", 202, "UNHEALTHY");
    older = Make(origin, "0.9", 203, "good");
    corrupt = Make(origin, "5.7", 204, "good");
    signed_images.erase(corrupt.image_sha256);
    releases.erase(corrupt.image_sha256);
    // One byte of the compressed image changed, after the signature: the stream fails its hash.
    std::string bytes = ReadFile(corrupt.path);
    // The image is the last member: its data ends in the last 512-byte block before the
    // archive's end (two zero blocks, then padding to a 10 KiB record). Change a byte there.
    size_t end = bytes.size();
    while (end > 0 && bytes[end - 1] == '\0') --end;
    REQUIRE(end > 512);
    bytes[end - 100] ^= 0x5a;
    corrupt.path = dir / "corrupt.osu";
    WriteFile(corrupt.path, bytes);
    REQUIRE(RunBundle({"verify", corrupt.path, "--key", public_key}).code == 2);
  }

  Bundle Make(FakeDevice& origin, const std::string& version, unsigned seed,
              const std::string& kernel) {
    const std::string image = origin.MakeImage("v" + version + ".img", kImageSize, seed);
    // A tag of its own: two images of only zero runs must still differ.
    std::string bytes = ReadFile(image);
    bytes.replace(0, 16, ("image " + version + "          ").substr(0, 16));
    WriteFile(image, bytes);
    const std::string kdir = dir / ("k" + version);
    std::filesystem::create_directories(kdir);
    const std::string vmlinuz = kernel + " kernel " + version + "\n";
    const std::string initrd = "initrd " + version + "\n";
    WriteFile(kdir + "/vmlinuz", vmlinuz);
    WriteFile(kdir + "/initrd.img", initrd);
    // The Pi firmware keeps a slot's os_prefix only when the board's device tree is there.
    WriteFile(kdir + "/" + kPi5DeviceTree, "device tree " + version + "\n");
    Bundle b;
    b.path = dir / ("v" + version + ".osu");
    b.version = version;
    b.image_sha256 = Sha256OfFile(image);
    auto r = RunBundle({"create", "--image", image, "--compression", "zstd", "--boot-file",
                        kdir + "/vmlinuz", "--boot-file", kdir + "/initrd.img", "--boot-file",
                        kdir + "/" + kPi5DeviceTree, "--cmdline",
                        "console=ttyS0", "--compatible", "demo-x86_64", "--version", version,
                        "--key", private_key, "--output", b.path});
    INFO(r.err);
    REQUIRE(r.code == 0);
    REQUIRE(signed_images.insert(b.image_sha256).second);
    releases[b.image_sha256] = {vmlinuz, initrd};
    return b;
  }
};

Bundles& SharedBundles() {
  static Bundles b;
  return b;
}

// The files a world's state lives in, saved and restored whole between sequences.
struct Saved {
  std::string slot_a, slot_b;
  std::map<std::string, std::string> boot_files;
  osu::EnvVars fake_env;
  std::string cmdline;
  std::map<SlotId, std::string> proven;
  long next_good = 0;
};

class World {
 public:
  explicit World(Backend backend)
      : backend_(backend), d_(backend == Backend::Pi ? "rpi5" : "x86-kvm") {
    const Bundles& bundles = SharedBundles();
    std::filesystem::copy_file(bundles.public_key, d_.public_key(),
                               std::filesystem::copy_options::overwrite_existing);
    a_ = d_.SlotA();
    b_ = d_.SlotB();
    // Factory: slot A holds a small image of version 1.0, recorded as committed.
    const std::string factory = d_.MakeImage("factory.img", kImageSize, 1);
    WriteFile(factory, "factory image 1.0" + ReadFile(factory).substr(17));
    WriteRegion(a_.offset, ReadFile(factory));
    factory_sha_ = Sha256OfFile(factory);
    osu::BootPartition boot(d_.boot());
    auto record = boot.LoadRecord(SlotId::A);
    REQUIRE(record);
    record->sha256 = factory_sha_;
    record->size = kImageSize;
    REQUIRE(boot.SaveRecord(*record));
    if (backend_ == Backend::Pi) d_.UsePiFirmware();
    if (backend_ == Backend::Uboot) UseUbootEnv();
    env_ = backend_ == Backend::Fake ? nullptr : MakeEnv();
    if (backend_ == Backend::Fake) {
      fake_.vars = {{"OSU_ORDER", "A B"}, {"OSU_A_LEFT", "3"}, {"OSU_B_LEFT", "0"}};
    }
    SetRunning(SlotId::A, false);
    proven_ = {{SlotId::A, factory_sha_}};
    initial_ = Save();
  }

  // Every sequence of up to `depth` events from the factory state, depth first: the state
  // after each prefix is saved once and restored for each of its continuations. Commands are
  // run whole, and once more cut at the fault point `cut_of(path)` picks.
  std::string Explore(int depth) {
    Restore(initial_);
    std::vector<Step> path;
    return ExploreFrom(depth, path);
  }
  size_t unique_states() const { return explored_.size(); }

  // One step from wherever the world is (the random walk).
  std::string Continue(const Step& step, std::vector<Step>& trail) {
    trail.push_back(step);
    std::string broken = Do(step);
    if (broken.empty()) broken = CheckInvariants();
    if (!broken.empty()) return "on " + BackendName(backend_) + ", after\n" + Describe(trail) + broken;
    return "";
  }

  void Reset() { Restore(initial_); }

 private:
  std::string ExploreFrom(int depth, std::vector<Step>& path) {
    if (depth == 0) return "";
    // The same state with the same events left to run was explored already: every sequence
    // from it was checked then (the invariants and every outcome depend on the state alone).
    if (!explored_.insert(StateKey() + "#" + std::to_string(depth)).second) return "";
    const Saved here = Save();
    for (long e = 0; e < static_cast<long>(Event::kCount); ++e) {
      for (int cut = 0; cut < 2; ++cut) {
        Step step{static_cast<Event>(e), 0};
        if (cut) {
          // The fault point depends on the event and the events left, not on the path, so
          // that a state explored once stands for every path to it.
          if (step.event > Event::RollbackReboot) continue;
          step.cut = 1 + (e * 5 + depth * 3) % 16;
        }
        Restore(here);
        path.push_back(step);
        std::string broken = Do(step);
        if (broken.empty()) broken = CheckInvariants();
        if (!broken.empty())
          return "on " + BackendName(backend_) + ", after\n" + Describe(path) + broken;
        if (auto deeper = ExploreFrom(depth - 1, path); !deeper.empty()) return deeper;
        path.pop_back();
      }
    }
    return "";
  }


  // The state, without what differs only in time: slots, boot files, records less their
  // timestamps, the env's bytes, what runs, and the model's own memory.
  std::string StateKey() {
    std::ostringstream s;
    s << SlotSha(SlotId::A) << SlotSha(SlotId::B) << " running " << osu::SlotName(running_)
      << (trial_ ? " trial" : "") << " next " << next_good_ % 8 << "\n";
    for (const auto& [slot, sha] : proven_) s << "proven " << osu::SlotName(slot) << sha << "\n";
    std::vector<std::string> files;
    for (const auto& e : std::filesystem::recursive_directory_iterator(d_.boot()))
      if (e.is_regular_file()) files.push_back(e.path().string());
    std::sort(files.begin(), files.end());
    for (const auto& f : files) {
      std::string bytes = ReadFile(f);
      if (f.size() > 10 && f.substr(f.size() - 10) == "record.yml") {
        if (auto r = osu::ParseRecord(bytes)) {
          r->updated_at = r->committed_at.empty() ? "" : "committed";
          r->committed_at.clear();
          bytes = osu::SerializeRecord(*r);
        }
      }
      s << f << " " << osu::Sha256Hex(bytes) << "\n";
    }
    for (const auto& f : EnvFiles()) s << f << " " << osu::Sha256Hex(ReadFile(f)) << "\n";
    for (const auto& [k, v] : fake_.vars) s << k << "=" << v << "\n";
    return s.str();
  }
  std::set<std::string> explored_;

 public:
  long steps_run = 0, commands = 0, refusals = 0, cuts = 0, boots = 0, resets = 0;

 private:
  // --- the device's state -------------------------------------------------------------

  void WriteRegion(uint64_t offset, const std::string& bytes) {
    ForgetSlotShas();
    int fd = ::open(d_.disk().c_str(), O_WRONLY | O_CLOEXEC);
    REQUIRE(fd >= 0);
    REQUIRE(::pwrite(fd, bytes.data(), bytes.size(), static_cast<off_t>(offset)) ==
            static_cast<ssize_t>(bytes.size()));
    ::close(fd);
  }
  std::string ReadRegion(uint64_t offset) const {
    std::string bytes(kImageSize, '\0');
    int fd = ::open(d_.disk().c_str(), O_RDONLY | O_CLOEXEC);
    REQUIRE(fd >= 0);
    REQUIRE(::pread(fd, bytes.data(), bytes.size(), static_cast<off_t>(offset)) ==
            static_cast<ssize_t>(bytes.size()));
    ::close(fd);
    return bytes;
  }
  // Hashed once between writes: the slots change only through a command or WriteRegion, and
  // a step asks for their hashes a dozen times (a fifth of the test's time before).
  std::string SlotSha(SlotId s) const {
    auto& cached = slot_sha_[s == SlotId::A ? 0 : 1];
    if (cached.empty()) cached = osu::Sha256Hex(ReadRegion(s == SlotId::A ? a_.offset : b_.offset));
    return cached;
  }
  void ForgetSlotShas() { slot_sha_[0].clear(), slot_sha_[1].clear(); }
  mutable std::string slot_sha_[2];

  void UseUbootEnv() {
    // A redundant U-Boot env in two files, as fw_env.config describes it.
    const std::string cfg = d_.path("fw_env.config");
    WriteFile(cfg, d_.path("uboot.env") + " 0x0 0x4000\n" + d_.path("uboot-redund.env") +
                       " 0x0 0x4000\n");
    MustRun("printf 'OSU_ORDER=A B\\nOSU_A_LEFT=3\\nOSU_B_LEFT=0\\n' | mkenvimage -r -s 0x4000 "
            "-o '" + d_.path("uboot.env") + "' - && cp '" + d_.path("uboot.env") + "' '" +
            d_.path("uboot-redund.env") + "'");
    d_.AddToBootSection("  bootloader: uboot\n  fw_env_config: " + cfg + "\n");
  }

  std::unique_ptr<osu::BootEnv> MakeEnv() const {
    if (backend_ == Backend::Pi) return osu::MakePiFirmwareEnv(d_.boot());
    if (backend_ == Backend::Grub) return osu::MakeGrubEnv(d_.grubenv());
    return osu::MakeUbootEnv(d_.path("fw_env.config"));
  }
  osu::BootEnv& Env() { return backend_ == Backend::Fake ? static_cast<osu::BootEnv&>(fake_) : *env_; }

  std::vector<std::string> EnvFiles() const {
    if (backend_ == Backend::Grub) return {d_.grubenv(), d_.grubenv() + ".bak"};
    if (backend_ == Backend::Uboot) return {d_.path("uboot.env"), d_.path("uboot-redund.env")};
    // The primary first: the copy a cut write would tear (the copy is written before it).
    if (backend_ == Backend::Pi)
      return {d_.boot() + "/" + osu::kPiCommitted, d_.boot() + "/" + osu::kPiCommittedCopy};
    return {};
  }

  Saved Save() {
    Saved s;
    s.slot_a = ReadRegion(a_.offset);
    s.slot_b = ReadRegion(b_.offset);
    for (const auto& e : std::filesystem::recursive_directory_iterator(d_.boot()))
      if (e.is_regular_file()) s.boot_files[e.path().string()] = ReadFile(e.path().string());
    for (const auto& f : EnvFiles()) s.boot_files[f] = ReadFile(f);
    s.fake_env = fake_.vars;
    s.cmdline = ReadFile(d_.path("cmdline"));
    s.proven = proven_;
    s.next_good = next_good_;
    return s;
  }

  void Restore(const Saved& s) {
    WriteRegion(a_.offset, s.slot_a);
    WriteRegion(b_.offset, s.slot_b);
    std::vector<std::string> extra;
    for (const auto& e : std::filesystem::recursive_directory_iterator(d_.boot()))
      if (!e.is_directory() && !s.boot_files.count(e.path().string()))
        extra.push_back(e.path().string());
    for (const auto& p : extra) std::filesystem::remove(p);
    for (const auto& [path, bytes] : s.boot_files) {
      std::filesystem::create_directories(std::filesystem::path(path).parent_path());
      std::filesystem::remove(path);  // never write through a symlink a test left
      WriteFile(path, bytes);
    }
    fake_.vars = s.fake_env;
    WriteFile(d_.path("cmdline"), s.cmdline);
    running_ = osu::KernelCmdline(s.cmdline).Get("osu.slot") == "B" ? SlotId::B : SlotId::A;
    trial_ = osu::KernelCmdline(s.cmdline).Get("osu.trial").has_value();
    proven_ = s.proven;
    next_good_ = s.next_good;
  }

  void SetRunning(SlotId slot, bool trial) {
    running_ = slot;
    trial_ = trial;
    const std::string label = slot == SlotId::A ? "p.lxreadonly" : "p.lxrootclone1";
    d_.SetCmdline("root=PARTLABEL=" + label + " osu.slot=" + osu::SlotName(slot) +
                  " console=ttyS0" + (trial ? " osu.trial=1" : ""));
  }

  std::optional<osu::BootSelection> ReadSelection() {
    auto vars = Env().Load();
    if (!vars) return std::nullopt;
    return osu::ParseSelection(*vars);
  }

  // What happens when the bootloader starts `slot`: it reads the kernel and initrd from the
  // slot's directory (not os-update's record) and the kernel mounts the slot. It comes up only
  // when the slot holds a whole signed image (or the factory's) with that image's own boot
  // files; then it may or may not reach boot-complete.
  enum class Kernel { Up, Healthy, Down };
  Kernel Start(SlotId slot) const {
    const auto& releases = SharedBundles().releases;
    const std::string content = SlotSha(slot);
    std::pair<std::string, std::string> files{"factory vmlinuz\n", "factory initrd.img\n"};
    if (content != factory_sha_) {
      auto it = releases.find(content);
      if (it == releases.end()) return Kernel::Down;
      files = it->second;
    }
    const std::string dir = d_.boot() + "/osu/" + osu::SlotName(slot) + "/";
    if (!FileExists(dir + "vmlinuz") || !FileExists(dir + "initrd.img")) return Kernel::Down;
    const std::string kernel = ReadFile(dir + "vmlinuz");
    if (kernel != files.first || ReadFile(dir + "initrd.img") != files.second) return Kernel::Down;
    if (kernel.rfind("PANIC", 0) == 0) return Kernel::Down;
    if (kernel.rfind("UNHEALTHY", 0) == 0) return Kernel::Up;
    return Kernel::Healthy;
  }
  bool Healthy() const { return Start(running_) == Kernel::Healthy; }

  // Power on: the bootloader picks a slot (and saves its env) as grub.cfg/boot.cmd do; a kernel
  // that does not come up is reset by the watchdog, and the bootloader picks again.
  std::string PowerOn(bool tryboot = false) {
    if (backend_ == Backend::Pi) return PiPowerOn(tryboot);
    for (int attempt = 0; attempt < 8; ++attempt) {
      ++boots;
      auto sel = ReadSelection();
      if (!sel) return "the bootloader finds no env it can read\n";
      const osu::BootOutcome out = osu::SimulateBoot(*sel);
      if (auto r = Env().Apply(osu::SelectionChanges(out.env_after)); !r)
        return "the bootloader's env save failed: " + r.error().message() + "\n";
      if (Start(out.slot) == Kernel::Down) continue;
      SetRunning(out.slot, out.trial);
      return "";
    }
    return "STRANDED: 8 power-ons in a row started no kernel that comes up\n";
  }

  // The Pi firmware starts what config.txt (tryboot.txt with the flag) selects and writes
  // nothing; a kernel that does not come up is reset by the watchdog, which clears the flag.
  // The kernel comes up only from the files of the slot its command line names.
  Kernel PiStart(const PiFirmwareBoot& fw, SlotId& slot, bool& trial) const {
    if (!fw.started) return Kernel::Down;
    const osu::KernelCmdline cmdline(fw.cmdline);
    const auto letter = cmdline.Get("osu.slot");
    if (!letter || (*letter != "A" && *letter != "B")) return Kernel::Down;
    slot = *letter == "A" ? SlotId::A : SlotId::B;
    trial = cmdline.Get("osu.trial").has_value();
    const std::string dir = "osu/" + *letter + "/";
    if (fw.kernel != dir + "vmlinuz" || fw.initrd != dir + "initrd.img" ||
        fw.dtb != dir + kPi5DeviceTree)
      return Kernel::Down;
    return Start(slot);
  }

  std::string PiPowerOn(bool tryboot) {
    for (int attempt = 0; attempt < 8; ++attempt, tryboot = false) {
      ++boots;
      const PiFirmwareBoot fw = SimulatePiFirmware(d_.boot(), tryboot);
      SlotId slot = SlotId::A;
      bool trial = false;
      if (PiStart(fw, slot, trial) == Kernel::Down) continue;
      running_ = slot;
      trial_ = trial;
      d_.SetCmdline(fw.cmdline);
      return "";
    }
    return "STRANDED: 8 power-ons in a row started no kernel that comes up\n";
  }

  // --- one event ------------------------------------------------------------------------

  struct Outcome {
    MainResult r;
    bool cut = false;
  };
  Outcome Command(std::vector<std::string> args, long cut) {
    args.insert(args.begin(), {"--config", d_.config()});
    Outcome o;
    ++commands;
    if (cut) osu::fault::ArmAtStep(cut);
    ForgetSlotShas();
    try {
      o.r = backend_ == Backend::Fake ? RunUpdate(args, fake_) : RunUpdate(args, *env_);
    } catch (const osu::FaultInjected&) {
      o.cut = true;
      ++cuts;
    }
    osu::fault::ArmAtStep(0);
    ForgetSlotShas();
    return o;
  }

  // The world's state that a refused command must leave as it was.
  std::string Fingerprint() {
    std::ostringstream s;
    s << SlotSha(SlotId::A) << SlotSha(SlotId::B) << "\n";
    for (const auto& e : std::filesystem::recursive_directory_iterator(d_.boot()))
      if (e.is_regular_file())
        s << e.path().string() << " " << osu::Sha256Hex(ReadFile(e.path().string())) << "\n";
    for (const auto& f : EnvFiles()) s << f << " " << osu::Sha256Hex(ReadFile(f)) << "\n";
    for (const auto& [k, v] : fake_.vars) s << k << "=" << v << "\n";
    return s.str();
  }

  const Bundle& NextGood() {
    const auto& good = SharedBundles().good;
    return good[static_cast<size_t>(next_good_++) % good.size()];
  }

  std::string Do(const Step& step) {
    ++steps_run;
    const Bundles& b = SharedBundles();
    const std::string running_before = SlotSha(running_);
    const auto sel_before = ReadSelection();
    const bool trial_before = sel_before && sel_before->committed() != running_;
    std::vector<std::string> args;
    bool corrupt = false;
    switch (step.event) {
      case Event::ApplyKexec: args = {"--apply", NextGood().path, "--kexec", "--allow-downgrade"}; break;
      case Event::ApplyReboot: args = {"--apply", NextGood().path, "--reboot", "--allow-downgrade"}; break;
      case Event::ApplyNoActivate: args = {"--apply", NextGood().path, "--no-activate", "--allow-downgrade"}; break;
      case Event::ApplyBadKernel: args = {"--apply", b.bad_kernel.path, "--reboot", "--allow-downgrade"}; break;
      case Event::ApplyUnhealthy: args = {"--apply", b.unhealthy.path, "--kexec", "--allow-downgrade"}; break;
      case Event::ApplyCorrupt: args = {"--apply", b.corrupt.path, "--kexec"}; corrupt = true; break;
      case Event::ApplyOlder: args = {"--apply", b.older.path, "--no-activate", "--allow-downgrade"}; break;
      case Event::ActivateKexec: args = {"--activate", "--kexec"}; break;
      case Event::ActivateReboot: args = {"--activate", "--reboot"}; break;
      case Event::BootComplete:
        if (!Healthy()) return "";  // boot-complete.target never reached: no commit
        proven_[running_] = SlotSha(running_);  // what ran to boot-complete has proven itself
        args = {"--commit"};
        break;
      case Event::Rollback: args = {"--rollback"}; break;
      case Event::RollbackReboot: args = {"--rollback", "--reboot"}; break;
      case Event::PowerCycle: ++resets; return PowerOn();
      case Event::DamageRecord:
        WriteFile(d_.boot() + "/osu/" + osu::SlotName(running_) + "/record.yml", "slot: [\n");
        return "";
      case Event::DamageBootFile: {
        // Only a slot that is neither running nor committed: a committed kernel that rots
        // is beyond what any updater can repair.
        const SlotId other = osu::OtherSlot(running_);
        const auto sel = ReadSelection();
        if (sel && sel->committed() == other) return "";
        const std::string f = d_.boot() + "/osu/" + osu::SlotName(other) + "/initrd.img";
        if (FileExists(f)) WriteFile(f, "bit rot\n");
        return "";
      }
      case Event::TearEnv: {
        // The copy a cut write would have torn: grubenv's primary (its backup holds the same
        // env: both are written on every change), or the redundant U-Boot env's copy that is
        // not the newest (libubootenv writes the older copy, then it becomes the newest). A
        // cut in the middle of a write is issue 16's crash-state test; this is the state it
        // leaves, for every command and boot that follows.
        const auto files = EnvFiles();
        if (files.empty()) return "";  // the fake has no bytes to tear
        const auto vars = Env().Load();
        for (const auto& f : files) {
          const std::string whole = ReadFile(f);
          std::string torn = whole;
          for (size_t i = torn.size() / 2; i < torn.size(); ++i) torn[i] = '\xff';
          WriteFile(f, torn);
          const auto after = Env().Load();
          if (vars && after && *after == *vars) return "";
          WriteFile(f, whole);  // that one was the env in use: tear the other
        }
        return "";
      }
      case Event::kCount: break;
    }
    const bool is_apply = args[0] == "--apply";
    const std::string before = Fingerprint();  // what a refusal must leave as it was
    Outcome o = Command(args, step.cut);
    const std::string running_after = SlotSha(running_);
    if (running_after != running_before)
      return "I2: the running slot " + osu::SlotName(running_) + "'s bytes changed during '" +
             args[0] + "'\n";
    // The target's content changes only through an apply; what ran there before is gone.
    for (SlotId s : {SlotId::A, SlotId::B})
      if (proven_.count(s) && proven_[s] != SlotSha(s)) proven_.erase(s);
    if (o.cut) {
      // The power went out in the middle of the command.
      return PowerOn();
    }
    if (o.r.code != 0) {
      ++refusals;
      if (o.r.err.find('\n') != o.r.err.size() - 1 && !HasOneErrorLine(o.r.err))
        return "a failed '" + args[0] + "' printed more than one error line:\n" + o.r.err;
      // I4: a refusal changes nothing (an apply whose stream failed may leave its target
      // slot written and recorded invalid: that is all it may change).
      if (!corrupt && o.r.code != 2 && o.r.code != 3 && Fingerprint() != before)
        return "I4: '" + args[0] + "' failed (exit " + std::to_string(o.r.code) +
               ") and changed the device: " + o.r.err;
      if (is_apply && trial_before && o.r.code != 4)
        return "an apply during a trial was not refused by state: exit " +
               std::to_string(o.r.code) + " " + o.r.err;
      return "";
    }
    if (is_apply && trial_before) return "an apply during a trial succeeded\n";
    if (corrupt) return "a corrupt bundle was installed\n";
    // What left the running system, by the fake activator's log.
    const auto calls = LastActivatorCalls();
    for (const auto& call : calls) {
      if (call == "kexec") {
        SetRunning(osu::OtherSlot(running_), true);
        return Start(running_) == Kernel::Down ? PowerOn() : "";
      }
      if (call == "reboot") return PowerOn();
      if (call == std::string("reboot ") + osu::kTrybootRebootArgument) {
        if (backend_ != Backend::Pi) return "a tryboot reboot on " + BackendName(backend_) + "\n";
        if (auto bad = CheckTryboot(); !bad.empty()) return "at the tryboot reboot: " + bad;
        return PowerOn(true);
      }
    }
    return "";
  }

  // --- the invariants -------------------------------------------------------------------

  std::string CheckInvariants() {
    osu::BootPartition boot(d_.boot());
    // I3: a verified record matches its slot's bytes and a signed manifest (or the factory).
    for (SlotId s : {SlotId::A, SlotId::B}) {
      const auto record = boot.LoadRecord(s);
      if (!record || record->state != osu::SlotState::Verified) continue;
      if (record->sha256 != SlotSha(s))
        return "I3: slot " + osu::SlotName(s) + "'s record says verified, sha256 " +
               record->sha256 + ", but the slot holds " + SlotSha(s) + "\n";
      if (record->sha256 != factory_sha_ && !SharedBundles().signed_images.count(record->sha256))
        return "I3: slot " + osu::SlotName(s) + "'s record names an image no manifest signed\n";
    }
    if (backend_ == Backend::Pi) return CheckPiBoot();
    // I1: the next power-on, on a copy of the env.
    auto sel = ReadSelection();
    if (!sel) return "I1: the env cannot be read\n";
    const osu::BootOutcome out = osu::SimulateBoot(*sel);
    const SlotId committed = sel->committed();
    auto good = [&](SlotId s) { return Start(s) != Kernel::Down; };
    auto proven = [&](SlotId s) { return proven_.count(s) && proven_[s] == SlotSha(s) && good(s); };
    if (!proven(committed))
      return "I1: the committed slot " + osu::SlotName(committed) +
             " (first in OSU_ORDER) has not run to boot-complete with what it holds now\n" + Env(*sel);
    if (out.trial) {
      const auto record = boot.LoadRecord(out.slot);
      if (!boot.CheckBootable(out.slot, record).ok() || record->sha256 != SlotSha(out.slot) ||
          !good(out.slot))
        return "I1: the one-shot try of slot " + osu::SlotName(out.slot) + " would boot a slot " +
               "whose bytes or boot files do not match a verified record\n" + Env(*sel);
      if (out.env_after.attempts(committed) == 0)
        return "I1: a trial whose committed fallback has no attempts left\n" + Env(*sel);
    } else if (sel->attempts(committed) > 0 && !proven(out.slot)) {
      return "I1: the next power-on boots slot " + osu::SlotName(out.slot) +
             ", which is not a committed slot that has run\n" + Env(*sel);
    }
    // A committed slot out of attempts (its boots never reached boot-complete) gives way to
    // the fallback: boot counting's purpose. Whatever happens then, some kernel comes up
    // within a few power-ons.
    osu::BootSelection chain = *sel;
    for (int i = 0; i < 8; ++i) {
      const osu::BootOutcome next = osu::SimulateBoot(chain);
      if (good(next.slot)) return "";
      chain = next.env_after;
    }
    return "I1: STRANDED: 8 power-ons in a row would start no kernel that comes up\n" + Env(*sel);
  }

  // I1 on the Pi firmware: the next power-on (no tryboot flag) starts the committed slot,
  // which has run to boot-complete with what it holds (nothing counts boots: a committed slot
  // always boots, so a trial's fallback is always there).
  std::string CheckPiBoot() {
    auto sel = ReadSelection();
    if (!sel) return "I1: os-update cannot read the firmware's config\n";
    const SlotId committed = sel->committed();
    auto proven = [&](SlotId s) {
      return proven_.count(s) && proven_[s] == SlotSha(s) && Start(s) != Kernel::Down;
    };
    SlotId slot = SlotId::A;
    bool trial = false;
    const PiFirmwareBoot cold = SimulatePiFirmware(d_.boot(), false);
    if (PiStart(cold, slot, trial) == Kernel::Down)
      return "I1: STRANDED: the firmware starts no kernel that comes up from config.txt (" +
             (cold.started ? "cmdline '" + cold.cmdline + "'" : cold.why) + ")\n" + PiFiles();
    if (slot != committed || trial || !proven(slot))
      return "I1: config.txt starts slot " + osu::SlotName(slot) + (trial ? " as a trial" : "") +
             ", os-update's committed slot is " + osu::SlotName(committed) +
             "; it must be that one, run to boot-complete\n" + PiFiles();
    return "";
  }
  // When os-update reboots with the tryboot flag, tryboot.txt starts the slot it activated:
  // verified, its bytes and boot files as recorded, marked osu.trial=1. (Afterwards it may
  // name that slot until the next write: the firmware reads it only with the flag, which only
  // os-update's activation sets, after writing it anew.)
  std::string CheckTryboot() {
    const SlotId committed = ReadSelection()->committed();
    SlotId slot = SlotId::A;
    bool trial = false;
    const PiFirmwareBoot once = SimulatePiFirmware(d_.boot(), true);
    if (PiStart(once, slot, trial) == Kernel::Down || slot == committed) return "";
    osu::BootPartition boot(d_.boot());
    const auto record = boot.LoadRecord(slot);
    if (!boot.CheckBootable(slot, record).ok() || record->sha256 != SlotSha(slot))
      return "I1: tryboot.txt starts slot " + osu::SlotName(slot) + ", whose bytes or boot " +
             "files do not match a verified record\n" + PiFiles();
    if (!trial) return "I1: tryboot.txt starts slot " + osu::SlotName(slot) +
                       " without osu.trial=1\n" + PiFiles();
    return "";
  }
  std::string PiFiles() const {
    std::string out;
    for (const char* f : {osu::kPiCommittedCopy, osu::kPiCommitted, osu::kPiTrial})
      out += std::string("  ") + f + ": " + ReadFile(d_.boot() + "/" + f);
    return out;
  }

  static std::string Env(const osu::BootSelection& s) {
    return "  env: OSU_ORDER=" + osu::SlotName(s.order.at(0)) + " " +
           osu::SlotName(s.order.size() > 1 ? s.order[1] : s.order[0]) +
           " OSU_A_LEFT=" + std::to_string(s.attempts(SlotId::A)) +
           " OSU_B_LEFT=" + std::to_string(s.attempts(SlotId::B)) +
           " OSU_TRY=" + (s.try_slot ? osu::SlotName(*s.try_slot) : "") + "\n";
  }

  Backend backend_;
  FakeDevice d_;
  Region a_, b_;
  std::string factory_sha_;
  osu::FakeBootEnv fake_;
  std::unique_ptr<osu::BootEnv> env_;
  SlotId running_ = SlotId::A;
  bool trial_ = false;
  std::map<SlotId, std::string> proven_;  // slot -> the content that ran to boot-complete
  long next_good_ = 0;
  Saved initial_;
};

long EnvLong(const char* name, long fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::strtol(v, nullptr, 10) : fallback;
}

bool IsCommandEvent(Event e) { return e <= Event::RollbackReboot; }

// Under the sanitizers every step costs several times more: the same tests, fewer steps.
#if defined(__SANITIZE_ADDRESS__)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif

}  // namespace

namespace {

void Exhaustive(Backend backend, int default_depth) {
  const int depth = static_cast<int>(EnvLong("OSU_SEQUENCE_DEPTH", kSanitized ? 3 : default_depth));
  setenv("TMPDIR", "/dev/shm", 1);  // fsync on tmpfs costs nothing: the test is CPU-bound
  World world(backend);
  // Each level: the 16 events, and each of the 12 commands cut by a power cut once more.
  const long branching = static_cast<long>(Event::kCount) + 12;
  long sequences = 1;
  for (int i = 0; i < depth; ++i) sequences *= branching;
  const std::string broken = world.Explore(depth);
  if (!broken.empty()) FAIL(broken);
  WARN("lifecycle exhaustive (" << BackendName(backend) << "): all " << sequences
       << " sequences of " << depth << " events (" << branching << " a step), through "
       << world.unique_states() << " distinct (state, depth) nodes; " << world.steps_run
       << " steps, " << world.commands << " os-update runs (" << world.refusals
       << " refused, " << world.cuts << " cut by a power cut), " << world.boots
       << " simulated power-ons");
}

}  // namespace

TEST_CASE("lifecycle: every sequence of up to 4 events keeps the invariants", "[sequence]") {
  Exhaustive(Backend::Grub, 4);
}

// Depth 3 by default: depth 4 costs as much again as the grubenv run (OSU_SEQUENCE_DEPTH=4).
TEST_CASE("lifecycle: every sequence of up to 3 events keeps the invariants (Pi firmware)",
          "[sequence]") {
  Exhaustive(Backend::Pi, 3);
}

namespace {

void RandomWalk(Backend backend) {
  const long steps = EnvLong("OSU_SEQUENCE_STEPS", kSanitized ? 16000 : 100000) / 4;
  const unsigned seed = static_cast<unsigned>(EnvLong("OSU_SEQUENCE_SEED", 20261206));
  setenv("TMPDIR", "/dev/shm", 1);
  World world(backend);
  std::mt19937_64 rng(seed + static_cast<unsigned>(backend));
  std::vector<Step> trail;
  for (long i = 0; i < steps; ++i) {
    // Walks of up to 40 events from the factory state, then start over.
    if (trail.size() >= 40) {
      world.Reset();
      trail.clear();
    }
    Step step{static_cast<Event>(rng() % static_cast<uint64_t>(Event::kCount)), 0};
    if (IsCommandEvent(step.event) && rng() % 4 == 0) step.cut = 1 + static_cast<long>(rng() % 24);
    const std::string broken = world.Continue(step, trail);
    if (!broken.empty()) FAIL("seed " << seed << ": " << broken);
  }
  WARN("lifecycle random walk (" << BackendName(backend) << ", seed " << seed << "): "
       << world.steps_run << " steps, " << world.commands << " os-update runs ("
       << world.refusals << " refused, " << world.cuts << " cut by a power cut), "
       << world.boots << " simulated power-ons");
}

}  // namespace

// A quarter of the steps on each env backend; OSU_SEQUENCE_STEPS is the total.
TEST_CASE("lifecycle: a seeded random walk keeps the invariants (FakeBootEnv)", "[sequence]") {
  RandomWalk(Backend::Fake);
}
TEST_CASE("lifecycle: a seeded random walk keeps the invariants (grubenv)", "[sequence]") {
  RandomWalk(Backend::Grub);
}
TEST_CASE("lifecycle: a seeded random walk keeps the invariants (U-Boot env)", "[sequence]") {
  RandomWalk(Backend::Uboot);
}
TEST_CASE("lifecycle: a seeded random walk keeps the invariants (Pi firmware)", "[sequence]") {
  RandomWalk(Backend::Pi);
}

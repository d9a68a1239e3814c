#include "support/device.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <algorithm>
#include <cstring>
#include <filesystem>
#include <random>
#include <sstream>

#include "crypto/sha256.hpp"
#include "record/record.hpp"
#include "support/pi_firmware_sim.hpp"

namespace osu::test {

FakeDevice::FakeDevice(const std::string& layout) : layout_(layout) {
  MustRun(SourceDir() + "/scripts/make-disk.sh " + SourceDir() + "/partition-layouts/" + layout +
          ".sfdisk '" + disk() + "' >/dev/null");
  std::filesystem::create_directories(boot());
  std::filesystem::create_directories(path("keys"));
  MustRun("openssl genpkey -algorithm ed25519 -out '" + private_key() + "' 2>/dev/null && " +
          "openssl pkey -in '" + private_key() + "' -pubout -out '" + public_key() + "'");
  SetCmdline("console=ttyS0 root=PARTLABEL=p.lxreadonly ro quiet");
  WriteFile(path("mountinfo"),
            "22 1 254:1 / / ro,relatime shared:1 - squashfs /dev/vda2 ro\n");
  WriteConfig();
  // Factory state: slot A holds an image (so "unchanged" means something), has its boot
  // files and a verified record, and the boot env is the factory one, made by grub-editenv.
  // Slot B is empty here, so it has no boot attempts (a KIWI image, whose B is a clone of A,
  // would give it some, and a record).
  Region a = SlotA();
  MustRun("head -c 3145728 /dev/urandom > '" + path("factory.img") + "' && dd if='" +
          path("factory.img") + "' of='" + disk() + "' bs=1M seek=" + std::to_string(a.offset) +
          " oflag=seek_bytes conv=notrunc status=none");
  std::filesystem::create_directories(boot() + "/osu/A");
  osu::Record record;
  record.slot = osu::SlotId::A;
  record.state = osu::SlotState::Verified;
  record.version = "1.0";
  record.compatible = "demo-x86_64";
  record.sha256 = Sha256OfFile(path("factory.img"));
  record.size = 3145728;
  record.cmdline = "console=ttyS0";
  record.committed_at = "2026-01-01T00:00:00Z";  // the factory slot is the committed one
  for (const char* name : {"vmlinuz", "initrd.img"}) {
    const std::string content = std::string("factory ") + name + "\n";
    WriteFile(boot() + "/osu/A/" + name, content);
    record.boot_files.push_back({name, content.size(), osu::Sha256Hex(content)});
  }
  WriteFile(boot() + "/osu/A/record.yml", osu::SerializeRecord(record));
  RequireTool("grub-editenv");
  MustRun("grub-editenv '" + grubenv() + "' create && grub-editenv '" + grubenv() +
          "' set OSU_ORDER='A B' OSU_A_LEFT=3 OSU_B_LEFT=0 && cp '" + grubenv() + "' '" +
          grubenv() + ".bak'");
}

void FakeDevice::UsePiFirmware() {
  std::filesystem::copy(SourceDir() + "/pi-firmware", boot(),
                        std::filesystem::copy_options::recursive |
                            std::filesystem::copy_options::overwrite_existing);
  std::filesystem::remove(boot() + "/README.md");
  std::filesystem::remove(grubenv());
  std::filesystem::remove(grubenv() + ".bak");
  const std::string dtb = "factory device tree\n";
  WriteFile(boot() + "/osu/A/" + kPi5DeviceTree, dtb);
  WriteFile(boot() + "/osu/A/cmdline.txt", "root=PARTLABEL=p.lxreadonly osu.slot=A console=ttyS0\n");
  auto record = osu::ParseRecord(ReadFile(boot() + "/osu/A/record.yml"));
  REQUIRE(record);
  record->boot_files.push_back({kPi5DeviceTree, dtb.size(), osu::Sha256Hex(dtb)});
  WriteFile(boot() + "/osu/A/record.yml", osu::SerializeRecord(*record));
  AddToBootSection("  bootloader: pi-firmware\n");
  SetCmdline("root=PARTLABEL=p.lxreadonly osu.slot=A console=ttyS0");
}

// Into the config's one boot: section (a second one is an error).
void FakeDevice::AddToBootSection(const std::string& lines) {
  std::string config_text = ReadFile(config());
  const std::string boot_line = "  path: " + boot() + "\n";
  const auto at = config_text.find(boot_line);
  REQUIRE(at != std::string::npos);
  config_text.replace(at, boot_line.size(), boot_line + lines);
  WriteFile(config(), config_text);
}

std::string FakeDevice::Env() const {
  // grub-editenv, not our code, reads the env.
  return MustRun("grub-editenv '" + grubenv() + "' list");
}

std::string FakeDevice::EnvVar(const std::string& name) const {
  const std::string env = Env();
  const auto pos = env.find(name + "=");
  if (pos == std::string::npos || (pos != 0 && env[pos - 1] != '\n')) return "<unset>";
  const auto start = pos + name.size() + 1;
  return env.substr(start, env.find('\n', start) - start);
}

Region FakeDevice::Partition(const std::string& label) const {
  // sfdisk's own dump is the oracle; read once per device (it never changes in a test).
  if (partitions_.empty()) {
    std::istringstream dump(MustRun("sfdisk -d '" + disk() + "'"));
    std::string line;
    auto field = [](const std::string& l, const std::string& key) {
      auto pos = l.find(" " + key + "=");
      if (pos != std::string::npos) ++pos;
      if (pos == std::string::npos) return std::string();
      pos = l.find_first_not_of(' ', pos + key.size() + 1);
      if (l[pos] == '"') return l.substr(pos + 1, l.find('"', pos + 1) - pos - 1);
      return l.substr(pos, l.find_first_of(", ", pos) - pos);
    };
    while (std::getline(dump, line)) {
      if (line.find(" : start=") == std::string::npos) continue;
      partitions_[field(line, "name")] = Region{std::stoull(field(line, "start")) * 512,
                                                std::stoull(field(line, "size")) * 512};
    }
  }
  auto it = partitions_.find(label);
  REQUIRE(it != partitions_.end());
  return it->second;
}

void FakeDevice::WriteConfig(const std::string& extra, const std::string& compatible,
                             const std::string& update_extra) {
  WriteFile(config(), "update:\n"
                      "  keys: [" + public_key() + "]\n"
                      "  compatible: " + compatible + "\n" + update_extra +
                      "slots:\n"
                      "  disk: " + disk() + "\n"
                      "boot:\n"
                      "  path: " + boot() + "\n"
                      "system:\n"
                      "  cmdline: " + path("cmdline") + "\n"
                      "  mountinfo: " + path("mountinfo") + "\n"
                      "  lock: " + path("os-update.lock") + "\n"
                      "  os_release: " + path("os-release") + "\n" + extra);
}

void FakeDevice::SetCmdline(const std::string& cmdline) { WriteFile(path("cmdline"), cmdline + "\n"); }

std::string FakeDevice::MakeImage(const std::string& name, uint64_t size, unsigned seed) {
  std::mt19937_64 rng(seed);
  std::string data(size, '\0');
  for (uint64_t off = 0; off < size; off += 65536) {
    if (rng() % 3 == 0) continue;  // a zero run
    uint64_t end = std::min<uint64_t>(off + 65536, size);
    for (uint64_t i = off; i < end; i += 8) {
      uint64_t v = rng() & 0x0f0f0f0f0f0f0f0fULL;  // low entropy: compresses a little
      std::memcpy(&data[i], &v, std::min<uint64_t>(8, end - i));
    }
  }
  const std::string p = path(name);
  WriteFile(p, data);
  return p;
}

std::vector<std::string> FakeDevice::BootFiles() {
  const std::string k = path("vmlinuz"), i = path("initrd.img");
  if (!FileExists(k)) {
    WriteFile(k, "kernel-" + std::string(100000, 'k'));
    WriteFile(i, "initrd-" + std::string(50000, 'i'));
  }
  return {k, i};
}

std::string FakeDevice::MakeBundle(const std::string& name, const std::string& image,
                                   const std::string& version, const std::string& compression,
                                   const std::vector<std::string>& extra_args) {
  const std::string out = path(name);
  std::vector<std::string> args{"create", "--image", image, "--compression", compression,
                                "--cmdline", "console=ttyS0 quiet", "--compatible",
                                "demo-x86_64", "--version", version, "--key", private_key(),
                                "--output", out};
  // Tests: speed over ratio, unless they name a level.
  if (std::find(extra_args.begin(), extra_args.end(), "--level") == extra_args.end()) {
    args.push_back("--level");
    args.push_back("1");
  }
  for (const auto& f : BootFiles()) {
    args.push_back("--boot-file");
    args.push_back(f);
  }
  args.insert(args.end(), extra_args.begin(), extra_args.end());
  auto r = RunBundle(args);
  INFO(r.err);
  REQUIRE(r.code == 0);
  return out;
}

std::string FakeDevice::Fingerprint(Region r) const {
  int fd = ::open(disk().c_str(), O_RDONLY | O_CLOEXEC);
  REQUIRE(fd >= 0);
  osu::Sha256 h;
  std::vector<uint8_t> buf(1 << 20);
  off_t pos = static_cast<off_t>(r.offset);
  const off_t end = static_cast<off_t>(r.offset + r.size);
  while (pos < end) {
    off_t data = ::lseek(fd, pos, SEEK_DATA);
    if (data < 0 || data >= end) break;
    off_t hole = ::lseek(fd, data, SEEK_HOLE);
    if (hole > end) hole = end;
    h.Update("extent " + std::to_string(data) + "-" + std::to_string(hole) + "\n");
    for (off_t at = data; at < hole;) {
      size_t want = static_cast<size_t>(std::min<off_t>(hole - at, static_cast<off_t>(buf.size())));
      ssize_t n = ::pread(fd, buf.data(), want, at);
      REQUIRE(n > 0);
      h.Update(std::span<const uint8_t>(buf.data(), static_cast<size_t>(n)));
      at += n;
    }
    pos = hole;
  }
  ::close(fd);
  return h.HexDigest();
}

std::string FakeDevice::RegionSha256(Region r, uint64_t length) const {
  auto out = MustRun("dd if='" + disk() + "' bs=1M skip=" + std::to_string(r.offset) +
                     " count=" + std::to_string(length) +
                     " iflag=skip_bytes,count_bytes status=none | sha256sum");
  return out.substr(0, 64);
}

std::string FakeDevice::Snapshot() const {
  std::ostringstream s;
  s << "slot A: " << Fingerprint(SlotA()) << "\n";
  s << "committed: " << EnvVar("OSU_ORDER") << ", A attempts " << EnvVar("OSU_A_LEFT") << "\n";
  s << "config: " << Sha256Hex(ReadFile(config())) << "\n";
  const std::string a_dir = boot() + "/osu/A";
  if (std::filesystem::exists(a_dir)) {
    for (const auto& e : std::filesystem::directory_iterator(a_dir))
      s << "boot A " << e.path().filename().string() << ": "
        << Sha256Hex(ReadFile(e.path().string())) << "\n";
  }
  return s.str();
}

MainResult Update(FakeDevice& d, std::vector<std::string> args) {
  args.insert(args.begin(), {"--config", d.config()});
  return RunUpdate(args);
}

std::string StatusField(FakeDevice& d, const std::string& field) {
  auto r = Update(d, {"--status", "--json"});
  INFO(r.err);
  REQUIRE(r.code == 0);
  WriteFile(d.path("status.json"), r.out);
  auto out = MustRun("python3 -c 'import json,sys,functools; print(json.dumps(functools.reduce("
                     "lambda o,k: o[k], sys.argv[2].split(\".\"), json.load(open(sys.argv[1])))))' '" +
                     d.path("status.json") + "' '" + field + "'");
  return out.substr(0, out.find('\n'));
}

}  // namespace osu::test

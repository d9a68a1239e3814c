// U-Boot env images read through libubootenv (osu::MakeUbootEnv), and the per-slot boot.env
// text that boot.scr imports (osu::UbootSlotEnv).
// Input: one flags byte, then data.
//   flags bit 7 set: data is "<root> NUL <cmdline>" for UbootSlotEnv.
//   else: data is the env copy (or copies), written as env image files for libubootenv:
//     bit 0 redundant env (two copies, each with a flags byte)
//     bit 1 CRCs recomputed (so that mutations reach the variable parser, not the CRC check)
//     bits 2-3 env size: 0x1000, 0x4000, 0x100, 0x2000
//     bit 4 both copies in one file at two offsets (as on an MMC boot partition)
//     bit 5 after a good Load, Apply a change and Load again
#include <unistd.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <map>
#include <optional>
#include <string>

#include "bootenv/boot_env.hpp"
#include "bootenv/uboot_slot_config.hpp"
#include "fuzz_check.hpp"

using osu::fuzz::Check;

namespace {

uint32_t Crc32(const std::string& data) {
  static const std::array<uint32_t, 256> table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  uint32_t crc = 0xffffffffu;
  for (char ch : data) crc = table[(crc ^ static_cast<unsigned char>(ch)) & 0xffu] ^ (crc >> 8);
  return crc ^ 0xffffffffu;
}

// One env copy of exactly `size` bytes: CRC (little endian), [flags byte], data.
std::string Copy(std::string raw, size_t size, bool redundant, bool fix_crc) {
  raw.resize(size, '\0');
  // libubootenv 0.3.2 reads past its buffer (strchr in libuboot_open) when a copy with a good
  // CRC does not end in "\0\0"; U-Boot never writes one. Kept out so that fuzzing goes on.
  if (fix_crc) {
    raw[size - 2] = raw[size - 1] = '\0';
    const size_t header = redundant ? 5 : 4;
    const uint32_t crc = Crc32(raw.substr(header));
    for (int i = 0; i < 4; ++i) raw[static_cast<size_t>(i)] = static_cast<char>(crc >> (8 * i));
  }
  return raw;
}

// fw_env.config numbers are read as hex (libubootenv 0.3.2 scans sizes with %zx).
std::string Hex(size_t n) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "0x%zx", n);
  return buf;
}

void Write(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  Check(out.good(), "cannot write " + path);
}

// A temp dir for the env files, removed at exit (never freed: the atexit handler uses it).
const std::string& Dir() {
  static const std::string* dir = [] {
    std::string tmpl = (access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
    tmpl += "/osu-fuzz-uboot.XXXXXX";
    Check(mkdtemp(tmpl.data()) != nullptr, "mkdtemp failed");
    std::atexit([] {
      for (const char* f : {"/env.bin", "/env0.bin", "/env1.bin", "/fw_env.config"})
        ::unlink((Dir() + f).c_str());
      ::rmdir(Dir().c_str());
    });
    return new std::string(tmpl);
  }();
  return *dir;
}

// himport_r (U-Boot lib/hashtable.c) for `env import -t`: blanks before a name skipped, '#'
// lines skipped, '\' takes the next byte, "name=" with no value deletes the variable.
std::map<std::string, std::string> ImportText(const std::string& text) {
  std::map<std::string, std::string> vars;
  size_t p = 0;
  const size_t n = text.size();
  while (p < n && text[p] != '\0') {
    while (p < n && (text[p] == ' ' || text[p] == '\t')) ++p;
    if (p < n && text[p] == '#') {
      while (p < n && text[p] != '\n') ++p;
      ++p;
      continue;
    }
    const size_t name = p;
    while (p < n && text[p] != '=' && text[p] != '\n' && text[p] != '\0') ++p;
    const std::string key = text.substr(name, p - name);
    if (p >= n || text[p] != '=' || p + 1 >= n || text[p + 1] == '\n' || text[p + 1] == '\0') {
      vars.erase(key);
      p += (p < n && text[p] == '=') ? 2 : 1;
      continue;
    }
    ++p;
    std::string value;
    for (; p < n && text[p] != '\n' && text[p] != '\0'; ++p) {
      if (text[p] == '\\' && p + 1 < n) ++p;
      value += text[p];
    }
    ++p;
    vars[key] = value;
  }
  return vars;
}

void FuzzSlotEnv(const std::string& data) {
  const size_t nul = data.find('\0');
  const std::string root = data.substr(0, nul);
  const std::string cmdline = nul == std::string::npos ? "" : data.substr(nul + 1);
  auto text = osu::UbootSlotEnv(root, cmdline);
  if (!text) return;
  std::map<std::string, std::string> want{{"osu_root", root}};
  if (!cmdline.empty()) want["osu_cmdline"] = cmdline;
  Check(ImportText(*text) == want, "env import -t would not read back the slot env:\n" + *text);
}

// Returns the variables when the image loads, so that the self-test below can see them.
std::optional<osu::EnvVars> FuzzEnvImage(uint8_t flags, const std::string& data) {
  static const size_t kSizes[] = {0x1000, 0x4000, 0x100, 0x2000};
  const bool redundant = flags & 1, fix_crc = flags & 2, one_file = flags & 16;
  const bool apply = flags & 32;
  const size_t size = kSizes[(flags >> 2) & 3];
  const std::string& dir = Dir();
  for (const char* f : {"/env.bin", "/env0.bin", "/env1.bin"}) ::unlink((dir + f).c_str());
  const std::string first = Copy(data.substr(0, size), size, redundant, fix_crc);
  const std::string config = dir + "/fw_env.config";
  if (!redundant) {
    Write(dir + "/env.bin", first);
    Write(config, dir + "/env.bin 0x0 " + Hex(size) + "\n");
  } else {
    const std::string second =
        Copy(data.size() > size ? data.substr(size, size) : std::string(), size, true, fix_crc);
    if (one_file) {
      Write(dir + "/env.bin", first + second);
      Write(config, dir + "/env.bin 0x0 " + Hex(size) + "\n" + dir + "/env.bin " + Hex(size) +
                        " " + Hex(size) + "\n");
    } else {
      Write(dir + "/env0.bin", first);
      Write(dir + "/env1.bin", second);
      Write(config, dir + "/env0.bin 0x0 " + Hex(size) + "\n" + dir + "/env1.bin 0x0 " +
                        Hex(size) + "\n");
    }
  }
  auto env = osu::MakeUbootEnv(config);
  auto vars = env->Load();
  if (!vars) {
    Check(!vars.error().message().empty(), "an error without a message");
    return std::nullopt;
  }
  if (!apply) return *vars;
  if (!env->Apply({{"OSU_TRY", std::string("B")}})) return *vars;  // e.g. they do not fit
  osu::EnvVars want = *vars;
  want["OSU_TRY"] = "B";
  // libubootenv 0.3.2 stores an env that fills its copy to the last byte (no final "\0\0"),
  // and then reads past its buffer loading it (U-Boot itself stops at the size).
  size_t need = 1;
  for (const auto& [name, value] : want) need += name.size() + 1 + value.size() + 1;
  if (need > size - (redundant ? 5 : 4)) return *vars;
  auto after = env->Load();
  if (!after) osu::fuzz::Fail("env does not load after Apply: " + after.error().message());
  Check(*after == want, "Apply changed variables it was not asked to change");
  return *vars;
}

}  // namespace

// A harness that never gets an env loaded would fuzz nothing: check the setup once.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  const std::string env("a=1\0b=2\0\0", 8);
  for (int flags : {0x02, 0x03, 0x13, 0x22, 0x33}) {
    const std::string header(flags & 1 ? 5 : 4, '\0');
    auto vars = FuzzEnvImage(static_cast<uint8_t>(flags), header + env);
    Check(vars == osu::EnvVars{{"a", "1"}, {"b", "2"}},
          "self-test: a good env image did not load (flags " + std::to_string(flags) + ")");
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (data[0] & 0x80)
    FuzzSlotEnv(rest);
  else
    FuzzEnvImage(data[0], rest);
  return 0;
}

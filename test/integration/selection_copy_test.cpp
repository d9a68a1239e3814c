// os-update's copies of the boot selection (boot/selection_copy.hpp) against tools we did not
// write: mkenvimage makes the same image, fw_printenv reads it, and a torn uboot.env (the Pi's
// one-copy env on FAT) always leaves the copies naming the committed slot.
#include <catch2/catch.hpp>

#include <cstdio>

#include "boot/selection.hpp"
#include "boot/selection_copy.hpp"
#include "bootenv/boot_env.hpp"
#include "support/support.hpp"

using osu::EnvChanges;
using osu::SlotId;
using osu::test::MustRun;
using osu::test::ReadFile;
using osu::test::Run;
using osu::test::TempDir;
using osu::test::WriteFile;

namespace {

constexpr size_t kPiEnvSize = 0x4000;  // CONFIG_ENV_SIZE of U-Boot's rpi_4

void RequireUbootTools() {
  osu::test::RequireTool("mkenvimage");
  osu::test::RequireTool("fw_printenv");
}

// fw_printenv's value of `name` in the single env `file` of `size` bytes; nullopt when the
// tool finds no valid env or no such variable (or it is empty).
std::optional<std::string> PrintEnv(const TempDir& dir, const std::string& file, size_t size,
                                    const std::string& name) {
  // libubootenv reads the size as hex, with or without 0x.
  char hex[32];
  std::snprintf(hex, sizeof hex, "0x%zx", size);
  WriteFile(dir / "print.config", file + " 0x0 " + hex + "\n");
  auto r = Run("fw_printenv -c '" + (dir / "print.config") + "' -n " + name + " 2>/dev/null");
  // A variable that is not there: exit 0 and an empty line (libubootenv-tool 0.3.2).
  const std::string value = r.output.substr(0, r.output.find('\n'));
  if (r.exit_code != 0 || value.empty()) return std::nullopt;
  return value;
}

std::string Inode(const std::string& path) { return MustRun("stat -c %i '" + path + "'"); }

// The Pi: uboot.env made by mkenvimage (one copy), the copies beside it in osu/.
struct Pi {
  TempDir dir;
  std::string env_file = dir / "boot/uboot.env";
  std::string copy = dir / "boot/osu/selection.env";
  std::unique_ptr<osu::BootEnv> env;

  explicit Pi(const std::string& vars) {
    MustRun("mkdir -p '" + (dir / "boot/osu") + "'");
    WriteFile(dir / "vars.txt", "bootcmd=run distro_bootcmd\n" + vars);
    MustRun("mkenvimage -s 0x4000 -o '" + env_file + "' '" + (dir / "vars.txt") + "'");
    WriteFile(dir / "fw_env.config", env_file + " 0x0 0x4000\n");
    env = osu::WithSelectionCopy(osu::MakeUbootEnv(dir / "fw_env.config"), copy);
  }
  std::optional<std::string> Env(const std::string& name) {
    return PrintEnv(dir, env_file, kPiEnvSize, name);
  }
  std::optional<std::string> Copy(const std::string& file, const std::string& name) {
    return PrintEnv(dir, file, osu::kSelectionCopySize, name);
  }
};

}  // namespace

TEST_CASE("Selection copy: the image mkenvimage makes, read by fw_printenv", "[selectioncopy]") {
  RequireUbootTools();
  TempDir dir;
  osu::BootSelection s;
  s.order = {SlotId::B, SlotId::A};
  s.attempts(SlotId::A) = 1;
  s.attempts(SlotId::B) = 3;
  s.try_slot = SlotId::A;  // never in the copy
  WriteFile(dir / "copy.bin", osu::SelectionCopyImage(s));
  WriteFile(dir / "vars.txt", "OSU_A_LEFT=1\nOSU_B_LEFT=3\nOSU_ORDER=B A\n");
  MustRun("mkenvimage -p 0 -s 4096 -o '" + (dir / "mk.bin") + "' '" + (dir / "vars.txt") + "'");
  CHECK(ReadFile(dir / "copy.bin") == ReadFile(dir / "mk.bin"));
  CHECK(PrintEnv(dir, dir / "copy.bin", 4096, "OSU_ORDER") == "B A");
  CHECK(PrintEnv(dir, dir / "copy.bin", 4096, "OSU_B_LEFT") == "3");
  CHECK(PrintEnv(dir, dir / "copy.bin", 4096, "OSU_TRY") == std::nullopt);
}

TEST_CASE("Selection copy: os-update installs both copies before the env, never OSU_TRY",
          "[selectioncopy]") {
  RequireUbootTools();
  Pi pi("OSU_ORDER=A B\nOSU_A_LEFT=3\nOSU_B_LEFT=0\n");

  SECTION("a commit of B: env and both copies say B A") {
    REQUIRE(pi.env->Apply(EnvChanges{{"OSU_ORDER", "B A"}, {"OSU_B_LEFT", "3"}}).ok());
    CHECK(pi.Env("OSU_ORDER") == "B A");
    CHECK(pi.Env("bootcmd") == "run distro_bootcmd");  // the rest of the env kept
    for (const std::string& f : {pi.copy, pi.copy + ".bak"}) {
      INFO(f);
      CHECK(pi.Copy(f, "OSU_ORDER") == "B A");
      CHECK(pi.Copy(f, "OSU_A_LEFT") == "3");
      CHECK(pi.Copy(f, "OSU_B_LEFT") == "3");
    }
  }
  SECTION("a one-shot try changes the env only: the copies are not rewritten") {
    REQUIRE(pi.env->Apply(EnvChanges{{"OSU_A_LEFT", "3"}}).ok());
    const std::string inode = Inode(pi.copy), bak_inode = Inode(pi.copy + ".bak");
    REQUIRE(pi.env->Apply(EnvChanges{{"OSU_TRY", "B"}}).ok());
    CHECK(pi.Env("OSU_TRY") == "B");
    CHECK(pi.Copy(pi.copy, "OSU_TRY") == std::nullopt);
    CHECK(Inode(pi.copy) == inode);
    CHECK(Inode(pi.copy + ".bak") == bak_inode);
  }
  SECTION("an env without a valid copy: an error, and no selection copy written") {
    WriteFile(pi.env_file, std::string(kPiEnvSize, '\0'));
    CHECK_FALSE(pi.env->Apply(EnvChanges{{"OSU_ORDER", "B A"}}).ok());
    CHECK_FALSE(osu::test::FileExists(pi.copy));
    CHECK_FALSE(osu::test::FileExists(pi.copy + ".bak"));
  }
}

// A power cut inside an in-place rewrite of uboot.env leaves its first bytes new and the rest
// old. Each such image either still reads whole (old or new: the cut missed the changed bytes)
// or U-Boot finds a bad CRC and boot.cmd boots from the copies (uboot_script_test proves the
// script's side): in every case the copies name the committed slot, B.
TEST_CASE("Selection copy: every torn write of the Pi's uboot.env ends in the committed slot",
          "[selectioncopy]") {
  RequireUbootTools();
  Pi pi("OSU_ORDER=A B\nOSU_A_LEFT=3\nOSU_B_LEFT=0\n");
  REQUIRE(pi.env->Apply(EnvChanges{{"OSU_ORDER", "B A"}, {"OSU_B_LEFT", "3"}}).ok());
  const std::string committed = ReadFile(pi.env_file);

  // The two writers of uboot.env: os-update (--apply --reboot of A: OSU_TRY=A, through
  // libubootenv) and U-Boot's saveenv (B's attempt counted; its image as mkenvimage makes it).
  REQUIRE(pi.env->Apply(EnvChanges{{"OSU_TRY", "A"}}).ok());
  const std::string by_os_update = ReadFile(pi.env_file);
  WriteFile(pi.dir / "saved.txt", "OSU_A_LEFT=3\nOSU_B_LEFT=2\nOSU_ORDER=B A\nbootcmd=run distro_bootcmd\n");
  MustRun("mkenvimage -s 0x4000 -o '" + (pi.dir / "saved.bin") + "' '" + (pi.dir / "saved.txt") + "'");
  const std::string by_uboot = ReadFile(pi.dir / "saved.bin");

  for (const auto& [writer, written] : {std::pair<std::string, std::string>{"os-update", by_os_update},
                                        {"U-Boot", by_uboot}}) {
    int torn = 0;
    // Every byte of the first sector (a sector whose programming stopped half-way: the CRC and
    // the OSU_* variables, which U-Boot sorts first, live there), then every sector boundary.
    for (size_t cut = 1; cut < kPiEnvSize; cut += cut < 512 ? 1 : 512) {
      INFO(writer << "'s write cut after " << cut << " bytes");
      WriteFile(pi.env_file, written.substr(0, cut) + committed.substr(cut));
      const auto order = pi.Env("OSU_ORDER");
      if (order) {
        // Whole: the old env (committed B) or the new one (the write was complete).
        CHECK(order == "B A");
        continue;
      }
      ++torn;
      for (const std::string& f : {pi.copy, pi.copy + ".bak"}) {
        osu::EnvVars vars;
        for (const char* name : {"OSU_ORDER", "OSU_A_LEFT", "OSU_B_LEFT"})
          if (auto v = pi.Copy(f, name)) vars[name] = *v;
        const osu::BootOutcome boot = osu::SimulateBoot(osu::ParseSelection(vars));
        CHECK(boot.slot == SlotId::B);
        CHECK_FALSE(boot.trial);
      }
    }
    CHECK(torn > 0);
  }
}

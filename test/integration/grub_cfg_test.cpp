// grub/grub.cfg run by real GRUB (grub-emu, Debian package grub-emu) on a FAT ESP image made
// with mtools: for every start state, the slot it boots, the kernel command line it builds and
// the env it saves must be what SimulateBoot() (lib/boot/selection.hpp) says.
// `linux` and `initrd` are stood in by script functions (grub-emu has no Linux loader) that
// print their arguments; `initrd` then halts the emulator.
#include <catch2/catch.hpp>

#include <string>

#include "boot/selection.hpp"
#include "bootenv/boot_env.hpp"
#include "bootenv/grub_slot_config.hpp"
#include "support/support.hpp"

using osu::BootSelection;
using osu::SlotId;
using osu::test::MustRun;
using osu::test::ReadFile;
using osu::test::Run;
using osu::test::TempDir;
using osu::test::WriteFile;

namespace {

const char* const kMtools = "MTOOLS_SKIP_CHECK=1 ";

std::string Uuid(SlotId s) {
  return s == SlotId::A ? "aaaaaaaa-0000-4000-8000-00000000000a"
                        : "bbbbbbbb-0000-4000-8000-00000000000b";
}

// An ESP image with both slots' boot files, and a grub-emu setup that boots it.
class Esp {
 public:
  Esp() : image_(dir_ / "esp.img") {
    MustRun("mkfs.vfat -C " + image_ + " 4096 >/dev/null");
    Mtools("mmd -i " + image_ + " ::osu ::osu/A ::osu/B");
    for (SlotId s : {SlotId::A, SlotId::B}) {
      SetSlotConfig(s, *osu::GrubSlotConfig("PARTUUID=" + Uuid(s), "quiet console=ttyS0"));
      const std::string d = std::string("::osu/") + osu::SlotLetter(s);
      WriteFile(dir_ / "blob", "not a kernel");
      Mtools("mcopy -o -i " + image_ + " " + (dir_ / "blob") + " " + d + "/vmlinuz");
      Mtools("mcopy -o -i " + image_ + " " + (dir_ / "blob") + " " + d + "/initrd.img");
    }
    MustRun("mkdir " + (dir_ / "grub"));
    WriteFile(dir_ / "device.map", "(hd0) " + image_ + "\n");
  }

  void SetSlotConfig(SlotId s, const std::string& cfg) {
    WriteFile(dir_ / "slot.cfg", cfg);
    Mtools("mcopy -o -i " + image_ + " " + (dir_ / "slot.cfg") + " ::osu/" +
           osu::SlotLetter(s) + "/grub.cfg");
  }

  // Writes the env with our GrubEnv (primary and backup) and copies both onto the ESP.
  void SetEnv(const osu::EnvChanges& changes) {
    MustRun("rm -f " + (dir_ / "grubenv") + " " + (dir_ / "grubenv.bak"));
    REQUIRE(osu::MakeGrubEnv(dir_ / "grubenv")->Apply(changes).ok());
    Mtools("mcopy -o -i " + image_ + " " + (dir_ / "grubenv") + " " + (dir_ / "grubenv.bak") +
           " ::osu/");
  }

  void PutFile(const std::string& esp_path, const std::string& data) {
    WriteFile(dir_ / "put", data);
    Mtools("mcopy -o -i " + image_ + " " + (dir_ / "put") + " ::" + esp_path);
  }
  std::string GetFile(const std::string& esp_path) {
    MustRun("rm -f " + (dir_ / "got"));
    Mtools("mcopy -o -i " + image_ + " ::" + esp_path + " " + (dir_ / "got"));
    return ReadFile(dir_ / "got");
  }
  void Delete(const std::string& esp_path) { Mtools("mdel -i " + image_ + " ::" + esp_path); }

  // The env GRUB left on the ESP, read the way os-update reads it.
  osu::EnvVars Env() {
    MustRun("rm -f " + (dir_ / "after") + " " + (dir_ / "after.bak"));
    Mtools("mcopy -i " + image_ + " ::osu/grubenv " + (dir_ / "after"));
    Mtools("mcopy -i " + image_ + " ::osu/grubenv.bak " + (dir_ / "after.bak"));
    auto vars = osu::MakeGrubEnv(dir_ / "after")->Load();
    REQUIRE(vars.ok());
    return *vars;
  }

  // Boots grub/grub.cfg; returns the `linux` line ("" when it did not get that far).
  std::string Boot(bool set_root = true) {
    WriteFile(dir_ / "grub/grub.cfg",
              // One argument a line: the emulated terminal wraps at 80 columns.
              "function linux { for a in \"$@\"; do echo \"OSU-ARG[$a]\"; done; }\n"
              "function initrd { echo \"OSU-INITRD\" \"$@\"; halt; }\n" +
                  std::string(set_root ? "set root=(hd0)\n" : "") + "source (host)" +
                  osu::test::SourceDir() + "/grub/grub.cfg\n");
    auto r = Run("timeout 60 grub-emu -m " + (dir_ / "device.map") + " -d " + (dir_ / "grub") +
                 " </dev/null");
    output_ = r.output;
    std::string linux_line;  // the arguments of `linux`, joined by spaces
    for (size_t pos = 0; (pos = output_.find("OSU-ARG[", pos)) != std::string::npos;) {
      size_t end = output_.find("]\r", pos);
      if (end == std::string::npos) end = output_.find("]\n", pos);
      if (end == std::string::npos) break;
      if (!linux_line.empty()) linux_line += ' ';
      linux_line += output_.substr(pos + 8, end - pos - 8);
      pos = end;
    }
    return linux_line;
  }
  const std::string& output() const { return output_; }

 private:
  static void Mtools(const std::string& cmd) { MustRun(kMtools + cmd); }

  TempDir dir_;
  std::string image_;
  std::string output_;
};

void RequireGrubEmu() {
  osu::test::RequireTool("grub-emu");
  osu::test::RequireTool("mkfs.vfat");
  osu::test::RequireTool("mcopy");
}

std::string ExpectedLinux(SlotId s, bool trial) {
  const char l = osu::SlotLetter(s);
  return std::string("/osu/") + l + "/vmlinuz root=PARTUUID=" + Uuid(s) + " osu.slot=" + l +
         " quiet console=ttyS0" + (trial ? " osu.trial=1" : "");
}

std::string Show(const BootSelection& s) {
  std::string out = "order=";
  for (SlotId id : s.order) out += osu::SlotLetter(id);
  out += " A=" + std::to_string(s.attempts(SlotId::A)) +
         " B=" + std::to_string(s.attempts(SlotId::B)) + " try=";
  out += s.try_slot ? std::string(1, osu::SlotLetter(*s.try_slot)) : "-";
  return out;
}

}  // namespace

TEST_CASE("grub.cfg passes grub-script-check") {
  osu::test::RequireTool("grub-script-check");
  auto r = Run("grub-script-check " + osu::test::SourceDir() + "/grub/grub.cfg");
  INFO(r.output);
  CHECK(r.exit_code == 0);
  // The checker is real: it rejects a broken script.
  TempDir dir;
  WriteFile(dir / "bad.cfg", "if [ x ]; then\n  echo\n");
  CHECK(Run("grub-script-check " + (dir / "bad.cfg")).exit_code != 0);
}

TEST_CASE("grub.cfg in grub-emu boots what SimulateBoot says, for every start state") {
  RequireGrubEmu();
  Esp esp;
  for (auto order : {std::vector<SlotId>{SlotId::A, SlotId::B},
                     std::vector<SlotId>{SlotId::B, SlotId::A}}) {
    for (int a = 0; a <= osu::kMaxAttempts; ++a) {
      for (int b = 0; b <= osu::kMaxAttempts; ++b) {
        for (int t = 0; t < 3; ++t) {
          BootSelection before;
          before.order = order;
          before.attempts(SlotId::A) = a;
          before.attempts(SlotId::B) = b;
          if (t > 0) before.try_slot = t == 1 ? SlotId::A : SlotId::B;
          auto want = osu::SimulateBoot(before);
          INFO("before: " << Show(before));
          esp.SetEnv(osu::SelectionChanges(before));
          std::string linux_line = esp.Boot();
          INFO(esp.output());
          CHECK(linux_line == ExpectedLinux(want.slot, want.trial));
          BootSelection after = osu::ParseSelection(esp.Env());
          CHECK(Show(after) == Show(want.env_after));
        }
      }
    }
  }
}

TEST_CASE("grub.cfg in grub-emu: a torn primary is read and saved through the backup") {
  RequireGrubEmu();
  Esp esp;
  BootSelection before = osu::FactorySelection();
  before.try_slot = SlotId::B;
  esp.SetEnv(osu::SelectionChanges(before));
  const std::string torn = "# GRUB Environment Blok\n" + std::string(1000, '#');
  esp.PutFile("osu/grubenv", torn);
  CHECK(esp.Boot() == ExpectedLinux(SlotId::B, true));
  CHECK(esp.GetFile("osu/grubenv") == torn);
  // The backup lost OSU_TRY: the next boot counts an attempt of A from the backup.
  CHECK(esp.Boot() == ExpectedLinux(SlotId::A, false));
  CHECK(esp.GetFile("osu/grubenv") == torn);
  BootSelection after = osu::ParseSelection(esp.Env());
  CHECK(Show(after) == "order=AB A=2 B=3 try=-");
}

TEST_CASE("grub.cfg in grub-emu: no env at all boots A and writes nothing") {
  RequireGrubEmu();
  Esp esp;
  // No `set root`: grub.cfg finds the ESP by searching for /osu/grubenv.
  esp.SetEnv({{"OSU_ORDER", "B A"}, {"OSU_B_LEFT", "1"}});
  CHECK(esp.Boot(/*set_root=*/false) == ExpectedLinux(SlotId::B, false));
  esp.Delete("osu/grubenv");
  esp.Delete("osu/grubenv.bak");
  CHECK(esp.Boot() == ExpectedLinux(SlotId::A, false));
}

TEST_CASE("grub.cfg in grub-emu: lenient env values are read as ParseSelection reads them") {
  RequireGrubEmu();
  Esp esp;
  struct Case {
    osu::EnvChanges env;
    SlotId slot;
  };
  for (const auto& c : std::vector<Case>{
           {{{"OSU_A_LEFT", "1"}, {"OSU_B_LEFT", "3"}}, SlotId::A},          // no OSU_ORDER
           {{{"OSU_ORDER", "x y"}, {"OSU_B_LEFT", "3"}}, SlotId::B},         // junk order
           {{{"OSU_ORDER", "B"}, {"OSU_A_LEFT", "3"}}, SlotId::B},           // B only, 0 left
           {{{"OSU_ORDER", "A B"}, {"OSU_A_LEFT", "03"}, {"OSU_B_LEFT", "4"}}, SlotId::A},
           {{{"OSU_ORDER", "B A"}, {"OSU_TRY", "b"}, {"OSU_A_LEFT", "2"}}, SlotId::A},
       }) {
    esp.SetEnv(c.env);
    osu::EnvVars vars;
    for (const auto& [k, v] : c.env) vars[k] = *v;
    auto want = osu::SimulateBoot(osu::ParseSelection(vars));
    INFO(esp.output());
    CHECK(esp.Boot() == ExpectedLinux(want.slot, want.trial));
    CHECK(want.slot == c.slot);
    CHECK(Show(osu::ParseSelection(esp.Env())) == Show(want.env_after));
  }
}

TEST_CASE("grub.cfg in grub-emu: the per-slot command line survives GRUB's parser") {
  RequireGrubEmu();
  Esp esp;
  esp.SetEnv(osu::SelectionChanges(osu::FactorySelection()));
  // What GRUB's parser would expand or split on ($, ;, backquotes) arrives as written; quotes
  // and backslashes are refused before (GrubSlotConfig).
  const std::string cmdline = "quiet a=$HOME d=e;f ${x} g=`h`";
  esp.SetSlotConfig(SlotId::A, *osu::GrubSlotConfig("PARTUUID=" + Uuid(SlotId::A), cmdline));
  CHECK(esp.Boot() == "/osu/A/vmlinuz root=PARTUUID=" + Uuid(SlotId::A) + " osu.slot=A " +
                          cmdline);
  // A slot without its grub.cfg is not booted with an empty root=.
  esp.Delete("osu/A/grub.cfg");
  CHECK(esp.Boot() == "");
  CHECK(esp.output().find("did not boot") != std::string::npos);
}

TEST_CASE("grub.cfg in grub-emu: a name held twice is read as the last, and after os-update's "
          "write, once") {
  RequireGrubEmu();
  Esp esp;
  // B committed by the later lines, with 2 attempts; the earlier lines say A and 3.
  std::string env(
      "# GRUB Environment Block\n"
      "OSU_ORDER=A B\nOSU_A_LEFT=3\nOSU_B_LEFT=3\nOSU_ORDER=B A\nOSU_B_LEFT=2\n");
  env.resize(1024, '#');
  esp.PutFile("osu/grubenv", env);
  esp.PutFile("osu/grubenv.bak", env);
  CHECK(esp.Boot() == ExpectedLinux(SlotId::B, false));
  // GRUB's own save_env decremented the first OSU_B_LEFT; load_env still reads the last, 2:
  // with duplicates the counter never runs out. We read what GRUB reads.
  CHECK(esp.Env().at("OSU_B_LEFT") == "2");
  CHECK(esp.Env().at("OSU_ORDER") == "B A");

  // os-update's write (here: A's attempts) keeps the lines GRUB reads, once each...
  TempDir dir;
  WriteFile(dir / "grubenv", esp.GetFile("osu/grubenv"));
  REQUIRE(osu::MakeGrubEnv(dir / "grubenv")->Apply({{"OSU_A_LEFT", "1"}}).ok());
  esp.PutFile("osu/grubenv", ReadFile(dir / "grubenv"));
  esp.PutFile("osu/grubenv.bak", ReadFile(dir / "grubenv.bak"));
  // ...so GRUB boots the same slot, and now its count sticks.
  CHECK(esp.Boot() == ExpectedLinux(SlotId::B, false));
  CHECK(Show(osu::ParseSelection(esp.Env())) == "order=BA A=1 B=1 try=-");
}

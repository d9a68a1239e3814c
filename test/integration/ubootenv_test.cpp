// The U-Boot env backend against tools we did not write: mkenvimage makes the env images,
// fw_printenv/fw_setenv (libubootenv-tool) read and write them, on plain files described by a
// fw_env.config in a temp directory.
#include <catch2/catch.hpp>

#include <fstream>

#include "bootenv/boot_env.hpp"
#include "support/support.hpp"

using osu::EnvChanges;
using osu::EnvVars;
using osu::test::MustRun;
using osu::test::ReadFile;
using osu::test::Run;
using osu::test::Sha256OfFile;
using osu::test::TempDir;
using osu::test::WriteFile;

namespace {

constexpr size_t kEnvSize = 0x4000;

void RequireUbootTools() {
  osu::test::RequireTool("mkenvimage");
  osu::test::RequireTool("fw_printenv");
  osu::test::RequireTool("fw_setenv");
}

// An env image of kEnvSize bytes made by mkenvimage from "name=value" lines.
void MakeEnvImage(const TempDir& dir, const std::string& out, const std::string& vars,
                  bool redundant) {
  WriteFile(dir / "vars.txt", vars);
  MustRun(std::string("mkenvimage -s 0x4000") + (redundant ? " -r" : "") + " -o '" + out +
          "' '" + (dir / "vars.txt") + "'");
}

// A single env: one file, one config line.
std::string SingleEnv(const TempDir& dir, const std::string& vars) {
  MakeEnvImage(dir, dir / "env.bin", vars, false);
  WriteFile(dir / "fw_env.config", dir / "env.bin" + " 0x0 0x4000\n");
  return dir / "fw_env.config";
}

// A redundant env in two files (copy 0: env0.bin, copy 1: env1.bin), both made with -r (the
// flag byte): with equal flags libubootenv takes copy 0 as current.
std::string RedundantEnv(const TempDir& dir, const std::string& vars0, const std::string& vars1) {
  MakeEnvImage(dir, dir / "env0.bin", vars0, true);
  MakeEnvImage(dir, dir / "env1.bin", vars1, true);
  WriteFile(dir / "fw_env.config",
            dir / "env0.bin" + " 0x0 0x4000\n" + dir / "env1.bin" + " 0x0 0x4000\n");
  return dir / "fw_env.config";
}

// Flips bytes in the variable data of a copy, so its CRC no longer matches.
void Corrupt(const std::string& path, size_t offset = 0x10) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  REQUIRE(f);
  f.seekg(static_cast<std::streamoff>(offset));
  char bytes[4];
  f.read(bytes, sizeof bytes);
  for (char& b : bytes) b = static_cast<char>(~b);
  f.seekp(static_cast<std::streamoff>(offset));
  f.write(bytes, sizeof bytes);
}

std::string PrintEnv(const std::string& config, const std::string& name) {
  return MustRun("fw_printenv -c '" + config + "' -n " + name);
}

EnvVars MustLoad(osu::BootEnv& env) {
  auto vars = env.Load();
  INFO((vars ? "" : vars.error().message()));
  REQUIRE(vars.ok());
  return *vars;
}

}  // namespace

TEST_CASE("U-Boot env: Load reads what mkenvimage wrote", "[ubootenv]") {
  RequireUbootTools();
  TempDir dir;
  auto config = SingleEnv(dir, "bootcmd=run distro_bootcmd\nOSU_ORDER=B A\nOSU_A_LEFT=3\n"
                               "spaced=a b  c=d\n");
  auto env = osu::MakeUbootEnv(config);
  CHECK(env->Exists());
  EnvVars vars = MustLoad(*env);
  CHECK(vars == EnvVars{{"bootcmd", "run distro_bootcmd"},
                        {"OSU_ORDER", "B A"},
                        {"OSU_A_LEFT", "3"},
                        {"spaced", "a b  c=d"}});
  CHECK(env->Describe() == "U-Boot env (" + config + ")");
}

TEST_CASE("U-Boot env: Apply is what fw_printenv reads, and keeps the rest", "[ubootenv]") {
  RequireUbootTools();
  TempDir dir;
  auto config = SingleEnv(dir, "bootcmd=run distro_bootcmd\nOSU_ORDER=A B\nOSU_TRY=B\n");
  auto env = osu::MakeUbootEnv(config);
  REQUIRE(env->Apply(EnvChanges{{"OSU_ORDER", "B A"},
                                {"OSU_B_LEFT", "3"},
                                {"OSU_TRY", std::nullopt},
                                {"absent", std::nullopt}})
              .ok());
  CHECK(PrintEnv(config, "OSU_ORDER") == "B A\n");
  CHECK(PrintEnv(config, "OSU_B_LEFT") == "3\n");
  CHECK(PrintEnv(config, "bootcmd") == "run distro_bootcmd\n");
  // The whole env as the tool sees it (fw_printenv prints "" and exits 0 for a missing
  // variable, so only the full listing shows that OSU_TRY is gone and nothing else appeared).
  CHECK(MustRun("fw_printenv -c '" + config + "'") ==
        "OSU_B_LEFT=3\nOSU_ORDER=B A\nbootcmd=run distro_bootcmd\n");
}

TEST_CASE("U-Boot env: Load reads what fw_setenv wrote", "[ubootenv]") {
  RequireUbootTools();
  TempDir dir;
  auto config = SingleEnv(dir, "OSU_ORDER=A B\n");
  MustRun("fw_setenv -c '" + config + "' OSU_TRY A");
  MustRun("fw_setenv -c '" + config + "' OSU_ORDER 'B A'");
  auto env = osu::MakeUbootEnv(config);
  CHECK(MustLoad(*env) == EnvVars{{"OSU_ORDER", "B A"}, {"OSU_TRY", "A"}});
}

TEST_CASE("U-Boot env: a redundant env survives one bad copy", "[ubootenv]") {
  RequireUbootTools();
  TempDir dir;
  auto config = RedundantEnv(dir, "OSU_ORDER=A B\ncopy=0\n", "OSU_ORDER=B A\ncopy=1\n");
  auto env = osu::MakeUbootEnv(config);
  CHECK(MustLoad(*env).at("copy") == "0");  // equal flags: copy 0 is current, as for fw_printenv
  CHECK(PrintEnv(config, "copy") == "0\n");

  SECTION("copy 0 corrupt: the other copy's values") {
    Corrupt(dir / "env0.bin");
    CHECK(MustLoad(*env) == EnvVars{{"OSU_ORDER", "B A"}, {"copy", "1"}});
    CHECK(env->Exists());
  }
  SECTION("copy 1 corrupt: copy 0's values") {
    Corrupt(dir / "env1.bin");
    CHECK(MustLoad(*env) == EnvVars{{"OSU_ORDER", "A B"}, {"copy", "0"}});
  }
  SECTION("Apply with one copy corrupt writes over the corrupt one; fw_printenv reads it") {
    Corrupt(dir / "env0.bin");
    const std::string good_copy = Sha256OfFile(dir / "env1.bin");
    REQUIRE(env->Apply(EnvChanges{{"OSU_TRY", "A"}}).ok());
    CHECK(Sha256OfFile(dir / "env1.bin") == good_copy);  // the valid copy was not touched
    CHECK(PrintEnv(config, "OSU_TRY") == "A\n");
    CHECK(PrintEnv(config, "copy") == "1\n");
    CHECK(MustLoad(*env) == EnvVars{{"OSU_ORDER", "B A"}, {"OSU_TRY", "A"}, {"copy", "1"}});
  }
}

TEST_CASE("U-Boot env: no valid copy is an error, never a default env", "[ubootenv]") {
  RequireUbootTools();
  TempDir dir;
  SECTION("redundant, both copies corrupt") {
    auto config = RedundantEnv(dir, "copy=0\n", "copy=1\n");
    Corrupt(dir / "env0.bin");
    Corrupt(dir / "env1.bin");
    auto env = osu::MakeUbootEnv(config);
    CHECK_FALSE(env->Exists());
    auto vars = env->Load();
    REQUIRE_FALSE(vars.ok());
    CHECK(vars.error().kind() == osu::ErrorKind::Device);
    CHECK(vars.error().message() == "U-Boot env (" + config + ") has no valid copy");
    // Apply refuses too, and writes nothing.
    const std::string sha0 = Sha256OfFile(dir / "env0.bin");
    const std::string sha1 = Sha256OfFile(dir / "env1.bin");
    auto applied = env->Apply(EnvChanges{{"OSU_ORDER", "A B"}});
    REQUIRE_FALSE(applied.ok());
    CHECK(applied.error().message() == "U-Boot env (" + config + ") has no valid copy");
    CHECK(Sha256OfFile(dir / "env0.bin") == sha0);
    CHECK(Sha256OfFile(dir / "env1.bin") == sha1);
    // The oracle agrees there is no env (it only has its default-env fallback, which is absent).
    CHECK(Run("fw_printenv -c '" + config + "' -f '" + (dir / "no-default-env") + "'")
              .exit_code != 0);
  }
  SECTION("single env, corrupt") {
    auto config = SingleEnv(dir, "OSU_ORDER=A B\n");
    Corrupt(dir / "env.bin");
    auto env = osu::MakeUbootEnv(config);
    CHECK_FALSE(env->Exists());
    auto vars = env->Load();
    REQUIRE_FALSE(vars.ok());
    CHECK(vars.error().message() == "U-Boot env (" + config + ") has no valid copy");
  }
  SECTION("single env of zeros (a blank partition)") {
    WriteFile(dir / "env.bin", std::string(kEnvSize, '\0'));
    WriteFile(dir / "fw_env.config", dir / "env.bin" + " 0x0 0x4000\n");
    auto env = osu::MakeUbootEnv(dir / "fw_env.config");
    CHECK_FALSE(env->Exists());
    CHECK_FALSE(env->Load().ok());
  }
}

TEST_CASE("U-Boot env: a torn write leaves the previous env (redundant, one file)", "[ubootenv]") {
  RequireUbootTools();
  TempDir dir;
  // Both copies in one file at two offsets, as on a raw partition or an eMMC boot area.
  MakeEnvImage(dir, dir / "c0.bin", "OSU_ORDER=A B\nOSU_A_LEFT=3\n", true);
  MakeEnvImage(dir, dir / "c1.bin", "OSU_ORDER=A B\nOSU_A_LEFT=3\n", true);
  MustRun("cat '" + (dir / "c0.bin") + "' '" + (dir / "c1.bin") + "' > '" + (dir / "env.bin") +
          "'");
  const std::string config = dir / "fw_env.config";
  WriteFile(config, dir / "env.bin" + " 0x0 0x4000\n" + dir / "env.bin" + " 0x4000 0x4000\n");
  auto env = osu::MakeUbootEnv(config);

  // Each Apply writes the copy that is not current; the tool follows every step.
  for (int i = 0; i < 4; ++i) {
    const std::string value = std::to_string(2 - i % 3);  // 2 1 0 2
    REQUIRE(env->Apply(EnvChanges{{"OSU_A_LEFT", value}}).ok());
    CHECK(PrintEnv(config, "OSU_A_LEFT") == value + "\n");
    CHECK(MustLoad(*env).at("OSU_A_LEFT") == value);
  }
  // The next write goes to exactly one half of the file; tear it there.
  const std::string before = ReadFile(dir / "env.bin");
  REQUIRE(env->Apply(EnvChanges{{"OSU_ORDER", "B A"}}).ok());
  const std::string after = ReadFile(dir / "env.bin");
  const bool wrote_first = before.compare(0, kEnvSize, after, 0, kEnvSize) != 0;
  const bool wrote_second = before.compare(kEnvSize, kEnvSize, after, kEnvSize, kEnvSize) != 0;
  REQUIRE(wrote_first != wrote_second);  // exactly one copy written
  CHECK(MustLoad(*env).at("OSU_ORDER") == "B A");
  Corrupt(dir / "env.bin", (wrote_first ? 0 : kEnvSize) + 0x20);  // the write, torn
  EnvVars vars = MustLoad(*env);
  CHECK(vars.at("OSU_ORDER") == "A B");  // the env from before the torn write
  CHECK(vars.at("OSU_A_LEFT") == "2");
  CHECK(PrintEnv(config, "OSU_ORDER") == "A B\n");
}

TEST_CASE("U-Boot env: an env that does not fit is refused and the old one stays",
          "[ubootenv]") {
  RequireUbootTools();
  TempDir dir;
  auto config = RedundantEnv(dir, "OSU_ORDER=A B\n", "OSU_ORDER=A B\n");
  auto env = osu::MakeUbootEnv(config);
  auto applied = env->Apply(EnvChanges{{"big", std::string(kEnvSize, 'x')}});
  REQUIRE_FALSE(applied.ok());
  CHECK(applied.error().message() ==
        "Failed to write U-Boot env (" + config + "): the variables do not fit in the env");
  CHECK(MustRun("fw_printenv -c '" + config + "'") == "OSU_ORDER=A B\n");
  CHECK_FALSE(env->Apply(EnvChanges{{"a=b", "1"}}).ok());
  CHECK_FALSE(env->Apply(EnvChanges{{"", "1"}}).ok());
  CHECK(MustRun("fw_printenv -c '" + config + "'") == "OSU_ORDER=A B\n");
}

TEST_CASE("U-Boot env: a config or env that cannot be read is a Device error naming it",
          "[ubootenv]") {
  RequireUbootTools();
  TempDir dir;
  SECTION("no config file") {
    auto env = osu::MakeUbootEnv(dir / "missing.config");
    CHECK_FALSE(env->Exists());
    auto vars = env->Load();
    REQUIRE_FALSE(vars.ok());
    CHECK(vars.error().kind() == osu::ErrorKind::Device);
    CHECK(vars.error().message().find(dir / "missing.config") != std::string::npos);
  }
  SECTION("the env file is missing") {
    WriteFile(dir / "fw_env.config", dir / "absent.bin" + " 0x0 0x4000\n");
    auto env = osu::MakeUbootEnv(dir / "fw_env.config");
    CHECK_FALSE(env->Exists());
    auto vars = env->Load();
    REQUIRE_FALSE(vars.ok());
    CHECK(vars.error().kind() == osu::ErrorKind::Device);
    CHECK(vars.error().message().find(dir / "fw_env.config") != std::string::npos);
    CHECK_FALSE(env->Apply(EnvChanges{{"x", "1"}}).ok());
    CHECK_FALSE(osu::test::FileExists(dir / "absent.bin"));
  }
}

TEST_CASE("U-Boot env: boot.cmd builds into a script image", "[ubootenv]") {
  osu::test::RequireTool("mkimage");
  TempDir dir;
  const std::string cmd = osu::test::SourceDir() + "/uboot-scripts/boot.cmd";
  MustRun("mkimage -A arm64 -T script -C none -d '" + cmd + "' '" + (dir / "boot.scr") + "'");
  const std::string listing = MustRun("mkimage -l '" + (dir / "boot.scr") + "'");
  CHECK(listing.find("AArch64 Linux Script (uncompressed)") != std::string::npos);
  // The script is stored whole (after the 64-byte header and the 8-byte length table).
  const std::string scr = ReadFile(dir / "boot.scr");
  CHECK(scr.find(ReadFile(cmd)) == 72);
}

TEST_CASE("U-Boot env: a name held twice is read as the last, as fw_printenv and U-Boot do; "
          "a write keeps it once", "[ubootenv]") {
  RequireUbootTools();
  TempDir dir;
  // mkenvimage packs the lines as given, duplicates included. fw_printenv (libubootenv) and
  // U-Boot's own import (himport_r: a later entry replaces the earlier) read the last.
  auto config = SingleEnv(dir, "OSU_ORDER=A B\nOSU_B_LEFT=3\nOSU_ORDER=B A\nOSU_B_LEFT=1\n");
  CHECK(MustRun("fw_printenv -c '" + config + "'") == "OSU_B_LEFT=1\nOSU_ORDER=B A\n");
  auto env = osu::MakeUbootEnv(config);
  CHECK(MustLoad(*env) == EnvVars{{"OSU_ORDER", "B A"}, {"OSU_B_LEFT", "1"}});

  REQUIRE(env->Apply(EnvChanges{{"OSU_A_LEFT", "2"}}).ok());
  CHECK(MustRun("fw_printenv -c '" + config + "'") ==
        "OSU_A_LEFT=2\nOSU_B_LEFT=1\nOSU_ORDER=B A\n");
  // The image itself (CRC, then "name=value\0" up to an empty entry) holds each name once.
  const std::string image = ReadFile(dir / "env.bin");
  std::vector<std::string> entries;
  for (size_t p = 4; p < image.size() && image[p] != '\0';) {
    const size_t end = image.find('\0', p);
    entries.push_back(image.substr(p, end - p));
    p = end + 1;
  }
  CHECK(entries == std::vector<std::string>{"OSU_A_LEFT=2", "OSU_B_LEFT=1", "OSU_ORDER=B A"});
}

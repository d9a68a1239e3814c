// Our grubenv against the real grub-editenv, both ways: what it writes we read, what we write
// it lists, and our file is byte for byte the one it makes with the same edits.
#include <catch2/catch.hpp>

#include <random>
#include <utility>
#include <vector>

#include "bootenv/boot_env.hpp"
#include "bootenv/grubenv_format.hpp"
#include "support/support.hpp"

using osu::EnvVars;
using osu::test::MustRun;
using osu::test::ReadFile;
using osu::test::Run;
using osu::test::TempDir;
using osu::test::WriteFile;

namespace {

std::string Quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') out += "'\\''";
    else out += c;
  }
  return out + "'";
}

// grub-editenv FILE set name=value ... (one invocation, in this order).
void EditenvSet(const std::string& file,
                const std::vector<std::pair<std::string, std::string>>& vars) {
  std::string cmd = "grub-editenv " + Quote(file) + " set";
  for (const auto& [k, v] : vars) cmd += " " + Quote(k + "=" + v);
  MustRun(cmd);
}

const std::vector<std::pair<std::string, std::string>> kOddVars = {
    {"plain", "1"},
    {"spaces", "a b  c "},
    {"equals", "x=y=z"},
    {"backslash", "C:\\dir\\"},
    {"newline", "line1\nline2\n"},
    {"hash", "#not a comment"},
    {"empty", ""},
    {"utf8", "gr\xc3\xbc\xc3\x9f"},
    {"long", std::string(300, 'L')},
};

}  // namespace

TEST_CASE("grub-editenv's file reads back as the variables it was given") {
  osu::test::RequireTool("grub-editenv");
  TempDir dir;
  const std::string path = dir / "grubenv";
  MustRun("grub-editenv " + Quote(path) + " create");
  EditenvSet(path, kOddVars);
  MustRun("grub-editenv " + Quote(path) + " unset plain");
  MustRun("grub-editenv " + Quote(path) + " set " + Quote("spaces=replaced"));

  auto vars = osu::MakeGrubEnv(path)->Load();
  REQUIRE(vars.ok());
  EnvVars want(kOddVars.begin(), kOddVars.end());
  want.erase("plain");
  want["spaces"] = "replaced";
  CHECK(*vars == want);
}

TEST_CASE("our grubenv is the file grub-editenv makes with the same edits") {
  osu::test::RequireTool("grub-editenv");
  TempDir dir;
  const std::string ours = dir / "grubenv";
  const std::string theirs = dir / "theirs";
  auto env = osu::MakeGrubEnv(ours);

  osu::EnvChanges first;
  for (const auto& [k, v] : kOddVars) first[k] = v;
  REQUIRE(env->Apply(first).ok());
  // Apply sets in name order (EnvChanges is a map): new names are appended in that order.
  MustRun("grub-editenv " + Quote(theirs) + " create");
  std::vector<std::pair<std::string, std::string>> sorted;
  for (const auto& [k, v] : first) sorted.emplace_back(k, *v);
  EditenvSet(theirs, sorted);
  CHECK(ReadFile(ours) == ReadFile(theirs));
  CHECK(ReadFile(ours + ".bak") == ReadFile(theirs));

  std::string listing;
  for (const auto& [k, v] : sorted) listing += k + "=" + v + "\n";
  CHECK(MustRun("grub-editenv " + Quote(ours) + " list") == listing);

  // Replace (longer, shorter), remove, add: in place, as grub-editenv does it.
  REQUIRE(env->Apply({{"backslash", "\\\\"},
                      {"long", "short"},
                      {"equals", std::nullopt},
                      {"OSU_TRY", "B"},
                      {"plain", std::string(200, 'P')}})
              .ok());
  MustRun("grub-editenv " + Quote(theirs) + " set OSU_TRY=B " + Quote("backslash=\\\\"));
  MustRun("grub-editenv " + Quote(theirs) + " unset equals");
  MustRun("grub-editenv " + Quote(theirs) + " set long=short plain=" + std::string(200, 'P'));
  CHECK(ReadFile(ours) == ReadFile(theirs));
  CHECK(ReadFile(ours + ".bak") == ReadFile(theirs));
  const std::string listed = MustRun("grub-editenv " + Quote(ours) + " list");
  CHECK(listed.find("\nOSU_TRY=B\n") != std::string::npos);
}

TEST_CASE("an env that does not fit fails here as in grub-editenv, nothing changed") {
  osu::test::RequireTool("grub-editenv");
  TempDir dir;
  const std::string ours = dir / "grubenv";
  const std::string theirs = dir / "theirs";
  auto env = osu::MakeGrubEnv(ours);
  REQUIRE(env->Apply({{"OSU_ORDER", "A B"}}).ok());
  MustRun("grub-editenv " + Quote(theirs) + " create");
  EditenvSet(theirs, {{"OSU_ORDER", "A B"}});
  const std::string before = ReadFile(ours);

  // 1024 - header (94) - "OSU_ORDER=A B\n" (14) = 916 bytes left: "v=" + 913 + "\n" fits.
  const std::string fits(913, 'f');
  const std::string too_big(914, 'f');
  CHECK(Run("grub-editenv " + Quote(theirs) + " set v=" + too_big).exit_code != 0);
  auto r = env->Apply({{"v", too_big}});
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().kind() == osu::ErrorKind::Device);
  CHECK(r.error().message().find(ours) != std::string::npos);
  CHECK(ReadFile(ours) == before);
  CHECK(ReadFile(ours + ".bak") == before);

  EditenvSet(theirs, {{"v", fits}});
  REQUIRE(env->Apply({{"v", fits}}).ok());
  CHECK(ReadFile(ours) == ReadFile(theirs));
  CHECK(ReadFile(ours).back() == '\n');  // no padding left at all
}

TEST_CASE("a torn primary: we read the backup, and Apply leaves two copies grub-editenv reads") {
  osu::test::RequireTool("grub-editenv");
  TempDir dir;
  const std::string path = dir / "grubenv";
  auto env = osu::MakeGrubEnv(path);
  REQUIRE(env->Apply({{"OSU_ORDER", "A B"}, {"OSU_A_LEFT", "3"}, {"OSU_B_LEFT", "3"}}).ok());
  // GRUB's save_env edits the primary in place: we must see its change, not the backup's.
  MustRun("grub-editenv " + Quote(path) + " set OSU_A_LEFT=2");
  CHECK(env->Load()->at("OSU_A_LEFT") == "2");
  REQUIRE(env->Apply({{"OSU_TRY", "B"}}).ok());
  const std::string whole = ReadFile(path);

  WriteFile(path, whole.substr(0, 512));
  CHECK(env->Load()->at("OSU_TRY") == "B");
  WriteFile(path, "# GRUB Environment Blok\n" + whole.substr(24));
  CHECK(Run("grub-editenv " + Quote(path) + " list").exit_code != 0);  // GRUB rejects it too
  CHECK(env->Load()->at("OSU_TRY") == "B");

  REQUIRE(env->Apply({{"OSU_TRY", std::nullopt}}).ok());
  const std::string want = "OSU_A_LEFT=2\nOSU_B_LEFT=3\nOSU_ORDER=A B\n";
  CHECK(MustRun("grub-editenv " + Quote(path) + " list") == want);
  CHECK(MustRun("grub-editenv " + Quote(path + ".bak") + " list") == want);

  WriteFile(path + ".bak", whole.substr(0, 100));
  WriteFile(path, "");
  auto both = env->Load();
  REQUIRE_FALSE(both.ok());
  CHECK(both.error().message().find("and its backup are missing or corrupt") !=
        std::string::npos);
}

TEST_CASE("random edits: our block stays byte-identical to grub-editenv's, full or not") {
  osu::test::RequireTool("grub-editenv");
  TempDir dir;
  const std::string theirs = dir / "theirs";
  MustRun("grub-editenv " + Quote(theirs) + " create");
  auto ours = osu::grubenv::Block::Empty();
  std::mt19937 rng(20240611);
  const std::vector<std::string> names = {"a", "ab", "b", "OSU_TRY", "x_1"};
  const std::string alphabet = "xy \\\n=#";
  auto pick = [&](size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(rng); };
  int refused = 0;
  for (int i = 0; i < 200; ++i) {
    const std::string& name = names[pick(names.size())];
    if (pick(4) == 0) {
      ours.Unset(name);
      MustRun("grub-editenv " + Quote(theirs) + " unset " + name);
    } else {
      // Mostly short values, some long enough to fill the block and be refused.
      size_t len = pick(3) == 0 ? 300 + pick(650) : pick(120);
      std::string value;
      for (size_t j = 0; j < len; ++j) value += alphabet[pick(alphabet.size())];
      bool ok = ours.Set(name, value);
      const std::string set = " set " + Quote(name + "=" + value);
      int rc = Run("grub-editenv " + Quote(theirs) + set).exit_code;
      CHECK(ok == (rc == 0));
      refused += ok ? 0 : 1;
    }
    REQUIRE(ours.bytes() == ReadFile(theirs));
  }
  CHECK(refused > 0);  // the full-block paths were exercised
}

TEST_CASE("a name held twice: grub-editenv edits the first, we keep and edit the last") {
  osu::test::RequireTool("grub-editenv");
  TempDir dir;
  const std::string path = dir / "grubenv";
  MustRun("grub-editenv " + path + " create");
  // grub-editenv never writes a duplicate; a hand edit or another tool can. Built from its
  // own file: the header and padding are the tool's.
  std::string bytes = ReadFile(path);
  const std::string lines = "OSU_ORDER=A B\nOSU_B_LEFT=3\nOSU_ORDER=B A\nOSU_B_LEFT=1\n";
  const size_t at = bytes.find_last_not_of('#') + 1;
  bytes.replace(at, lines.size(), lines);
  WriteFile(path, bytes);
  WriteFile(dir / "editenv", bytes);
  // The tool lists both; its set changes the first, which load_env then overrides with the
  // last (grub_cfg_test boots this in grub-emu).
  CHECK(MustRun("grub-editenv " + path + " list") == lines);
  MustRun("grub-editenv " + (dir / "editenv") + " set OSU_B_LEFT=0");
  CHECK(MustRun("grub-editenv " + (dir / "editenv") + " list") ==
        "OSU_ORDER=A B\nOSU_B_LEFT=0\nOSU_ORDER=B A\nOSU_B_LEFT=1\n");

  auto env = osu::MakeGrubEnv(path);
  REQUIRE(env->Apply({{"OSU_B_LEFT", "0"}}).ok());
  CHECK(MustRun("grub-editenv " + path + " list") == "OSU_ORDER=B A\nOSU_B_LEFT=0\n");
  CHECK(MustRun("grub-editenv " + path + ".bak list") == "OSU_ORDER=B A\nOSU_B_LEFT=0\n");
}

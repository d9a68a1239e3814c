// uboot-scripts/boot.cmd's decisions, against the model it implements (SimulateBoot). The
// script runs under bash with U-Boot's commands (env, saveenv, load, test -e, setexpr, booti,
// reset) stubbed over a boot partition in a temp directory: this checks its logic and the files
// it loads, not U-Boot's hush itself (that is proved in QEMU).
#include <catch2/catch.hpp>

#include <sstream>

#include "boot/selection.hpp"
#include "boot/selection_copy.hpp"
#include "bootenv/uboot_slot_config.hpp"
#include "support/support.hpp"

using osu::EnvVars;
using osu::SlotId;
using osu::test::MustRun;
using osu::test::TempDir;
using osu::test::WriteFile;

namespace {

// U-Boot's commands as bash functions. A run prints "SAVE <env>" for each saveenv, then
// "BOOTI <args> | <bootargs>" or "RESET", or nothing more (the script ended).
const char* kStubs = R"SH(
declare -A MEM
# himport_r: '\' takes the next byte literally.
unescape() {
  local in=$1 out= i
  for ((i = 0; i < ${#in}; i++)); do
    if [ "${in:i:1}" = '\' ] && [ $((i + 1)) -lt ${#in} ]; then i=$((i + 1)); fi
    out+=${in:i:1}
  done
  printf '%s' "$out"
}
env() {
  case "$1" in
    set) local n=$2; shift 2
         if [ $# -eq 0 ]; then unset "$n"; else printf -v "$n" '%s' "$*"; fi ;;
    import) shift
         # -c: a CRC-checked binary env image (U-Boot's env_t): mkenvimage's format.
         if [ "$1" = -c ]; then
           local f=${MEM[$2]} v line name out; shift 3
           out=$(python3 -c 'import sys, zlib
d = open(sys.argv[1], "rb").read()
if len(d) < 5 or int.from_bytes(d[:4], "little") != zlib.crc32(d[4:]): sys.exit(1)
for e in d[4:].split(b"\0"):
    if not e: break
    print(e.decode())' "$f") || { echo "## Error: bad CRC, import failed"; return 1; }
           for v in "$@"; do unset "$v"; done
           while IFS= read -r line; do
             name=${line%%=*}
             for v in "$@"; do [ "$v" = "$name" ] && printf -v "$name" '%s' "${line#*=}"; done
           done <<< "$out"
           return 0
         fi
         [ "$1" = -t ] || return 1
         local f=${MEM[$2]} v line name value; shift 3
         for v in "$@"; do unset "$v"; done
         while IFS= read -r line || [ -n "$line" ]; do
           case "$line" in '#'*|'') continue ;; esac
           name=${line%%=*}; value=$(unescape "${line#*=}")
           for v in "$@"; do
             if [ "$v" = "$name" ]; then
               if [ -n "$value" ]; then printf -v "$name" '%s' "$value"; else unset "$name"; fi
             fi
           done
         done < "$f" ;;
  esac
}
saveenv() {
  echo "SAVE OSU_ORDER=${OSU_ORDER-} OSU_A_LEFT=${OSU_A_LEFT-} OSU_B_LEFT=${OSU_B_LEFT-} OSU_TRY=${OSU_TRY-}"
  return ${SAVE_FAILS:-0}
}
load() {
  [ "$1 $2" = "$EXPECT_DEV" ] || { echo "WRONG DEVICE $1 $2"; return 1; }
  [ -f "$BOOTFS$4" ] || return 1
  MEM[$3]=$BOOTFS$4; printf -v filesize '%x' "${SIZES[$4]}"
}
test() {
  if [ "$1" = -e ]; then [ "$2 $3" = "$EXPECT_DEV" ] && [ -f "$BOOTFS$4" ]; else builtin test "$@"; fi
}
setexpr() {
  case "$2" in
    sub) [ "$3" = '.*/' ] && [ "$4" = '' ] && printf -v "$1" '%s' "${!1##*/}" ;;
    *) printf -v "$1" '0x%x' $(( $2 $3 $4 )) ;;
  esac
}
booti() { echo "BOOTI $* | $bootargs | comp=${kernel_comp_addr_r-}:${kernel_comp_size-}"; exit 0; }
reset() { echo RESET; exit 0; }
)SH";

std::string Quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

// File sizes for `load`'s filesize, computed once (a stat per load would be slow).
std::string Sizes(const std::string& fs) {
  return "declare -A SIZES\n" +
         MustRun("cd " + Quote(fs) + " && find osu -type f -printf 'SIZES[/%p]=%s\\n'");
}

// A Pi-like env and a boot partition: A has vmlinuz + initrd.img, B has Image + its dtb.
struct Board {
  TempDir dir;
  std::string prelude;

  Board() {
    const std::string fs = dir / "bootfs";
    MustRun("mkdir -p " + fs + "/osu/A " + fs + "/osu/B");
    WriteFile(fs + "/osu/A/boot.env", *osu::UbootSlotEnv("PARTUUID=aaaa-02", "console=ttyS0 quiet"));
    WriteFile(fs + "/osu/A/vmlinuz", std::string(1000, 'k'));
    WriteFile(fs + "/osu/A/initrd.img", std::string(4096, 'i'));
    WriteFile(fs + "/osu/B/boot.env", *osu::UbootSlotEnv("PARTUUID=bbbb-03", "a\\b"));
    WriteFile(fs + "/osu/B/Image", std::string(2000, 'K'));
    WriteFile(fs + "/osu/B/bcm2711-rpi-4-b.dtb", std::string(100, 'd'));
    WriteFile(dir / "stubs.sh", kStubs);
    Rescan();
  }

  // The prelude over the boot partition's files as they are now (`load` takes sizes from it).
  void Rescan() {
    const std::string fs = dir / "bootfs";
    prelude = ". " + Quote(dir / "stubs.sh") + "\nBOOTFS=" + Quote(fs) + "\n" + Sizes(fs) +
              "\nEXPECT_DEV='mmc 0:1'\nkernel_addr_r=0x80000 ramdisk_addr_r=0x2700000 "
              "fdt_addr_r=0x2600000 fdt_addr=0x2eff2e00 "
              "fdtfile=broadcom/bcm2711-rpi-4-b.dtb\n";
  }

  // Runs boot.cmd with `vars` set (absent = unset); returns its output.
  std::string Boot(const EnvVars& vars, const std::string& extra = "") const {
    std::string script = prelude + extra;
    for (const auto& [k, v] : vars) script += k + "=" + Quote(v) + "\n";
    script += ". " + Quote(osu::test::SourceDir() + "/uboot-scripts/boot.cmd") + "\n";
    WriteFile(dir / "run.sh", script);
    return MustRun("bash " + Quote(dir / "run.sh") + " 2>&1");
  }
};

std::vector<std::string> Lines(const std::string& s, const std::string& prefix) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string line; std::getline(in, line);)
    if (line.rfind(prefix, 0) == 0) out.push_back(line.substr(prefix.size()));
  return out;
}

EnvVars ParseSaved(const std::string& saved) {
  EnvVars vars;
  std::istringstream in(saved);
  for (std::string word; in >> word;) {
    auto eq = word.find('=');
    if (eq != std::string::npos && eq + 1 < word.size()) vars[word.substr(0, eq)] = word.substr(eq + 1);
  }
  // OSU_ORDER holds a space: take it from the raw line.
  auto from = saved.find("OSU_ORDER=") + 10, to = saved.find(" OSU_A_LEFT=");
  if (to > from) vars["OSU_ORDER"] = saved.substr(from, to - from);
  else vars.erase("OSU_ORDER");
  return vars;
}

// The one kernel a run booted: its BOOTI line.
std::string Booted(const std::string& out) {
  const auto booted = Lines(out, "BOOTI ");
  REQUIRE(booted.size() == 1);
  return booted[0];
}

bool SameSelection(const osu::BootSelection& a, const osu::BootSelection& b) {
  return a.order == b.order && a.left[0] == b.left[0] && a.left[1] == b.left[1] &&
         a.try_slot == b.try_slot;
}

}  // namespace

TEST_CASE("boot.cmd picks the slot SimulateBoot picks, and saves what it saves", "[ubootscript]") {
  osu::test::RequireTool("bash");
  Board board;
  const std::vector<std::optional<std::string>> orders = {
      std::nullopt, "A B", "B A", "B", "A", "C", "C B A", "B B", "x y"};
  const std::vector<std::optional<std::string>> lefts = {std::nullopt, "0", "1", "2", "3", "x"};
  const std::vector<std::optional<std::string>> tries = {std::nullopt, "A", "B", "C"};

  // All cases in one bash run, each in a subshell, separated by "CASE <n>" lines.
  std::vector<EnvVars> cases;
  std::string script = board.prelude;
  for (const auto& order : orders)
    for (const auto& a : lefts)
      for (const auto& b : lefts)
        for (const auto& t : tries) {
          EnvVars vars;
          if (order) vars["OSU_ORDER"] = *order;
          if (a) vars["OSU_A_LEFT"] = *a;
          if (b) vars["OSU_B_LEFT"] = *b;
          if (t) vars["OSU_TRY"] = *t;
          script += "echo CASE " + std::to_string(cases.size()) + "\n(\n";
          for (const auto& [k, v] : vars) script += k + "=" + Quote(v) + "\n";
          script += ". " + Quote(osu::test::SourceDir() + "/uboot-scripts/boot.cmd") + "\n)\n";
          cases.push_back(vars);
        }
  WriteFile(board.dir / "all.sh", script);
  const std::string out = MustRun("bash " + Quote(board.dir / "all.sh") + " 2>&1");

  std::vector<std::string> chunks;
  {
    std::istringstream in(out);
    for (std::string line; std::getline(in, line);) {
      if (line.rfind("CASE ", 0) == 0) chunks.emplace_back();
      else if (!chunks.empty()) chunks.back() += line + "\n";
    }
  }
  REQUIRE(chunks.size() == cases.size());
  for (size_t i = 0; i < cases.size(); ++i) {
    const EnvVars& vars = cases[i];
    const osu::BootSelection before = osu::ParseSelection(vars);
    const osu::BootOutcome want = osu::SimulateBoot(before);
    std::string desc;
    for (const auto& [k, v] : vars) desc += k + "='" + v + "' ";
    INFO("env: " << desc << "\nscript output:\n" << chunks[i]);

    const auto booted = Lines(chunks[i], "BOOTI ");
    REQUIRE(booted.size() == 1);
    const std::string slot(1, osu::SlotLetter(want.slot));
    CHECK(booted[0].find(" osu.slot=" + slot) != std::string::npos);
    CHECK((booted[0].find(" osu.trial=1") != std::string::npos) == want.trial);

    const auto saves = Lines(chunks[i], "SAVE ");
    const bool changed = !SameSelection(want.env_after, before);
    CHECK(saves.size() == (changed ? 1u : 0u));
    if (!saves.empty()) CHECK(SameSelection(osu::ParseSelection(ParseSaved(saves[0])), want.env_after));
  }
}

TEST_CASE("boot.cmd loads the slot's files and builds its command line", "[ubootscript]") {
  osu::test::RequireTool("bash");
  Board board;
  SECTION("A: gzip'd vmlinuz, initrd, the firmware's device tree") {
    auto out = board.Boot({{"OSU_ORDER", "A B"}, {"OSU_A_LEFT", "3"}});
    CHECK(Lines(out, "BOOTI ") ==
          std::vector<std::string>{"0x80000 0x2700000:1000 0x2eff2e00 | root=PARTUUID=aaaa-02 "
                                   "osu.slot=A console=ttyS0 quiet | comp=0xa700000:3e8"});
  }
  SECTION("B on trial: Image, no initrd, the slot's own device tree, escaped command line") {
    auto out = board.Boot({{"OSU_ORDER", "A B"}, {"OSU_TRY", "B"}});
    CHECK(Lines(out, "BOOTI ") ==
          std::vector<std::string>{"0x80000 - 0x2600000 | root=PARTUUID=bbbb-03 osu.slot=B "
                                   "a\\b osu.trial=1 | comp=0xa700000:7d0"});
  }
  SECTION("qemu: no fdt_addr, U-Boot's own device tree; device from distro boot") {
    auto out = board.Boot({{"OSU_ORDER", "A B"}, {"OSU_A_LEFT", "1"}},
                          "unset fdt_addr fdt_addr_r fdtfile\nfdtcontroladdr=7ed0000\n"
                          "devtype=virtio devnum=0 distro_bootpart=1\n"
                          "EXPECT_DEV='virtio 0:1'\n");
    auto booted = Lines(out, "BOOTI ");
    REQUIRE(booted.size() == 1);
    CHECK(booted[0].rfind("0x80000 0x2700000:1000 7ed0000 |", 0) == 0);
  }
  SECTION("a slot whose boot.env is missing: reset, the counted attempt moves on") {
    MustRun("rm " + (board.dir / "bootfs/osu/A/boot.env"));
    auto out = board.Boot({{"OSU_ORDER", "A B"}, {"OSU_A_LEFT", "2"}});
    CHECK(Lines(out, "SAVE ") == std::vector<std::string>{
                                     "OSU_ORDER=A B OSU_A_LEFT=1 OSU_B_LEFT= OSU_TRY="});
    CHECK(Lines(out, "RESET").size() == 1);
    CHECK(Lines(out, "BOOTI ").empty());
  }
  SECTION("a slot that fails without attempts left: no reset loop") {
    MustRun("rm " + (board.dir / "bootfs/osu/A/vmlinuz"));
    auto out = board.Boot({{"OSU_ORDER", "A B"}, {"OSU_A_LEFT", "0"}, {"OSU_B_LEFT", "0"}});
    CHECK(Lines(out, "SAVE ").empty());
    CHECK(Lines(out, "RESET").empty());
    CHECK(Lines(out, "BOOTI ").empty());
  }
  SECTION("a trial whose clearing cannot be saved is not booted") {
    auto out = board.Boot({{"OSU_ORDER", "A B"}, {"OSU_TRY", "B"}, {"OSU_A_LEFT", "3"}},
                          "SAVE_FAILS=1\n");
    auto booted = Lines(out, "BOOTI ");
    REQUIRE(booted.size() == 1);
    CHECK(booted[0].find("osu.slot=A") != std::string::npos);
    CHECK(booted[0].find("osu.trial") == std::string::npos);
  }
}

// The Pi's env is one file on FAT (uboot.env; U-Boot's rpi_4 build has no redundant env): a power
// cut inside its in-place rewrite, by U-Boot's saveenv or by libubootenv, leaves a bad CRC and
// U-Boot boots on its built-in default env, without any OSU_* variable. boot.cmd then takes the
// order and the attempts from os-update's copies (SelectionCopyImage, written by os-update).
TEST_CASE("boot.cmd: a lost env boots the committed slot from os-update's selection copies",
          "[ubootscript]") {
  osu::test::RequireTool("bash");
  osu::test::RequireTool("python3");
  Board board;
  osu::BootSelection committed_b;
  committed_b.order = {SlotId::B, SlotId::A};
  committed_b.attempts(SlotId::A) = 3;
  committed_b.attempts(SlotId::B) = 3;
  const std::string copy = board.dir / "bootfs/osu/selection.env";
  const std::string bak = copy + ".bak";
  const std::string torn = osu::SelectionCopyImage(committed_b).substr(0, 100) +
                           std::string(osu::kSelectionCopySize - 100, '\xff');
  auto boot = [&](const EnvVars& vars) {
    board.Rescan();
    return board.Boot(vars);
  };
  // U-Boot's default env: bootcmd and friends, nothing of os-update's.
  const EnvVars lost = {{"bootcmd", "run distro_bootcmd"}};

  SECTION("both copies valid: the committed B boots, its attempt counted, the env saved whole") {
    WriteFile(copy, osu::SelectionCopyImage(committed_b));
    WriteFile(bak, osu::SelectionCopyImage(committed_b));
    auto out = boot(lost);
    CHECK(Lines(out, "os-update: env lost; order and attempts from ").size() == 1);
    CHECK(Booted(out).find(" osu.slot=B ") != std::string::npos);
    CHECK(Booted(out).find("osu.trial") == std::string::npos);
    CHECK(Lines(out, "SAVE ") == std::vector<std::string>{"OSU_ORDER=B A OSU_A_LEFT=3 OSU_B_LEFT=2 OSU_TRY="});
  }
  SECTION("the copy torn (a cut inside os-update's rename window): the .bak") {
    WriteFile(copy, torn);
    WriteFile(bak, osu::SelectionCopyImage(committed_b));
    auto out = boot(lost);
    CHECK(Lines(out, "os-update: env lost; order and attempts from /osu/selection.env.bak").size() == 1);
    CHECK(Booted(out).find(" osu.slot=B ") != std::string::npos);
  }
  SECTION("no valid copy (a device from before the copies): the model's default, A") {
    WriteFile(copy, torn);
    auto out = boot(lost);
    CHECK(Lines(out, "os-update: env lost").empty());
    CHECK(Booted(out).find(" osu.slot=A ") != std::string::npos);
  }
  SECTION("a valid env wins over the copies (they may be one write ahead of it)") {
    WriteFile(copy, osu::SelectionCopyImage(committed_b));
    auto out = boot({{"OSU_ORDER", "A B"}, {"OSU_A_LEFT", "3"}, {"OSU_TRY", "B"}});
    CHECK(Lines(out, "os-update: env lost").empty());
    CHECK(Booted(out).find(" osu.slot=B ") != std::string::npos);
    CHECK(Booted(out).find(" osu.trial=1") != std::string::npos);
  }
}

// The kernel command line and what is read from it: KernelCmdline, FindBootedSlot (with
// /proc/self/mountinfo text), KexecCmdline, and the boot selection read from env variables.
// Input: <kernel command line> [NUL <mountinfo text>].
#include <sys/sysmacros.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "activate/activator.hpp"
#include "boot/selection.hpp"
#include "bootenv/grub_slot_config.hpp"
#include "fuzz_check.hpp"
#include "slots/slots.hpp"

using osu::SlotId;
using osu::fuzz::Check;

namespace {

osu::SlotPair TestSlots() {
  osu::SlotPair pair;
  pair.slots[0].id = SlotId::A;
  pair.slots[0].part = {"/dev/vda", "/dev/vda3", 3, 0, 0, "p.lxreadonly",
                        "6e2c7d3a-52a1-4c3e-9f0b-0a1b2c3d4e5f", makedev(253, 3)};
  pair.slots[1].id = SlotId::B;
  pair.slots[1].part = {"/dev/vda", "/dev/vda4", 4, 0, 0, "p.lxrootclone1",
                        "9b1f0c2e-7d4a-4e8b-a6c5-f0e1d2c3b4a5", makedev(253, 4)};
  return pair;
}

using Args = std::vector<std::pair<std::string, std::optional<std::string>>>;

bool Removed(const std::string& key) {
  return key == "root" || key == "osu.slot" || key == "osu.trial" || key == "BOOT_IMAGE";
}

void CheckKexec(const osu::SlotPair& slots, const osu::KernelCmdline& current,
                const std::string& text, SlotId target) {
  auto out = osu::KexecCmdline(text, slots[target]);
  if (!out) return;
  const osu::KernelCmdline next(*out);
  const std::string letter(1, osu::SlotLetter(target));
  // The new kernel must boot exactly the target slot, as a trial.
  Check(next.Get("osu.slot") == letter, "kexec command line lost osu.slot=" + letter + ": " + *out);
  Check(next.Get("osu.trial") == "1", "kexec command line lost osu.trial=1: " + *out);
  auto root = next.Get("root");
  Check(root.has_value(), "kexec command line has no root=: " + *out);
  const auto& p = slots[target].part;
  Check(*root == "PARTUUID=" + p.partuuid || *root == "PARTLABEL=" + p.label || *root == p.device,
        "kexec command line has root=" + *root + " for slot " + letter + ": " + *out);
  auto booted = osu::FindBootedSlot(slots, *out, "");
  Check(booted && *booted == target, "kexec command line does not identify slot " + letter +
                                         ": " + *out);
  // Every other argument is kept as the kernel saw it.
  Args kept;
  for (const auto& a : current.args())
    if (!Removed(a.first)) kept.push_back(a);
  Args got;
  for (const auto& a : next.args())
    if (!Removed(a.first)) got.push_back(a);
  Check(got == kept, "kexec command line changed the other arguments:\n  in:  " + text +
                         "\n  out: " + *out);
  Check(next.init_args() == current.init_args(), "kexec command line changed init's arguments:\n"
                                                 "  in:  " + text + "\n  out: " + *out);
}

void CheckSelection(const osu::KernelCmdline& cmdline) {
  osu::EnvVars vars;
  for (const auto& [k, v] : cmdline.args()) vars[k] = v.value_or("");
  const osu::BootSelection s = osu::ParseSelection(vars);
  Check(!s.order.empty(), "empty boot order");
  for (SlotId id : {SlotId::A, SlotId::B})
    Check(s.attempts(id) >= 0 && s.attempts(id) <= osu::kMaxAttempts, "attempts out of range");
  // What SelectionChanges writes reads back as the same selection.
  osu::EnvVars written;
  for (const auto& [k, v] : osu::SelectionChanges(s))
    if (v) written[k] = *v;
  const osu::BootSelection back = osu::ParseSelection(written);
  Check(back.order == s.order && back.left[0] == s.left[0] && back.left[1] == s.left[1] &&
            back.try_slot == s.try_slot,
        "boot selection changed in a write/read round trip");
  const osu::BootOutcome boot = osu::SimulateBoot(s);
  Check(!boot.env_after.try_slot, "the bootloader kept OSU_TRY");
  for (SlotId id : {SlotId::A, SlotId::B})
    Check(boot.env_after.attempts(id) >= 0 && boot.env_after.attempts(id) <= s.attempts(id),
          "a boot raised or underflowed attempts");
}

// GRUB's reading of a double-quoted word (grub-core/script/yylex.l): '\' escapes '$', '"', '\'
// and newline; before anything else it stays. Returns the bytes and moves `p` past the word.
std::optional<std::string> GrubUnquote(const std::string& text, size_t& p) {
  if (p >= text.size() || text[p] != '"') return std::nullopt;
  std::string out;
  for (++p; p < text.size(); ++p) {
    const char c = text[p];
    if (c == '"') {
      ++p;
      return out;
    }
    if (c == '$' || c == '\n') return std::nullopt;  // a variable or a line end: not literal
    if (c == '\\' && p + 1 < text.size() &&
        (text[p + 1] == '$' || text[p + 1] == '"' || text[p + 1] == '\\')) {
      out += text[++p];
    } else {
      out += c;
    }
  }
  return std::nullopt;
}

// The per-slot grub.cfg gives GRUB back the root and command line (control bytes as spaces);
// a command line with a quote or a backslash is refused, and only such a one.
void CheckGrubSlotConfig(const std::string& text) {
  const std::string root = "PARTUUID=6e2c7d3a-52a1-4c3e-9f0b-0a1b2c3d4e5f";
  auto made = osu::GrubSlotConfig(root, text);
  const bool refusable = text.find_first_of("\"'\\") != std::string::npos;
  Check(!made == refusable, refusable ? "grub.cfg takes a quote or backslash: " + text
                                      : "grub.cfg refuses a command line without quotes: " + text);
  if (!made) return;
  const std::string& cfg = *made;
  std::string want = text;
  for (char& c : want)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = ' ';
  size_t p = std::string("set osu_root=").size();
  Check(cfg.rfind("set osu_root=", 0) == 0 && GrubUnquote(cfg, p) == root,
        "grub.cfg does not set osu_root: " + cfg);
  const std::string next = "\nset osu_cmdline=";
  Check(cfg.compare(p, next.size(), next) == 0, "grub.cfg has more than osu_root on line 1");
  p += next.size();
  Check(GrubUnquote(cfg, p) == want, "grub.cfg does not give back the command line: " + cfg);
  Check(p + 1 == cfg.size() && cfg[p] == '\n', "grub.cfg has more after osu_cmdline: " + cfg);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  const size_t nul = input.find('\0');
  const std::string text = input.substr(0, nul);
  const std::string mountinfo = nul == std::string::npos ? "" : input.substr(nul + 1);
  static const osu::SlotPair slots = TestSlots();

  const osu::KernelCmdline cmdline(text);
  for (const auto& [key, value] : cmdline.args()) {
    auto got = cmdline.Get(key);
    Check(got.has_value(), "Get misses a parsed key");
  }
  auto booted = osu::FindBootedSlot(slots, text, mountinfo);
  if (auto letter = cmdline.Get("osu.slot"); letter && osu::ParseSlotLetter(*letter))
    Check(booted && *booted == *osu::ParseSlotLetter(*letter), "osu.slot= was not obeyed");
  (void)osu::IsSlotMounted(slots[SlotId::A], mountinfo);

  CheckKexec(slots, cmdline, text, SlotId::A);
  CheckKexec(slots, cmdline, text, SlotId::B);
  CheckSelection(cmdline);
  CheckGrubSlotConfig(text);
  return 0;
}

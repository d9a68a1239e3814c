// The Pi firmware backend: config.txt / tryboot.txt stay as the image shipped them; the slot
// choice is in the small files they include, each replaced whole (temp, fsync, rename, fsync
// again, fsync dir), in an order where every prefix boots the committed slot or the trial.
#include "bootenv/pi_firmware.hpp"

#include <sys/stat.h>

#include <cerrno>
#include <sstream>

#include "common/fd.hpp"

namespace osu {
namespace {

constexpr size_t kLineLimit = 98;  // the firmware ignores what follows (config_txt docs)
constexpr int kIncludeDepth = 8;

bool PathExists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 || errno != ENOENT;
}

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\r' || s.back() == ' ' || s.back() == '\t')) s.pop_back();
  size_t start = s.find_first_not_of(" \t");
  return start == std::string::npos ? "" : s.substr(start);
}

Result ReadPrefix(const std::string& boot, const std::string& file, bool tryboot, int depth,
                  std::string& prefix) {
  if (depth > kIncludeDepth)
    return DeviceError("'" + file + "' on the boot partition: includes nested too deep");
  // A missing include adds nothing (tryboot.txt before its first trial, a hand edit).
  if (depth > 0 && !PathExists(boot + "/" + file)) return {};
  auto text = ReadFile(boot + "/" + file);
  if (!text) return text.error();
  std::istringstream in(*text);
  std::string line;
  bool active = true;
  while (std::getline(in, line)) {
    line = Trim(line.substr(0, kLineLimit));
    if (line.empty() || line[0] == '#') continue;
    if (line.front() == '[' && line.back() == ']') {
      const std::string filter = line.substr(1, line.size() - 2);
      active = filter != "none" && (filter != "tryboot" || tryboot);
      continue;
    }
    if (!active) continue;
    if (line.rfind("include ", 0) == 0) {
      if (auto r = ReadPrefix(boot, Trim(line.substr(8)), tryboot, depth + 1, prefix); !r)
        return r;
    } else if (line.rfind("os_prefix=", 0) == 0) {
      prefix = line.substr(10);
    }
  }
  return {};
}

std::string SlotPrefix(SlotId s) { return "osu/" + SlotName(s) + "/"; }

class PiFirmwareEnv final : public BootEnv {
 public:
  explicit PiFirmwareEnv(std::string boot) : boot_(std::move(boot)) {}

  Expected<EnvVars> Load() override {
    auto committed = Committed();
    if (!committed) return committed.error();
    auto trial = Trial();
    if (!trial) return trial.error();
    const SlotId other = OtherSlot(*committed);
    EnvVars vars;
    vars["OSU_ORDER"] = SlotName(*committed) + " " + SlotName(other);
    vars["OSU_" + SlotName(*committed) + "_LEFT"] = "3";
    vars["OSU_" + SlotName(other) + "_LEFT"] = "0";
    if (*trial && **trial != *committed) vars["OSU_TRY"] = SlotName(**trial);
    return vars;
  }

  Result Apply(const EnvChanges& changes) override {
    auto committed = Committed();
    if (!committed) return committed.error();
    SlotId want = *committed;
    if (auto it = changes.find("OSU_ORDER"); it != changes.end() && it->second) {
      const std::string& order = *it->second;
      auto first = ParseSlotLetter(order.substr(0, order.find(' ')));
      if (!first)
        return UsageError("OSU_ORDER '" + order + "' names no slot first for " + Describe());
      want = *first;
    }
    // tryboot.txt follows the committed slot unless a trial is asked for: a slot being
    // written is then never what a tryboot reboot would start.
    std::optional<SlotId> trial;
    if (auto it = changes.find("OSU_TRY"); it != changes.end() && it->second) {
      trial = ParseSlotLetter(*it->second);
      if (!trial)
        return UsageError("OSU_TRY '" + *it->second + "' is not a slot for " + Describe());
    }
    // tryboot.txt first: while the committed slot changes it already names the slot being
    // committed (or the trial asked for), never the one being left. Then the copy: a cut
    // before the primary is written leaves the old primary, whose os_prefix wins; a primary
    // cut to nothing leaves the copy's.
    const bool marked = trial && *trial != want;
    if (auto r = PutTrial(marked ? *trial : want, marked); !r) return r;
    const std::string line = "os_prefix=" + SlotPrefix(want) + "\n";
    for (const char* name : {kPiCommittedCopy, kPiCommitted})
      if (auto r = Put(name, line); !r) return r;
    return {};
  }

  bool Exists() const override { return PathExists(boot_ + "/" + kPiConfigTxt); }
  std::string Describe() const override {
    return "Pi firmware config '" + boot_ + "/" + kPiConfigTxt + "'";
  }
  std::string TrialRebootArgument() const override { return kTrybootRebootArgument; }

 private:
  Expected<SlotId> Committed() const {
    auto prefix = PiOsPrefix(boot_, kPiConfigTxt, false);
    if (!prefix) return prefix.error();
    auto slot = PiPrefixSlot(*prefix);
    if (!slot)
      return DeviceError(Describe() + " selects no slot (os_prefix '" + *prefix +
                         "'; expected osu/A/ or osu/B/ from " + kPiCommitted + ")");
    return *slot;
  }
  Expected<std::optional<SlotId>> Trial() const {
    if (!PathExists(boot_ + "/" + kPiTrybootTxt)) return std::optional<SlotId>();
    auto prefix = PiOsPrefix(boot_, kPiTrybootTxt, true);
    if (!prefix) return prefix.error();
    return PiPrefixSlot(*prefix);
  }

  // Replaced whole, and only when it differs: flash wears, and a file not written cannot tear.
  Result Put(const std::string& name, const std::string& text) const {
    const std::string path = boot_ + "/" + name;
    if (auto current = ReadFile(path); current && *current == text) return {};
    if (auto r = MakeDirectories(DirName(path)); !r) return r;
    return InstallFile(path, text);
  }

  Result PutTrial(SlotId slot, bool marked) const {
    std::string text = "os_prefix=" + SlotPrefix(slot) + "\n";
    if (marked) {
      // The trial's command line: its own, marked, so that the trial timeout runs in it.
      auto own = ReadFile(boot_ + "/" + SlotPrefix(slot) + kPiSlotCmdline);
      if (!own) return own.error().Context("slot " + SlotName(slot) + " has no command line");
      std::string cmdline = Trim(own->substr(0, own->find('\n')));
      if (auto r = Put(kPiTrialCmdline, cmdline + " osu.trial=1\n"); !r) return r;
      text += std::string("cmdline=/") + kPiTrialCmdline + "\n";
    }
    return Put(kPiTrial, text);
  }

  std::string boot_;
};

}  // namespace

Expected<std::string> PiOsPrefix(const std::string& boot_path, const std::string& file,
                                 bool tryboot) {
  std::string prefix;
  if (auto r = ReadPrefix(boot_path, file, tryboot, 0, prefix); !r) return r.error();
  return prefix;
}

std::optional<SlotId> PiPrefixSlot(const std::string& prefix) {
  if (prefix == SlotPrefix(SlotId::A)) return SlotId::A;
  if (prefix == SlotPrefix(SlotId::B)) return SlotId::B;
  return std::nullopt;
}

Expected<std::string> PiSlotCmdlineText(const std::string& root, SlotId slot,
                                        const std::string& cmdline) {
  const std::string text = "root=" + root + " osu.slot=" + SlotName(slot) +
                           (cmdline.empty() ? "" : " " + cmdline);
  for (char c : text)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
      return UsageError("the Pi's cmdline.txt must be one line: the command line holds a "
                        "control character");
  return text + "\n";
}

PiBootState ReadPiBootState(const std::string& boot_path, const std::string& device_tree_path) {
  PiBootState st;
  if (auto p = PiOsPrefix(boot_path, kPiConfigTxt, false)) st.config_txt = PiPrefixSlot(*p);
  if (PathExists(boot_path + "/" + kPiTrybootTxt))
    if (auto p = PiOsPrefix(boot_path, kPiTrybootTxt, true)) st.tryboot_txt = PiPrefixSlot(*p);
  // A device-tree cell: 4 bytes, big-endian.
  if (auto flag = ReadFile(device_tree_path + "/chosen/bootloader/tryboot");
      flag && flag->size() == 4)
    st.tryboot_flag = (*flag)[3] != 0 || (*flag)[2] != 0 || (*flag)[1] != 0 || (*flag)[0] != 0;
  return st;
}

std::unique_ptr<BootEnv> MakePiFirmwareEnv(const std::string& boot_path) {
  return std::make_unique<PiFirmwareEnv>(boot_path);
}

}  // namespace osu

#include "activate/activator.hpp"

namespace osu {
namespace {

using Arg = std::pair<std::string, std::optional<std::string>>;

// The text of one argument that the kernel parses back to exactly `arg` and that ends no
// quote open (else it would swallow what follows: tabs, quotes, a "--" inside a value).
// Tried plain, then the value quoted, then the whole argument quoted; nullopt when none works.
std::optional<std::string> ArgText(const Arg& arg) {
  const auto& [key, value] = arg;
  std::vector<std::string> forms;
  if (value) {
    forms = {key + "=" + *value, key + "=\"" + *value + "\"", "\"" + key + "=" + *value + "\""};
  } else {
    forms = {key, "\"" + key + "\""};
  }
  for (const auto& text : forms) {
    const std::vector<Arg> want{arg, {"x", std::nullopt}};
    if (KernelCmdline(text + " x").args() == want) return text;
  }
  return std::nullopt;
}

}  // namespace

Expected<std::string> KexecCmdline(const std::string& current, const Slot& target) {
  KernelCmdline parsed(current);
  std::optional<std::string> root = parsed.Get("root");
  const bool has_slot = parsed.Get("osu.slot").has_value();

  std::string new_root;
  if (root && root->rfind("PARTUUID=", 0) == 0) {
    if (target.part.partuuid.empty())
      return StateError("slot " + SlotName(target.id) +
                        " has no partition UUID for root=PARTUUID=");
    new_root = "PARTUUID=" + target.part.partuuid;
  } else if (root && root->rfind("PARTLABEL=", 0) == 0) {
    new_root = "PARTLABEL=" + target.part.label;
  } else if (root && root->rfind("/dev/", 0) == 0 && !target.part.device.empty()) {
    new_root = target.part.device;
  } else if (has_slot && !target.part.partuuid.empty()) {
    new_root = "PARTUUID=" + target.part.partuuid;  // osu.slot= alone: name the partition exactly
  } else {
    return StateError("the kernel command line has no root=PARTUUID=, root=PARTLABEL=, root=/dev/ "
                      "or osu.slot= to rewrite for slot " +
                      SlotName(target.id) + ": '" + current + "'");
  }

  std::string out;
  for (const auto& [key, value] : parsed.args()) {
    if (key == "root" || key == "osu.slot" || key == "osu.trial" || key == "BOOT_IMAGE") continue;
    auto text = ArgText({key, value});
    if (!text)
      return StateError("cannot pass the kernel argument '" + key + (value ? "=" + *value : "") +
                        "' on to the kexec'd kernel: no quoting keeps it one argument");
    if (!out.empty()) out += ' ';
    out += *text;
  }
  if (!out.empty()) out += ' ';
  out += "root=" + new_root + " osu.slot=" + SlotLetter(target.id) + " osu.trial=1";
  // init's arguments ("-- single") stay init's: after ours, behind the "--".
  if (const auto& init = parsed.init_args()) out += " --" + (init->empty() ? "" : " " + *init);
  return out;
}

Result FakeActivator::LoadKexec(const std::string& kernel, const std::string& initrd,
                                const std::string& cmdline) {
  if (fail_load) return DeviceError("kexec_file_load failed: Operation not permitted");
  calls.push_back("load " + kernel + " " + initrd + " " + cmdline);
  return {};
}

Result FakeActivator::Kexec() {
  calls.push_back("kexec");
  return {};
}

Result FakeActivator::Reboot(const std::string& argument) {
  calls.push_back(argument.empty() ? "reboot" : "reboot " + argument);
  return {};
}

}  // namespace osu

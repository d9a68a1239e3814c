#include "bootenv/uboot_slot_config.hpp"

namespace osu {
namespace {

Expected<std::string> ImportLine(const std::string& name, const std::string& value) {
  std::string line = name + "=";
  for (char c : value) {
    if (c == '\n' || c == '\r' || c == '\0')
      return UsageError("the U-Boot slot env's " + name +
                        " must be one line: it contains a newline, carriage return or NUL");
    if (c == '\\') line += '\\';
    line += c;
  }
  return line + "\n";
}

}  // namespace

Expected<std::string> UbootSlotEnv(const std::string& root, const std::string& cmdline) {
  if (root.empty()) return UsageError("the U-Boot slot env needs a root (e.g. PARTUUID=...)");
  auto root_line = ImportLine("osu_root", root);
  if (!root_line) return root_line.error();
  auto cmdline_line = ImportLine("osu_cmdline", cmdline);
  if (!cmdline_line) return cmdline_line.error();
  return "# Written by os-update; read by boot.scr with env import -t\n" + *root_line +
         *cmdline_line;
}

}  // namespace osu

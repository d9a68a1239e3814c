#include "bootenv/grub_slot_config.hpp"

namespace osu {
namespace {

std::string GrubQuoted(const std::string& value) {
  std::string out = "\"";
  for (char c : value) {
    if (c == '"' || c == '$' || c == '\\') out += '\\';
    out += static_cast<unsigned char>(c) < 0x20 || c == 0x7f ? ' ' : c;
  }
  return out + '"';
}

}  // namespace

Expected<std::string> GrubSlotConfig(const std::string& root, const std::string& cmdline) {
  const size_t bad = cmdline.find_first_of("\"'\\");
  if (bad != std::string::npos)
    return VerificationError(std::string("the bundle's cmdline has a ") + cmdline[bad] +
                             ", which GRUB's linux command would hand the kernel as \\" +
                             cmdline[bad] + " (and its argument split at spaces): "
                             "GRUB devices need a command line without quotes and backslashes");
  return "set osu_root=" + GrubQuoted(root) + "\nset osu_cmdline=" + GrubQuoted(cmdline) + "\n";
}

}  // namespace osu

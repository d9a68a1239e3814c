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

std::string GrubSlotConfig(const std::string& root, const std::string& cmdline) {
  return "set osu_root=" + GrubQuoted(root) + "\nset osu_cmdline=" + GrubQuoted(cmdline) + "\n";
}

}  // namespace osu

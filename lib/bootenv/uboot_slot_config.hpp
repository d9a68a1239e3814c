// The per-slot file that uboot-scripts/boot.cmd reads with `env import -t`: /osu/<S>/boot.env
// on the boot partition, next to the slot's kernel, holding the slot's root and the bundle's
// kernel command line. boot.cmd boots with
//   bootargs = "root=${osu_root} osu.slot=<S> ${osu_cmdline}" (+ " osu.trial=1")
#pragma once

#include <string>

#include "common/error.hpp"

namespace osu {

// "osu_root=<root>\nosu_cmdline=<cmdline>\n", escaped as U-Boot's `env import -t` reads it
// (himport_r: '\' takes the next byte literally, so a '\' is written as "\\"). A newline, CR or
// NUL in either value is refused (Usage error): it would end the line and let the rest set other
// variables.
Expected<std::string> UbootSlotEnv(const std::string& root, const std::string& cmdline);

}  // namespace osu

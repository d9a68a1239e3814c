// The per-slot file /osu/<S>/grub.cfg that grub/grub.cfg `source`s: the slot's root and its
// bundle's kernel command line as two GRUB variables.
#pragma once

#include <string>

#include "common/error.hpp"

namespace osu {

// set osu_root="<root>"
// set osu_cmdline="<cmdline>"
// Both double-quoted with '"', '$' and '\' backslash-escaped, so GRUB's parser gives back the
// exact bytes. Newlines and other control characters become spaces (the kernel splits its
// command line on them anyway, and a raw newline would end the GRUB command).
// A command line with '"', '\'' or '\\' is refused (Verification error): grub.cfg expands
// ${osu_cmdline} into words at spaces, not at quotes, and GRUB's `linux` hands the kernel each
// of those characters with a backslash before it, which the kernel keeps: `a="b c"` would
// arrive as `a=\"b` and `c\"`. U-Boot and the Pi firmware pass such arguments as written.
Expected<std::string> GrubSlotConfig(const std::string& root, const std::string& cmdline);

}  // namespace osu

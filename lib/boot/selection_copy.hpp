// The committed slot, kept where a torn env write cannot take it. On the Raspberry Pi the U-Boot
// env is one file on FAT (uboot.env; the rpi_4 build has no redundant env): a power cut while
// U-Boot's saveenv or libubootenv rewrites it in place leaves a bad CRC, and U-Boot then boots
// on its built-in default env, which has no OSU_ORDER. So every change os-update makes to the
// order or the attempts is first installed, by rename, into two copies of the selection
// without OSU_TRY (U-Boot's env image format, CRC-checked), `path`.bak then `path`; boot.cmd
// imports the first valid one with `env import -c` when the env has no OSU_ORDER.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "boot/selection.hpp"
#include "bootenv/boot_env.hpp"

namespace osu {

inline constexpr size_t kSelectionCopySize = 4096;
// Where boot.cmd looks for the copies, relative to the boot partition.
inline constexpr const char* kSelectionCopyPath = "/osu/selection.env";

// The copy's image: OSU_ORDER and both attempts of `s` (normalized as ParseSelection reads
// them), no OSU_TRY.
std::string SelectionCopyImage(const BootSelection& s);

// `env` that keeps the copies at `path` (and `path`.bak) before every write of its own.
std::unique_ptr<BootEnv> WithSelectionCopy(std::unique_ptr<BootEnv> env, std::string path);

}  // namespace osu

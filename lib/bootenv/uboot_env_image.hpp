// U-Boot's binary env format for one copy (env_t without the redundant flag byte): a CRC32 of
// the data, little-endian, then "name=value\0" entries, an empty entry ending them, padding to
// the size. mkenvimage writes it, fw_printenv and U-Boot's `env import -c` check it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "bootenv/boot_env.hpp"
#include "common/error.hpp"

namespace osu {

// The image of `vars` in `size` bytes, padded with zeros (as `mkenvimage -p 0 -s size`).
// A name with '=' or a NUL in a name or value is a Usage error; variables that do not fit
// a Device error.
Expected<std::string> UbootEnvImage(const EnvVars& vars, size_t size);

// CRC-32 (IEEE 802.3, zlib's crc32): U-Boot's env checksum.
uint32_t Crc32(const void* data, size_t size);

}  // namespace osu

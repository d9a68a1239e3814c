// zlib's crc32 is the CRC U-Boot puts in front of every env copy.
#include <zlib.h>

#include <climits>

#include "bootenv/uboot_env_image.hpp"

namespace osu {

uint32_t Crc32(const void* data, size_t size) {
  uLong crc = crc32(0L, Z_NULL, 0);
  auto p = static_cast<const Bytef*>(data);
  while (size > 0) {
    const uInt n = size > UINT_MAX ? UINT_MAX : static_cast<uInt>(size);
    crc = crc32(crc, p, n);
    p += n;
    size -= n;
  }
  return static_cast<uint32_t>(crc);
}

}  // namespace osu

#include "bootenv/uboot_env_image.hpp"

namespace osu {

Expected<std::string> UbootEnvImage(const EnvVars& vars, size_t size) {
  constexpr size_t kCrcSize = 4;
  std::string data;
  for (const auto& [name, value] : vars) {
    if (name.empty() || name.find('=') != std::string::npos ||
        name.find('\0') != std::string::npos || value.find('\0') != std::string::npos)
      return UsageError("Invalid U-Boot variable '" + name + "' for an env image");
    data += name + "=" + value + '\0';
  }
  data += '\0';
  if (size < kCrcSize || data.size() > size - kCrcSize)
    return DeviceError("The variables do not fit in a " + std::to_string(size) +
                       "-byte U-Boot env image");
  data.resize(size - kCrcSize, '\0');
  const uint32_t crc = Crc32(data.data(), data.size());
  std::string image;
  for (int i = 0; i < 4; ++i) image += static_cast<char>((crc >> (8 * i)) & 0xff);
  return image + data;
}

}  // namespace osu

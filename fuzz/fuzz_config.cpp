// ParseConfig on any bytes: an error or a config, never a crash or an exception.
#include <cstddef>
#include <cstdint>
#include <string>

#include "config/config.hpp"
#include "fuzz_check.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string yaml(reinterpret_cast<const char*>(data), size);
  auto config = osu::ParseConfig(yaml, "fuzz.yml");
  if (!config) {
    osu::fuzz::Check(!config.error().message().empty(), "an error without a message");
    return 0;
  }
  osu::fuzz::Check(config->labels.a != config->labels.b, "both slots have the same label");
  (void)config->DefaultSource();
  return 0;
}

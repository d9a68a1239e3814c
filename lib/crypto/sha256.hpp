// SHA-256 of streamed data (OpenSSL behind it: platform/openssl).
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

namespace osu {

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void Update(std::span<const uint8_t> data);
  void Update(const std::string& data);
  // Lower-case hex digest; finalizes, the object must not be updated afterwards.
  std::string HexDigest();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

std::string Sha256Hex(std::span<const uint8_t> data);
// The 32 bytes themselves, one shot: for many small pieces (no hex string and back).
std::array<uint8_t, 32> Sha256Raw(std::span<const uint8_t> data);
std::string Sha256Hex(const std::string& data);

}  // namespace osu

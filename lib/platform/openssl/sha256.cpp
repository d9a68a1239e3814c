// SHA-256 through OpenSSL 3's EVP interface (uses the CPU's SHA extensions when present).
#include "crypto/sha256.hpp"

#include <openssl/evp.h>

#include <cstdio>
#include <cstdlib>
#include <memory>

namespace osu {

struct Sha256::Impl {
  struct CtxFree {
    void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
  };
  std::unique_ptr<EVP_MD_CTX, CtxFree> ctx{EVP_MD_CTX_new()};
};

namespace {
// Allocation or init failing means OpenSSL itself is unusable: nothing sensible to return.
[[noreturn]] void Fatal(const char* what) {
  std::fprintf(stderr, "os-update: OpenSSL SHA-256 %s failed\n", what);
  std::abort();
}
}  // namespace

Sha256::Sha256() : impl_(std::make_unique<Impl>()) {
  if (!impl_->ctx || EVP_DigestInit_ex(impl_->ctx.get(), EVP_sha256(), nullptr) != 1) {
    Fatal("init");
  }
}

Sha256::~Sha256() = default;

void Sha256::Update(std::span<const uint8_t> data) {
  if (data.empty()) return;
  if (EVP_DigestUpdate(impl_->ctx.get(), data.data(), data.size()) != 1) Fatal("update");
}

void Sha256::Update(const std::string& data) {
  Update(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(data.data()), data.size()));
}

std::string Sha256::HexDigest() {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_DigestFinal_ex(impl_->ctx.get(), md, &len) != 1) Fatal("final");
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(len * 2u);
  for (unsigned int i = 0; i < len; ++i) {
    hex.push_back(kHex[md[i] >> 4]);
    hex.push_back(kHex[md[i] & 0xf]);
  }
  return hex;
}

std::string Sha256Hex(std::span<const uint8_t> data) {
  Sha256 h;
  h.Update(data);
  return h.HexDigest();
}

std::array<uint8_t, 32> Sha256Raw(std::span<const uint8_t> data) {
  // Fetched once (the implicit fetch of EVP_sha256() costs ~0.35 us a call here).
  static EVP_MD* const md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  std::array<uint8_t, 32> out{};
  unsigned int len = 0;
  if (!md || EVP_Digest(data.data(), data.size(), out.data(), &len, md, nullptr) != 1 ||
      len != out.size())
    Fatal("digest");
  return out;
}

std::string Sha256Hex(const std::string& data) {
  Sha256 h;
  h.Update(data);
  return h.HexDigest();
}

}  // namespace osu

// What the OpenSSL files share: RAII handles, the error queue as one line, PEM key loading.
#pragma once

#include <openssl/bio.h>
#include <openssl/evp.h>

#include <memory>
#include <string>

#include "common/error.hpp"

namespace osu::openssl {

struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct MdCtxFree {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};
struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;
using MdCtx = std::unique_ptr<EVP_MD_CTX, MdCtxFree>;
using Bio = std::unique_ptr<BIO, BioFree>;

// Empties OpenSSL's thread-local error queue into one line (and leaves it empty, so a stale
// error never shows up in an unrelated later message).
std::string DrainErrors();

enum class KeyPart { Private, Public };
// A PEM key from a file; errors are Usage errors (keys are configuration).
Expected<Pkey> LoadKey(const std::string& path, KeyPart part);
// The same from PEM text in memory; nullptr when it does not parse (queue drained).
Pkey ParsePublicPem(const std::string& pem);
Expected<std::string> PemOf(EVP_PKEY* key, KeyPart part);

inline const unsigned char* Bytes(const std::string& s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

}  // namespace osu::openssl

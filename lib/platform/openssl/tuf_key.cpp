// TUF signatures through OpenSSL 3 (see crypto/tuf_key.hpp for the formats).
#include "crypto/tuf_key.hpp"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <sys/stat.h>

#include "common/fd.hpp"
#include "common/text.hpp"
#include "platform/openssl/pkey.hpp"

namespace osu {
namespace {
using namespace openssl;

enum class Scheme { Ed25519, Ecdsa, RsaPss, Unknown };

Scheme SchemeOf(const TufPublicKey& k) {
  if (k.keytype == "ed25519" && k.scheme == "ed25519") return Scheme::Ed25519;
  if ((k.keytype == "ecdsa" || k.keytype == "ecdsa-sha2-nistp256") &&
      k.scheme == "ecdsa-sha2-nistp256")
    return Scheme::Ecdsa;
  if (k.keytype == "rsa" && k.scheme == "rsassa-pss-sha256") return Scheme::RsaPss;
  return Scheme::Unknown;
}

// Sets PSS padding on a sign or verify context (salt: digest length, or auto to verify).
bool SetPss(EVP_PKEY_CTX* pctx, int salt) {
  return EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) == 1 &&
         EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha256()) == 1 &&
         EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, salt) == 1;
}

}  // namespace

Expected<bool> VerifyTufSignature(const TufPublicKey& key, const std::string& data,
                                  const std::string& signature) {
  const Scheme scheme = SchemeOf(key);
  if (scheme == Scheme::Unknown)
    return VerificationError("unsupported key type '" + Printable(key.keytype) + "' / scheme '" +
                             Printable(key.scheme) + "'");
  Pkey pkey;
  if (scheme == Scheme::Ed25519) {
    auto raw = BytesOfHex(key.value);
    if (raw && raw->size() == 32)
      pkey.reset(EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, Bytes(*raw), raw->size()));
  } else {
    pkey = ParsePublicPem(key.value);
    if (pkey && scheme == Scheme::Ecdsa && !EVP_PKEY_is_a(pkey.get(), "EC")) pkey.reset();
    if (pkey && scheme == Scheme::RsaPss && !EVP_PKEY_is_a(pkey.get(), "RSA")) pkey.reset();
  }
  ERR_clear_error();
  if (!pkey) return VerificationError("public value of a '" + key.keytype + "' key does not parse");
  MdCtx ctx(EVP_MD_CTX_new());
  EVP_PKEY_CTX* pctx = nullptr;
  const EVP_MD* md = scheme == Scheme::Ed25519 ? nullptr : EVP_sha256();
  bool ok = ctx && EVP_DigestVerifyInit(ctx.get(), &pctx, md, nullptr, pkey.get()) == 1 &&
            (scheme != Scheme::RsaPss || SetPss(pctx, RSA_PSS_SALTLEN_AUTO)) &&
            EVP_DigestVerify(ctx.get(), Bytes(signature), signature.size(), Bytes(data),
                             data.size()) == 1;
  ERR_clear_error();  // a mismatch leaves reasons in the queue; they mean only "no"
  return ok;
}

Expected<TufPublicKey> TufPublicKeyOf(const std::string& pem_path) {
  auto key = LoadKey(pem_path, KeyPart::Private);
  if (!key) {
    ERR_clear_error();
    key = LoadKey(pem_path, KeyPart::Public);
    if (!key) return key.error();
  }
  EVP_PKEY* k = key->get();
  if (EVP_PKEY_is_a(k, "ED25519")) {
    unsigned char raw[32];
    size_t len = sizeof raw;
    if (EVP_PKEY_get_raw_public_key(k, raw, &len) != 1)
      return UsageError("Failed to read ed25519 key '" + pem_path + "': " + DrainErrors());
    return TufPublicKey{"ed25519", "ed25519", HexOf(std::string(reinterpret_cast<char*>(raw), len))};
  }
  auto pem = PemOf(k, KeyPart::Public);
  if (!pem) return pem.error();
  if (EVP_PKEY_is_a(k, "EC")) {
    char group[64] = "";
    size_t glen = 0;
    EVP_PKEY_get_utf8_string_param(k, "group", group, sizeof group, &glen);
    if (std::string(group) != "prime256v1")
      return UsageError("key '" + pem_path + "': only EC keys on P-256 (prime256v1) are TUF keys");
    return TufPublicKey{"ecdsa", "ecdsa-sha2-nistp256", *pem};
  }
  if (EVP_PKEY_is_a(k, "RSA")) return TufPublicKey{"rsa", "rsassa-pss-sha256", *pem};
  return UsageError("key '" + pem_path + "': not an ed25519, P-256 or RSA key");
}

Expected<std::string> SignTuf(const std::string& data, const std::string& private_key_path) {
  auto key = LoadKey(private_key_path, KeyPart::Private);
  if (!key) return key.error();
  EVP_PKEY* k = key->get();
  const bool ed = EVP_PKEY_is_a(k, "ED25519");
  const bool rsa = EVP_PKEY_is_a(k, "RSA");
  MdCtx ctx(EVP_MD_CTX_new());
  EVP_PKEY_CTX* pctx = nullptr;
  size_t len = 0;
  if (!ctx || EVP_DigestSignInit(ctx.get(), &pctx, ed ? nullptr : EVP_sha256(), nullptr, k) != 1 ||
      (rsa && !SetPss(pctx, RSA_PSS_SALTLEN_DIGEST)) ||
      EVP_DigestSign(ctx.get(), nullptr, &len, Bytes(data), data.size()) != 1)
    return UsageError("Failed to sign with '" + private_key_path + "': " + DrainErrors());
  std::string sig(len, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len, Bytes(data),
                     data.size()) != 1)
    return UsageError("Failed to sign with '" + private_key_path + "': " + DrainErrors());
  sig.resize(len);
  return sig;
}

Result GenerateTufKey(const std::string& private_key_path, const std::string& scheme) {
  struct stat st {};
  if (::stat(private_key_path.c_str(), &st) == 0)
    return UsageError("Refusing to overwrite existing private key '" + private_key_path + "'");
  ERR_clear_error();
  Pkey key;
  if (scheme == "ed25519") key.reset(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
  else if (scheme == "ecdsa-sha2-nistp256") key.reset(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  else if (scheme == "rsassa-pss-sha256") key.reset(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t{3072}));
  else return UsageError("unknown key scheme '" + scheme + "' (ed25519, ecdsa-sha2-nistp256, rsassa-pss-sha256)");
  if (!key) return UsageError("Failed to generate a " + scheme + " key: " + DrainErrors());
  auto pem = PemOf(key.get(), KeyPart::Private);
  if (!pem) return pem.error();
  return InstallFile(private_key_path, *pem, 0600);
}

}  // namespace osu

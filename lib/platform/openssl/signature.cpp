// Detached manifest signatures with OpenSSL 3. Pure EdDSA for ed25519/ed448 (no digest, as
// `openssl pkeyutl -rawin` does); SHA-256 digests for EC and RSA (PKCS#1 v1.5, as `openssl dgst
// -sha256 -sign` does), so bundles can be signed by plain openssl, an HSM or CI.
#include "crypto/signature.hpp"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <sys/stat.h>

#include <memory>

#include "common/fd.hpp"
#include "platform/openssl/pkey.hpp"

namespace osu {
namespace openssl {

std::string DrainErrors() {
  std::string out;
  while (unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out.empty() ? "unknown OpenSSL error" : out;
}

namespace {
// Refuses to prompt for a passphrase: os-update runs unattended.
int NoPassphrase(char*, int, int, void*) { return 0; }
}  // namespace

Expected<Pkey> LoadKey(const std::string& path, KeyPart part) {
  auto pem = ReadFile(path, ErrorKind::Usage);
  if (!pem) return pem.error();
  ERR_clear_error();
  Bio bio(BIO_new_mem_buf(pem->data(), static_cast<int>(pem->size())));
  if (!bio) return UsageError("Failed to read key '" + path + "': " + DrainErrors());
  Pkey key(part == KeyPart::Private
               ? PEM_read_bio_PrivateKey(bio.get(), nullptr, NoPassphrase, nullptr)
               : PEM_read_bio_PUBKEY(bio.get(), nullptr, NoPassphrase, nullptr));
  if (!key) {
    const char* what = part == KeyPart::Private ? "private" : "public";
    return UsageError("Failed to load " + std::string(what) + " key '" + path +
                      "': not an unencrypted PEM " + what + " key (" + DrainErrors() + ")");
  }
  return key;
}

Pkey ParsePublicPem(const std::string& pem) {
  ERR_clear_error();
  Bio bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  Pkey key(bio ? PEM_read_bio_PUBKEY(bio.get(), nullptr, NoPassphrase, nullptr) : nullptr);
  ERR_clear_error();
  return key;
}

Expected<std::string> PemOf(EVP_PKEY* key, KeyPart part) {
  Bio bio(BIO_new(BIO_s_mem()));
  bool ok = bio && (part == KeyPart::Private
                        ? PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr,
                                                   nullptr)
                        : PEM_write_bio_PUBKEY(bio.get(), key)) == 1;
  if (!ok) return UsageError("Failed to encode key as PEM: " + DrainErrors());
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(len));
}

}  // namespace openssl

namespace {
using namespace openssl;

// EdDSA signs the message itself; everything else signs its SHA-256 digest.
const EVP_MD* DigestFor(EVP_PKEY* key) {
  if (EVP_PKEY_is_a(key, "ED25519") || EVP_PKEY_is_a(key, "ED448")) return nullptr;
  return EVP_sha256();
}

bool Verifies(EVP_PKEY* key, const std::string& data, const std::string& signature) {
  MdCtx ctx(EVP_MD_CTX_new());
  bool ok = ctx &&
            EVP_DigestVerifyInit(ctx.get(), nullptr, DigestFor(key), nullptr, key) == 1 &&
            EVP_DigestVerify(ctx.get(), Bytes(signature), signature.size(), Bytes(data),
                             data.size()) == 1;
  // A mismatch leaves reasons in the queue; they mean only "not this key".
  ERR_clear_error();
  return ok;
}

}  // namespace

Expected<std::string> Sign(const std::string& data, const std::string& private_key_path) {
  auto key = LoadKey(private_key_path, KeyPart::Private);
  if (!key) return key.error();
  MdCtx ctx(EVP_MD_CTX_new());
  size_t len = 0;
  if (!ctx ||
      EVP_DigestSignInit(ctx.get(), nullptr, DigestFor(key->get()), nullptr, key->get()) != 1 ||
      EVP_DigestSign(ctx.get(), nullptr, &len, Bytes(data), data.size()) != 1) {
    return UsageError("Failed to sign with '" + private_key_path + "': " + DrainErrors());
  }
  std::string signature(len, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(signature.data()), &len,
                     Bytes(data), data.size()) != 1) {
    return UsageError("Failed to sign with '" + private_key_path + "': " + DrainErrors());
  }
  signature.resize(len);  // ECDSA's DER length varies: the first call gave the maximum
  return signature;
}

Expected<std::string> VerifyWithAnyKey(const std::string& data, const std::string& signature,
                                       const std::vector<std::string>& public_key_paths) {
  if (public_key_paths.empty()) {
    return UsageError("No public key configured to verify the manifest signature");
  }
  // Load every key first: a broken key file is a configuration error even if another matches.
  std::vector<Pkey> keys;
  for (const auto& path : public_key_paths) {
    auto key = LoadKey(path, KeyPart::Public);
    if (!key) return key.error();
    keys.push_back(std::move(key).value());
  }
  for (size_t i = 0; i < keys.size(); ++i) {
    if (Verifies(keys[i].get(), data, signature)) return public_key_paths[i];
  }
  std::string list;
  for (const auto& path : public_key_paths) list += (list.empty() ? "" : ", ") + path;
  const auto n = public_key_paths.size();
  return VerificationError("signature of manifest does not match " +
                           (n == 1 ? std::string("the configured key")
                                   : "any of the " + std::to_string(n) + " configured keys") +
                           " (" + list + ")");
}

Result GenerateKeyPair(const std::string& private_key_path, const std::string& public_key_path) {
  // Overwriting a signing key would orphan every device that trusts it.
  struct stat st {};
  if (::stat(private_key_path.c_str(), &st) == 0) {
    return UsageError("Refusing to overwrite existing private key '" + private_key_path + "'");
  }
  ERR_clear_error();
  Pkey key(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
  if (!key) return UsageError("Failed to generate an ed25519 key: " + DrainErrors());
  auto private_pem = PemOf(key.get(), KeyPart::Private);
  if (!private_pem) return private_pem.error();
  auto public_pem = PemOf(key.get(), KeyPart::Public);
  if (!public_pem) return public_pem.error();
  if (auto r = InstallFile(private_key_path, *private_pem, 0600); !r) return r;
  return InstallFile(public_key_path, *public_pem, 0644);
}

}  // namespace osu

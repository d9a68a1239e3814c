// TUF's key types (ed25519, ecdsa-sha2-nistp256, rsassa-pss-sha256) as securesystemslib and
// tuf-js write them: ed25519's public value is the raw key in hex, the others are PEM; a
// signature is over the canonical JSON of "signed" (ECDSA: DER over SHA-256; RSA: PSS, MGF1
// SHA-256, salt as long as the digest when signing, any length when verifying).
#pragma once

#include <string>

#include "common/error.hpp"

namespace osu {

struct TufPublicKey {
  std::string keytype;  // "ed25519", "ecdsa" (or "ecdsa-sha2-nistp256"), "rsa"
  std::string scheme;   // "ed25519", "ecdsa-sha2-nistp256", "rsassa-pss-sha256"
  std::string value;    // keyval.public
};

// True when `signature` (raw bytes) verifies over `data`. An unknown keytype/scheme pair or a
// public value that does not parse is a Verification error naming it; a mismatch is false.
Expected<bool> VerifyTufSignature(const TufPublicKey& key, const std::string& data,
                                  const std::string& signature);

// The TUF public key of a PEM private (or public) key file: its type decides the scheme.
Expected<TufPublicKey> TufPublicKeyOf(const std::string& pem_path);

// Signs `data` as `scheme` with the PEM private key at `private_key_path`; raw bytes.
Expected<std::string> SignTuf(const std::string& data, const std::string& private_key_path);

// Writes a new PEM private key of the given TUF scheme (public key derivable from it).
Result GenerateTufKey(const std::string& private_key_path, const std::string& scheme);

}  // namespace osu

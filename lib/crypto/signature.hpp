// Detached signatures over the manifest bytes. ed25519 (pure, no digest) is the default;
// ECDSA and RSA keys sign and verify SHA-256 digests, exactly as
//   openssl pkeyutl -sign -rawin -inkey KEY -in manifest.yaml -out manifest.sig   (ed25519)
//   openssl dgst -sha256 -sign KEY -out manifest.sig manifest.yaml                (EC, RSA)
// produce them.
#pragma once

#include <string>
#include <vector>

#include "common/error.hpp"

namespace osu {

// Signs `data` with the PEM private key at `private_key_path`. Unreadable key: Usage error.
Expected<std::string> Sign(const std::string& data, const std::string& private_key_path);

// Verifies `signature` over `data` against each PEM public key in turn; returns the path of the
// key that matched. No key matches: Verification error. A key file that cannot be read or
// parsed: Usage error (it is configuration).
Expected<std::string> VerifyWithAnyKey(const std::string& data, const std::string& signature,
                                       const std::vector<std::string>& public_key_paths);

// Writes a new private key (ed25519 by default) and its public key, both PEM.
Result GenerateKeyPair(const std::string& private_key_path, const std::string& public_key_path);

}  // namespace osu

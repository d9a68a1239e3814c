// What the build side does with TUF metadata files, one key at a time (keys stay offline:
// two people on two machines make a threshold of two).
#pragma once

#include <nlohmann/json_fwd.hpp>
#include <string>

#include "common/error.hpp"
#include "crypto/tuf_key.hpp"

namespace osu::tuf {

// Adds (or replaces) the signature of the key in `private_key_path` to the metadata file
// `path`, over the canonical form of its "signed"; written atomically. Returns the keyid.
Expected<std::string> SignMetadataFile(const std::string& path, const std::string& private_key_path);

// The same on a parsed file (`what` names it in errors); the other keys' signatures stay.
Expected<std::string> SignDocument(nlohmann::json& doc, const std::string& private_key_path,
                                   const std::string& what);
// A metadata file read as JSON (Usage errors: the publisher's own files), and written
// atomically in the form the tooling always writes (one space of indent).
Expected<nlohmann::json> ReadDocument(const std::string& path);
Result WriteDocument(const std::string& path, const nlohmann::json& doc);

// The keyid TUF gives a key: sha256 of the canonical JSON of {keytype, keyval, scheme}.
std::string KeyId(const TufPublicKey& key);
// The key as root.json's "keys" holds it (one JSON object, canonical).
std::string KeyJson(const TufPublicKey& key);

// One line per file of `dir` that parses as TUF metadata: role, version, expiry.
Expected<std::string> DescribeExpiry(const std::string& dir, int64_t now);

}  // namespace osu::tuf

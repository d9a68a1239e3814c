// An unsigned raw partition image, as EOS's ssh update servers stream it: no manifest, no
// signature, no boot files. Accepted only when the config opts in (update.allow_unsigned_ssh);
// the slot is still hashed while it streams and recorded, with record.source saying how
// little that proves.
#pragma once

#include <string>

#include "install/apply.hpp"

namespace osu {

inline constexpr const char* kUnsignedSshSource = "ssh (unsigned)";
inline constexpr const char* kUnsignedVersion = "unsigned";

// Verification error (exit 2) unless update.allow_unsigned_ssh is true: checked before the
// source is even opened.
Result CheckUnsignedImageAllowed(const Config& config, const std::string& where);

struct RawImageRequest {
  std::string where;                          // the source, for messages
  std::string record_source = kUnsignedSshSource;
};

// Into the slot that is neither booted nor committed, like Apply(): refusals first; then the
// target leaves the boot order, its record says "installing" and the boot files of an older
// install are removed (they do not belong to the new content); the image is written, hashed
// and fsynced, and must fit the slot: the writer stops at the slot's end with an error. The
// record then says "verified" with the sha256 and size that arrived, version "unsigned" and
// `record_source`. On failure the record says "invalid" with the reason.
Expected<ApplyResult> ApplyRawImage(const SystemState& state, BootEnv& env, Reader& image,
                                    const RawImageRequest& request, const Reporter& reporter);

}  // namespace osu

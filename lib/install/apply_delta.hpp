// --apply by partial fetch: from a bundle with a chunk index (a path, file:// or http(s)://),
// only the chunks and boot files the device does not hold, through the same install and the
// same checks as the full download (InstallContent).
#pragma once

#include <optional>
#include <string>

#include "install/apply.hpp"
#include "source/source.hpp"

namespace osu {

// The result when the partial fetch installed (or, with dry_run, planned) the slot; nullopt
// when it did not apply or failed in a way a full download may not (no index, a source that
// cannot serve ranges, a bad index or piece, a slot that changed): a line saying why went to
// reporter.info, and the caller downloads the whole bundle. An error when the full download
// would fail the same way (signature, compatible, version floor, the device).
Expected<std::optional<ApplyResult>> ApplyDelta(const SystemState& state, BootEnv& env,
                                                const std::string& uri,
                                                const SourceOptions& options,
                                                const ApplyRequest& request,
                                                const Reporter& reporter);

// With update.delta_prefer: time, why a patch of `patch_bytes` whose zstd blocks this device
// compresses again in ~`recompress_seconds` would end later than the whole bundle
// (`whole_bytes`) downloaded at `rate` bytes/s; "" when it would not. The patch's download and
// the compressing overlap (its reader runs ahead), so it takes the longer of the two. The
// whole bundle, not the chunks, is the measure (their cost is known only once the slots are
// read): a patch is left only where even a full download ends sooner.
std::string PatchSlowerThanWhole(uint64_t patch_bytes, double recompress_seconds,
                                 uint64_t whole_bytes, double rate);

}  // namespace osu

// Patches against a known base: a file `<bundle>.delta-<first 16 hex of the base image's
// sha256>` beside a bundle that turns the base image into the bundle's image. The new image
// is cut into segments; each is one zstd frame compressed with the whole base image as its
// prefix, so a device decodes a segment at a time into a bounded buffer, with the base slot
// mapped read-only as the prefix (memory: a few segments, not a window).
// A signed header names the base and target images and the sha256 of every segment: a patch
// for another image is refused before a byte is decoded, and no segment is handed out before
// its hash matched. Format and choices: lib/delta/README.md.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "io/stream.hpp"

namespace osu {

// "<bundle_name>.delta-<first 16 hex digits of base_sha256>": where a device looks for a
// patch for the base it holds, beside the bundle (same directory, or URL prefix).
std::string PatchFileName(const std::string& bundle_name, const std::string& base_sha256);

// What the device knows before it opens a patch, all of it already verified: the base from
// the base slot's record, the target from the new bundle's signed manifest.
struct PatchExpectation {
  std::string base_sha256;    // hex, the base slot's verified image
  uint64_t base_size = 0;     // bytes of that image (the slot may be larger)
  std::string target_sha256;  // hex, the manifest's image.sha256
  uint64_t target_size = 0;   // the manifest's image.size
  std::vector<std::string> keys;  // PEM public keys; the patch header must be signed by one
};

// Where the base image is: a slot as the device layer describes it (a partition node at
// offset 0, or a disk image or whole disk with the slot at an offset).
struct PatchBase {
  int fd = -1;          // not owned; must stay open and unchanged while the reader lives
  uint64_t offset = 0;  // where the slot starts in fd
  uint64_t length = 0;  // the slot's bytes; the base image must fit in them
  std::string name;     // "slot B", for messages
};

// Reads the patch header from `patch` and checks it (signature, format, base and target equal
// to `expect`) before returning; nothing past the header is read yet. The base slot's first
// expect.base_size bytes are mapped read-only. It must not be the slot the output is written
// to: every segment may read any byte of the base, so a base overwritten while decoding
// breaks later segments (caught by their hashes, but the patch is then wasted). The reader
// yields the target image's expect.target_size bytes; it decodes the next segment on a thread
// of its own while the caller takes this one (started by the first Read). Memory: two segments
// and a frame (at most 32 MiB each) and 8 MiB of `patch` read ahead on a thread of its own;
// format 2 adds a segment's decoded form and its decoded base blocks (16 MiB).
// Errors: a patch for another base or target, a bad signature, a malformed, truncated or
// tampered header or segment, trailing bytes: Verification error naming `where` (the caller
// falls back to the next way); errors of `patch` itself (network, 404) keep their kind; a
// slot shorter than the base image: State error.
// A segment's bytes are handed out only after its sha256 matched the signed header, so a
// bad patch or a base slot that changed never yields a wrong byte.
// What the header says the decoding costs, for the plan a dry run prints.
struct PatchFacts {
  bool estimate = false;  // in: measure recompress_seconds (costs ~0.15 s of one core)
  uint64_t recompress_bytes = 0;  // format 2: zstd block content this device compresses again
  // Format 2: this device's seconds for that, on all its cores, from a sample (up to 8 base
  // blocks spread over the header: content like the changed blocks', compressed at their
  // level, ~1 MiB); 0 when the header names no base block to sample.
  double recompress_seconds = 0;
};
Expected<std::unique_ptr<Reader>> OpenPatchedImage(const PatchBase& base,
                                                   std::unique_ptr<Reader> patch,
                                                   const PatchExpectation& expect,
                                                   const std::string& where,
                                                   PatchFacts* facts = nullptr);

// Build side. Writes `output` (temp file, fsync, rename) turning image file `base` into image
// file `target`, header signed with the PEM private key.
struct PatchOptions {
  uint32_t segment_size = 16u << 20;  // bytes of new image per frame (device buffer size)
  int level = 3;                      // zstd level
  unsigned threads = 0;               // frames compressed at once; 0 = online CPUs
  // Format 2 when the new image has zstd blocks (squashfs) the base lacks that can be made
  // again; false: format 1 always (for devices whose os-update reads only that).
  bool blocks = true;
  // Format 2: at most this share of the changed blocks' content is compressed again on the
  // device (CPU); the rest, the blocks cheapest to carry compressed, goes as it is (bytes).
  // 0.75: on the 1 GiB squashfs of bench/delta.sh (5% changed), 6.6% of the bundle instead of
  // 5.3%, for 28% less CPU (lib/delta/README.md, format 2).
  double recompress_share = 0.75;
};
Result CreatePatch(const std::string& base, const std::string& target,
                   const std::string& private_key, const std::string& output,
                   const PatchOptions& options);

// `os-update-bundle delta`: the images of bundles OLD and NEW (decoded to unlinked temporary
// files in the output's directory and checked against their manifests), then CreatePatch.
// `output` empty: PatchFileName(NEW, OLD's image sha256) beside NEW. Returns the path written.
Expected<std::string> CreateBundlePatch(const std::string& old_bundle,
                                        const std::string& new_bundle,
                                        const std::string& private_key, std::string output,
                                        const PatchOptions& options);

}  // namespace osu

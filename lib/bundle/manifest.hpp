// The bundle's manifest: the signed description of everything else in the bundle.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "common/file_entry.hpp"
#include "compress/compression.hpp"

namespace osu {

struct Manifest {
  int format = 1;
  std::string compatible;                  // e.g. "eos-x86_64-kvm"
  std::string version;                     // e.g. "2.1.0"
  std::optional<std::string> min_version;  // downgrade floor: device must already run this
  std::string cmdline;                     // kernel command line for the new slot
  Compression compression = Compression::Xz;
  FileEntry image;                         // image.name is the tar member of the root image
  std::vector<FileEntry> boot_files;       // in bundle order
  // Format 2: the image is stored as zstd frames, one per chunk, and this member (right
  // after the signature) indexes them for a partial fetch (delta/chunk_index.hpp).
  std::optional<FileEntry> index;
  // Format 3: the zstd dictionary every chunk frame was made with (right after the index);
  // the full path decodes the image with it too.
  std::optional<FileEntry> dictionary;
  // Format 4: the index's frames refer to the image bytes before their chunk (index version
  // 3, its `window` > 0), so the image member is no longer one plain zstd stream; it is
  // decoded frame by frame with the index. No dictionary: the two do not combine.
  bool windowed = false;
  // Format 5: windowed, and the index's frames may also refer to earlier chunks (index
  // version 4), which a decoder keeps for them: devices that read formats up to 4 refuse it.
  bool referenced = false;
};

// The format written: 1 without an index (devices before partial fetch read those), 2 with,
// 3 with an index and a dictionary (devices that read only 2 refuse it: its frames need it),
// 4 with an index whose frames refer to the image before them (devices that read only 1-3
// refuse it by its number: they would decode it as one zstd stream and fail), 5 with frames
// that refer to earlier chunks too (devices that read only 1-4 refuse it by its number).
inline constexpr int kManifestFormat = 1;
inline constexpr int kManifestFormatIndexed = 2;
inline constexpr int kManifestFormatDictionary = 3;
inline constexpr int kManifestFormatWindow = 4;
inline constexpr int kManifestFormatRefs = 5;
inline constexpr const char* kManifestMember = "manifest.yaml";
inline constexpr const char* kSignatureMember = "manifest.sig";

// Parses and checks the syntax (format, known and required keys, types, hex digests). Errors
// are Verification errors naming the key: "manifest: image.sha256 is not 64 hex digits". What
// a device accepts in the values (names, cmdline, version...) is CheckBundleContent's
// (bundle/content_rules.hpp), called by whoever acts on the manifest.
Expected<Manifest> ParseManifest(const std::string& yaml);
std::string SerializeManifest(const Manifest& m);

}  // namespace osu

// A bundle is a tar stream: manifest.yaml, manifest.sig, the boot files, the root image,
// in that order. BundleReader verifies the signature before handing out a single byte of
// any later member, and checks each member against the manifest while it streams.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "bundle/manifest.hpp"
#include "common/error.hpp"
#include "delta/chunk_index.hpp"
#include "io/stream.hpp"

namespace osu {

class TarReader;

class BundleReader {
 public:
  // Reads and verifies manifest + signature from `source` (not owned). `where` names the
  // source in messages. keys: PEM public key paths.
  static Expected<std::unique_ptr<BundleReader>> Open(Reader& source, const std::string& where,
                                                      const std::vector<std::string>& keys);
  // Open for --check: manifest and signature verified, nothing after them read (a partial-fetch
  // bundle's index, megabytes on a 1 GiB image, stays on the server). No member is handed out.
  static Expected<std::unique_ptr<BundleReader>> OpenHead(Reader& source, const std::string& where,
                                                          const std::vector<std::string>& keys);
  // TUF mode: the manifest is trusted when its sha256 is the one its signed target entry
  // lists (custom.manifest_sha256); the signature member, if any, is not looked at.
  static Expected<std::unique_ptr<BundleReader>> OpenWithManifestSha256(
      Reader& source, const std::string& where, const std::string& manifest_sha256);
  static Expected<std::unique_ptr<BundleReader>> OpenHeadWithManifestSha256(
      Reader& source, const std::string& where, const std::string& manifest_sha256);
  // Without a signature check (os-update-bundle info): signature may be absent.
  static Expected<std::unique_ptr<BundleReader>> OpenUnverified(Reader& source,
                                                                const std::string& where);
  // After an OpenHead*: reads on through the chunk index and dictionary (checked as Open
  // checks them); the reader is then as Open leaves it. A patch needs neither: a device
  // that takes one never downloads the index.
  Result ReadIndex();
  ~BundleReader();

  const Manifest& manifest() const { return manifest_; }
  const std::string& manifest_bytes() const { return manifest_bytes_; }
  const std::string& signature() const { return signature_; }  // empty if unsigned
  const std::string& key_used() const { return key_used_; }    // empty if unverified
  // Where the member after the manifest and the signature (if there is one) begins in the
  // archive: the index, the dictionary, the boot files and the image follow in manifest order
  // (the partial path fetches them by range from here).
  uint64_t head_end() const { return head_end_; }
  // Format 2: the chunk index member, already checked against the manifest's size and
  // sha256 (delta/chunk_index.hpp parses it). Empty for format 1.
  const std::string& index_bytes() const { return index_; }
  // Format 3: the zstd dictionary member, checked like the index. Empty before format 3.
  const std::string& dictionary_bytes() const { return dictionary_; }
  // Format 4: the index parsed (its window > 0 checked); null before format 4.
  std::shared_ptr<const ChunkIndex> windowed_index() const { return windowed_index_; }

  // The next boot file, in manifest order. The returned reader fails at its end if the
  // member's bytes do not match the manifest's size and sha256 (Verification error).
  // Returns nullopt once all boot files were handed out.
  struct Member {
    const FileEntry* entry;
    Reader* data;  // valid until the next call on this BundleReader
  };
  Expected<std::optional<Member>> NextBootFile();

  // The image member's raw (still compressed) bytes; call after all boot files.
  Expected<Reader*> Image();

  // After the image was read to its end: no further members may follow.
  Result Finish();

 private:
  BundleReader() = default;
  std::unique_ptr<TarReader> tar_;
  Manifest manifest_;
  std::string manifest_bytes_, signature_, key_used_, index_, dictionary_;
  std::shared_ptr<const ChunkIndex> windowed_index_;
  uint64_t head_end_ = 0;
  std::unique_ptr<Reader> current_;
  size_t next_boot_ = 0;
  std::string where_;
  bool unsigned_ = false;
  bool image_taken_ = false;
  bool head_only_ = false;
  struct PendingMember;  // a header read ahead (unsigned bundle without manifest.sig)
  std::unique_ptr<PendingMember> pending_;
  friend struct BundleOpener;
};

// Why `index` does not fit the format `m` states (a window for formats 4-5 only, references
// for format 5 only), empty when it does.
std::string IndexFormatMismatch(const Manifest& m, const ChunkIndex& index);

// The image member (`raw`, from Image(); not owned) decoded as its manifest says: one
// stream of the manifest's compression (with the dictionary, format 3), or frame by frame
// with the index (format 4). `threads`: xz decoder threads (0 = all CPUs).
Expected<std::unique_ptr<Reader>> MakeImageDecoder(const BundleReader& b, Reader& raw,
                                                   unsigned threads);

// Writes bundles. Low level on purpose: tests use it to forge malformed bundles signed with
// a real key (a manifest that lies about sizes, members out of order, ...).
class BundleWriter {
 public:
  static Expected<std::unique_ptr<BundleWriter>> Create(const std::string& path);
  ~BundleWriter();
  Result AddBytes(const std::string& name, const std::string& data);
  Result AddFile(const std::string& name, const std::string& path);
  Result Close();  // finishes the tar, fsyncs, renames into place

 private:
  BundleWriter() = default;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The whole `os-update-bundle create`: compress the image to a temporary file, hash the
// image and boot files, write and sign the manifest (unless private_key is empty: then the
// bundle is unsigned and must be signed with SignBundle), write the bundle.
// Off: on the images of bench/chunk-sizes.sh a trained dictionary saved nothing (lib/delta/README.md).
inline constexpr size_t kDefaultDictionarySize = 0;

struct CreateOptions {
  std::string image;                    // uncompressed root file system image
  Compression compression = Compression::Xz;
  std::vector<std::string> boot_files;  // stored under their base names
  std::string cmdline, compatible, version;
  std::optional<std::string> min_version;
  std::string private_key;              // empty: unsigned
  std::string output;
  EncodeOptions encode;
  // zstd only: the image as one frame per content-defined chunk plus an index, so that
  // devices can fetch only the chunks they lack (format 2). The full path reads it as before.
  bool chunks = true;
  uint32_t chunk_avg = 0;  // average chunk size (a power of two); 0: ChunkSizes' default
  // With chunks: the zstd dictionary's size at most (0: none), trained from the image.
  size_t dictionary_size = kDefaultDictionarySize;
  // With chunks: image bytes before a chunk that its frame may refer to (format 4); 0 keeps
  // independent frames (format 2, for devices whose os-update reads formats up to 3).
  uint32_t chunk_window = kDefaultChunkWindow;
  // With a window: earlier chunks a frame may refer to besides it (format 5); 0 keeps format 4
  // for devices whose os-update reads formats up to 4. Unset: kMaxChunkRefs with a window,
  // 0 without; set above 0 without a window is a Usage error.
  std::optional<uint32_t> chunk_refs;
};
Result CreateBundle(const CreateOptions& options);

// Copies `input` to `output` with the signature member set to `signature` (bytes) — the
// HSM/CI flow: sign `os-update-bundle manifest FILE` with openssl, then attach.
Result AttachSignature(const std::string& input, const std::string& signature,
                       const std::string& output);

}  // namespace osu

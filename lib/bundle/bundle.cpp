#include "bundle/bundle.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <set>
#include <thread>

#include "bundle/checked_reader.hpp"
#include "bundle/content_rules.hpp"
#include "bundle/tar.hpp"
#include "common/fd.hpp"
#include "common/text.hpp"
#include "crypto/sha256.hpp"
#include "crypto/signature.hpp"
#include "delta/chunked_image.hpp"

namespace osu {

namespace {

// Generous for any real manifest, small enough that a hostile header cannot exhaust memory.
constexpr uint64_t kManifestLimit = 1u << 20;
constexpr uint64_t kSignatureLimit = 16u << 10;
// 40 bytes per chunk of at least 4 KiB: room for images of 6 GiB.
constexpr uint64_t kIndexLimit = 64u << 20;

// Names from the bundle, and the source as given: escaped, one line (common/text.hpp).
std::string Q(const std::string& s) { return InQuotes(s); }

Expected<std::string> ReadSmallMember(Reader& data, uint64_t size) {
  std::string out(static_cast<size_t>(size), '\0');
  size_t got = 0;
  uint8_t extra;
  for (;;) {
    std::span<uint8_t> buf = got < out.size()
                                 ? std::span<uint8_t>(reinterpret_cast<uint8_t*>(out.data()) + got,
                                                      out.size() - got)
                                 : std::span<uint8_t>(&extra, 1);
    auto n = data.Read(buf);
    if (!n) return n.error();
    if (*n == 0) break;
    if (got == out.size()) break;  // more than the header said: libarchive never does this
    got += *n;
  }
  out.resize(got);
  return out;
}

// An input file the user named: a missing one is a usage error, not a device failure.
Expected<Fd> OpenInput(const std::string& path) {
  auto fd = Fd::Open(path, O_RDONLY);
  if (!fd) return UsageError(fd.error().message());
  struct stat st {};
  if (::fstat(fd->get(), &st) != 0) return ErrnoError("Failed to stat '" + path + "'");
  if (!S_ISREG(st.st_mode)) return UsageError(Q(path) + " is not a regular file");
  return fd;
}

Expected<uint64_t> FileSize(int fd, const std::string& path) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return ErrnoError("Failed to stat '" + path + "'");
  return static_cast<uint64_t>(st.st_size);
}

Expected<FileEntry> HashFile(const std::string& path, const std::string& name) {
  auto fd = OpenInput(path);
  if (!fd) return fd.error();
  auto reader = MakeFdReader(fd->Release(), true, Q(path));
  FileEntry e;
  e.name = name;
  Sha256 hash;
  std::vector<uint8_t> buf(1u << 20);
  for (;;) {
    auto n = reader->Read(buf);
    if (!n) return Error(ErrorKind::Device, n.error().message());
    if (*n == 0) break;
    hash.Update(std::span<const uint8_t>(buf.data(), *n));
    e.size += *n;
  }
  e.sha256 = hash.HexDigest();
  return e;
}

// The bundle file is written as `<path>.tmp` and renamed into place only when complete and
// fsynced: a reader never sees half a bundle under the final name.
class BundleOutput {
 public:
  static Expected<std::unique_ptr<BundleOutput>> Create(const std::string& path) {
    auto out = std::unique_ptr<BundleOutput>(new BundleOutput(path));
    auto tar = TarWriter::Create(out->tmp_);
    if (!tar) return tar.error();
    out->tar_ = std::move(tar).value();
    return out;
  }
  ~BundleOutput() {
    tar_.reset();
    if (!installed_) ::unlink(tmp_.c_str());
  }
  TarWriter& tar() { return *tar_; }
  Result Install() {
    if (auto r = tar_->Close(); !r) return r;
    tar_.reset();
    if (::rename(tmp_.c_str(), path_.c_str()) != 0) {
      return ErrnoError("Failed to rename '" + tmp_ + "' to '" + path_ + "'");
    }
    installed_ = true;
    return SyncDirectory(DirName(path_));
  }

 private:
  explicit BundleOutput(const std::string& path) : path_(path), tmp_(path + ".tmp") {}
  std::string path_, tmp_;
  std::unique_ptr<TarWriter> tar_;
  bool installed_ = false;
};

Result AddFileTo(TarWriter& tar, const std::string& name, const std::string& path) {
  auto fd = OpenInput(path);
  if (!fd) return fd.error();
  auto size = FileSize(fd->get(), path);
  if (!size) return size.error();
  auto reader = MakeFdReader(fd->Release(), true, Q(path));
  return tar.Add(name, *size, *reader);
}

std::string CompressionSuffix(Compression c) {
  switch (c) {
    case Compression::Xz: return ".xz";
    case Compression::Zstd: return ".zst";
    case Compression::Gzip: return ".gz";
    case Compression::None: return "";
  }
  return "";
}

// Removes a temporary file on every path out of CreateBundle.
struct TempFile {
  std::string path;
  ~TempFile() {
    if (!path.empty()) ::unlink(path.c_str());
  }
};

// Sizes of the files the manifest will describe, before minutes of hashing and compressing.
Expected<uint64_t> InputSize(const std::string& path) {
  auto fd = OpenInput(path);
  if (!fd) return fd.error();
  return FileSize(fd->get(), path);
}

}  // namespace

struct BundleReader::PendingMember {
  TarReader::Entry entry;
};

// The parts of BundleReader that need TarReader's full type.
struct BundleOpener {
  static Expected<std::optional<TarReader::Entry>> Next(BundleReader& b) {
    if (b.pending_) {
      TarReader::Entry e = std::move(b.pending_->entry);
      b.pending_.reset();
      return std::optional<TarReader::Entry>(std::move(e));
    }
    auto e = b.tar_->Next();
    if (!e) return e.error();
    if (*e && !(*e)->regular) {
      return VerificationError(Q(b.where_) + ": member " + Q((*e)->name) +
                               " is not a regular file");
    }
    return e;
  }

  // Reads a small member at the front, refusing a size over `limit` before reading it.
  static Expected<std::string> ReadSmall(BundleReader& b, const TarReader::Entry& e,
                                         uint64_t limit) {
    if (e.size > limit) {
      return VerificationError(Q(b.where_) + ": " + e.name + " is " + std::to_string(e.size) +
                               " bytes, more than the limit of " + std::to_string(limit));
    }
    return ReadSmallMember(b.tar_->Data(), e.size);
  }

  static Expected<std::unique_ptr<BundleReader>> Open(Reader& source, const std::string& where,
                                                      const std::vector<std::string>* keys,
                                                      const std::string* manifest_sha256 = nullptr,
                                                      bool head_only = false) {
    std::unique_ptr<BundleReader> b(new BundleReader());
    b->where_ = where;
    b->head_only_ = head_only;
    auto tar = TarReader::Open(source, where);
    if (!tar) return tar.error();
    b->tar_ = std::move(tar).value();

    auto first = Next(*b);
    if (!first) return first.error();
    if (!*first) return VerificationError(Q(where) + " is not a bundle: it is an empty archive");
    if ((*first)->name != kManifestMember) {
      return VerificationError(Q(where) + " is not a bundle: its first member is " +
                               Q((*first)->name) + ", expected '" + kManifestMember + "'");
    }
    auto manifest = ReadSmall(*b, **first, kManifestLimit);
    if (!manifest) return manifest.error();
    b->manifest_bytes_ = std::move(manifest).value();

    auto second = Next(*b);
    if (!second) return second.error();
    // Where a member read whole ends: its (ustar) header, its data padded to 512 bytes.
    const auto span = [](const TarReader::Entry& e) {
      return e.offset + 512 + (e.size + 511) / 512 * 512;
    };
    b->head_end_ = span(**first);
    if (*second && (*second)->name == kSignatureMember) {
      auto sig = ReadSmall(*b, **second, kSignatureLimit);
      if (!sig) return sig.error();
      b->signature_ = std::move(sig).value();
      b->head_end_ = span(**second);
    } else if (*second) {
      b->pending_ = std::make_unique<BundleReader::PendingMember>();
      b->pending_->entry = **second;
      b->head_end_ = (*second)->offset;
    }

    // Nothing of the manifest is looked at before its signature (or hash) checked out.
    if (manifest_sha256) {
      if (Sha256Hex(b->manifest_bytes_) != *manifest_sha256)
        return VerificationError(Q(where) + ": its manifest's sha256 is not the one its signed "
                                 "TUF target lists (custom.manifest_sha256)");
      b->key_used_ = "its TUF target (manifest sha256 " + manifest_sha256->substr(0, 16) + "...)";
    } else if (keys) {
      if (b->signature_.empty()) {
        return VerificationError(Q(where) + " is not signed (no '" + kSignatureMember +
                                 "' or an empty one): sign it with 'os-update-bundle sign'");
      }
      auto key = VerifyWithAnyKey(b->manifest_bytes_, b->signature_, *keys);
      if (!key) return key.error().Context(Q(where));
      b->key_used_ = *key;
    } else {
      b->unsigned_ = true;
    }
    auto parsed = ParseManifest(b->manifest_bytes_);
    if (!parsed) return parsed.error().Context(Q(where));
    b->manifest_ = std::move(parsed).value();
    if (head_only) return b;
    if (auto r = ReadIndex(*b); !r) return r.error();
    return b;
  }

  // The members between the signature and the boot files: the chunk index and dictionary.
  static Result ReadIndex(BundleReader& b) {
    if (const auto& index = b.manifest_.index) {
      auto bytes = ReadChecked(b, "chunk index", *index, kIndexLimit);
      if (!bytes) return bytes.error();
      b.index_ = std::move(bytes).value();
      // Format 4's full path decodes with the index: it is parsed here, once, and its window
      // must be there (a format 2 or 3 index with one is refused by the partial path).
      if (b.manifest_.windowed) {
        auto parsed = ParseChunkIndex(b.index_, b.where_);
        if (!parsed) return parsed.error();
        if (auto why = IndexFormatMismatch(b.manifest_, *parsed); !why.empty())
          return VerificationError(Q(b.where_) + ": " + Q(index->name) + ": " + why);
        if (parsed->image_size != b.manifest_.image.size)
          return VerificationError(Q(b.where_) + ": the chunk index describes an image of " +
                                   std::to_string(parsed->image_size) + " bytes, the manifest one of " +
                                   std::to_string(b.manifest_.image.size));
        b.windowed_index_ = std::make_shared<const ChunkIndex>(std::move(parsed).value());
      }
    }
    // The dictionary is checked whole before any frame is decoded with it.
    if (const auto& dict = b.manifest_.dictionary) {
      auto bytes = ReadChecked(b, "zstd dictionary", *dict, kDictionaryLimit);
      if (!bytes) return bytes.error();
      b.dictionary_ = std::move(bytes).value();
    }
    b.head_only_ = false;
    return {};
  }

  // The next member, `entry` of the manifest, read whole and checked against its size (at
  // most `limit`) and sha256.
  static Expected<std::string> ReadChecked(BundleReader& b, const std::string& what,
                                           const FileEntry& entry, uint64_t limit) {
    auto e = Expect(b, what, entry.name);
    if (!e) return e.error();
    if (e->size != entry.size || e->size > limit)
      return VerificationError(Q(b.where_) + ": " + what + " " + Q(entry.name) + " is " +
                               std::to_string(e->size) + " bytes, the manifest says " +
                               std::to_string(entry.size));
    auto checked = MakeCheckedReader(b.tar_->Data(), entry.size, entry.sha256,
                                     Q(b.where_) + ": " + what + " " + Q(entry.name));
    return ReadSmallMember(*checked, entry.size + 1);
  }

  // The next member must be `expected` (a boot file or the image).
  static Expected<TarReader::Entry> Expect(BundleReader& b, const std::string& what,
                                           const std::string& expected) {
    auto e = Next(b);
    if (!e) return e.error();
    if (!*e) {
      return VerificationError(Q(b.where_) + " is truncated: " + what + " " + Q(expected) +
                               " is missing");
    }
    if ((*e)->name != expected) {
      return VerificationError(Q(b.where_) + ": expected " + what + " " + Q(expected) +
                               ", found member " + Q((*e)->name));
    }
    return **e;
  }

  static Result FinishCurrent(BundleReader& b) {
    if (!b.current_) return {};
    auto r = Drain(*b.current_);
    b.current_.reset();
    return r;
  }
};

BundleReader::~BundleReader() = default;

Expected<std::unique_ptr<BundleReader>> BundleReader::Open(Reader& source,
                                                           const std::string& where,
                                                           const std::vector<std::string>& keys) {
  return BundleOpener::Open(source, where, &keys);
}

Expected<std::unique_ptr<BundleReader>> BundleReader::OpenHead(
    Reader& source, const std::string& where, const std::vector<std::string>& keys) {
  return BundleOpener::Open(source, where, &keys, nullptr, true);
}

Expected<std::unique_ptr<BundleReader>> BundleReader::OpenWithManifestSha256(
    Reader& source, const std::string& where, const std::string& manifest_sha256) {
  return BundleOpener::Open(source, where, nullptr, &manifest_sha256);
}

Expected<std::unique_ptr<BundleReader>> BundleReader::OpenHeadWithManifestSha256(
    Reader& source, const std::string& where, const std::string& manifest_sha256) {
  return BundleOpener::Open(source, where, nullptr, &manifest_sha256, true);
}

Result BundleReader::ReadIndex() {
  if (!head_only_) return UsageError("BundleReader::ReadIndex() after the head was read on");
  return BundleOpener::ReadIndex(*this);
}

Expected<std::unique_ptr<BundleReader>> BundleReader::OpenUnverified(Reader& source,
                                                                     const std::string& where) {
  return BundleOpener::Open(source, where, nullptr);
}

Expected<std::optional<BundleReader::Member>> BundleReader::NextBootFile() {
  if (head_only_) return UsageError("BundleReader: opened for its manifest only (OpenHead)");
  // A boot file the caller did not read to its end is still checked, here.
  if (auto r = BundleOpener::FinishCurrent(*this); !r) return r.error();
  if (image_taken_ || next_boot_ >= manifest_.boot_files.size()) {
    return std::optional<Member>();
  }
  const FileEntry& want = manifest_.boot_files[next_boot_];
  auto e = BundleOpener::Expect(*this, "boot file", want.name);
  if (!e) return e.error();
  const std::string what = Q(where_) + ": boot file " + Q(want.name);
  // The header says the size up front: a member of the wrong size fails before it is read.
  if (e->size != want.size) {
    return VerificationError(what + ": size mismatch (expected " + std::to_string(want.size) +
                             " bytes, got " + std::to_string(e->size) + ")");
  }
  current_ = MakeCheckedReader(tar_->Data(), want.size, want.sha256, what);
  ++next_boot_;
  return std::optional<Member>(Member{&want, current_.get()});
}

Expected<Reader*> BundleReader::Image() {
  if (image_taken_) return UsageError("BundleReader::Image() called twice");
  if (head_only_) return UsageError("BundleReader: opened for its manifest only (OpenHead)");
  // Boot files nobody asked for are still read through and checked.
  for (;;) {
    auto m = NextBootFile();
    if (!m) return m.error();
    if (!*m) break;
  }
  if (auto r = BundleOpener::FinishCurrent(*this); !r) return r.error();
  auto e = BundleOpener::Expect(*this, "image", manifest_.image.name);
  if (!e) return e.error();
  if (manifest_.compression == Compression::None && e->size != manifest_.image.size) {
    return VerificationError(Q(where_) + ": image " + Q(manifest_.image.name) +
                             ": size mismatch (expected " + std::to_string(manifest_.image.size) +
                             " bytes, got " + std::to_string(e->size) + ")");
  }
  image_taken_ = true;
  return &tar_->Data();
}

Result BundleReader::Finish() {
  if (!image_taken_) return UsageError("BundleReader::Finish() called before Image()");
  auto e = BundleOpener::Next(*this);
  if (!e) return e.error();
  if (*e) {
    return VerificationError(Q(where_) + ": unexpected member " + Q((*e)->name) +
                             " after the image");
  }
  return {};
}

std::string IndexFormatMismatch(const Manifest& m, const ChunkIndex& index) {
  const std::string format = "the manifest says format " + std::to_string(m.format);
  if ((index.window > 0) != m.windowed)
    return m.windowed ? "format " + std::to_string(m.format) + " needs a window, the index has none"
                      : "a window of " + std::to_string(index.window) +
                            " bytes needs format 4 or 5, " + format;
  if ((index.refs > 0) != m.referenced)
    return m.referenced ? "format 5 needs references between chunks, the index has none"
                        : "references between chunks need format 5, " + format;
  return {};
}

Expected<std::unique_ptr<Reader>> MakeImageDecoder(const BundleReader& b, Reader& raw,
                                                   unsigned threads) {
  if (auto index = b.windowed_index()) return MakeWindowedImageDecoder(raw, std::move(index));
  return MakeDecoder(b.manifest().compression, raw, threads, AsBytes(b.dictionary_bytes()));
}

struct BundleWriter::Impl {
  std::unique_ptr<BundleOutput> out;
};

BundleWriter::~BundleWriter() = default;

Expected<std::unique_ptr<BundleWriter>> BundleWriter::Create(const std::string& path) {
  auto out = BundleOutput::Create(path);
  if (!out) return out.error();
  std::unique_ptr<BundleWriter> w(new BundleWriter());
  w->impl_ = std::make_unique<Impl>();
  w->impl_->out = std::move(out).value();
  return w;
}

Result BundleWriter::AddBytes(const std::string& name, const std::string& data) {
  StringReader reader(data);
  return impl_->out->tar().Add(name, data.size(), reader);
}

Result BundleWriter::AddFile(const std::string& name, const std::string& path) {
  return AddFileTo(impl_->out->tar(), name, path);
}

Result BundleWriter::Close() { return impl_->out->Install(); }

Result CreateBundle(const CreateOptions& o) {
  if (o.output.empty()) return UsageError("--output must not be empty");
  if (o.chunk_avg && (o.chunk_avg < 1024 || o.chunk_avg > (1u << 20) ||
                      (o.chunk_avg & (o.chunk_avg - 1)) != 0))
    return UsageError("--chunk-size must be a power of two from 1024 to 1048576");
  // Unset: as many as a frame may take beside a window, none without one.
  const uint32_t chunk_refs = o.chunk_refs.value_or(o.chunk_window > 0 ? kMaxChunkRefs : 0);
  const bool chunked = o.chunks && o.compression == Compression::Zstd;
  if (auto r = CheckChunkOptions(o.chunk_window, chunk_refs, chunked ? o.dictionary_size : 0); !r)
    return r.error();

  Manifest m;
  m.compatible = o.compatible;
  m.version = o.version;
  m.min_version = o.min_version;
  m.cmdline = o.cmdline;
  m.compression = o.compression;
  for (const auto& path : o.boot_files) {
    auto size = InputSize(path);
    if (!size) return size.error();
    m.boot_files.push_back(FileEntry{BaseName(path), *size, ""});
  }
  const std::string image_name = BaseName(o.image) + CompressionSuffix(o.compression);
  auto image_size = InputSize(o.image);
  if (!image_size) return image_size.error();
  m.image = FileEntry{image_name, *image_size, ""};
  // The same rules a device applies: never build what every device would refuse.
  if (auto r = CheckBundleContent(m); !r)
    return UsageError(r.error().message() + " (devices refuse such a bundle)");

  // A bad key path should fail now, not after minutes of compression.
  if (!o.private_key.empty()) {
    if (auto probe = Sign("key check", o.private_key); !probe) return probe.error();
  }
  for (size_t i = 0; i < o.boot_files.size(); ++i) {
    auto entry = HashFile(o.boot_files[i], m.boot_files[i].name);
    if (!entry) return entry.error();
    m.boot_files[i] = *entry;
  }

  // Hash the uncompressed image while it is being compressed: two readers of one file,
  // on two cores.
  TempFile compressed;
  std::string image_member_path = o.image;
  std::string index_bytes, dictionary_bytes;
  Expected<FileEntry> image = UsageError("not hashed");
  {
    std::thread hasher([&] { image = HashFile(o.image, image_name); });
    Result r;
    if (chunked) {
      compressed.path = o.output + ".image.tmp";
      ChunkSizes sizes;
      if (o.chunk_avg) sizes = ChunkSizes{o.chunk_avg / 4, o.chunk_avg, o.chunk_avg * 4};
      auto built = WriteChunkedImage(o.image, compressed.path, o.encode, sizes, o.dictionary_size,
                                     o.chunk_window, chunk_refs);
      if (built) {
        index_bytes = SerializeChunkIndex(built->index);
        m.windowed = built->index.window > 0;
        m.referenced = built->index.refs > 0;
        dictionary_bytes = std::move(built->dictionary);
      } else {
        r = built.error();
      }
      image_member_path = compressed.path;
    } else if (o.compression != Compression::None) {
      compressed.path = o.output + ".image.tmp";
      r = CompressFile(o.compression, o.image, compressed.path, o.encode);
      image_member_path = compressed.path;
    }
    hasher.join();
    if (!r) return r.error();
  }
  if (!image) return image.error();
  m.image = *image;
  if (chunked)
    m.index = FileEntry{ChunkIndexName(image_name), index_bytes.size(), Sha256Hex(index_bytes)};
  if (!dictionary_bytes.empty())
    m.dictionary = FileEntry{image_name + ".dict", dictionary_bytes.size(), Sha256Hex(dictionary_bytes)};

  const std::string manifest = SerializeManifest(m);
  auto check = ParseManifest(manifest);
  Result content = check ? CheckBundleContent(*check) : Result(check.error());
  if (!content) return UsageError("Invalid bundle options: " + content.error().message());
  std::string signature;
  if (!o.private_key.empty()) {
    auto sig = Sign(manifest, o.private_key);
    if (!sig) return sig.error();
    signature = std::move(sig).value();
  }

  auto w = BundleWriter::Create(o.output);
  if (!w) return w.error();
  if (auto r = (*w)->AddBytes(kManifestMember, manifest); !r) return r;
  // Unsigned bundles still have the member, empty: the layout never changes.
  if (auto r = (*w)->AddBytes(kSignatureMember, signature); !r) return r;
  if (m.index)
    if (auto r = (*w)->AddBytes(m.index->name, index_bytes); !r) return r;
  if (m.dictionary)
    if (auto r = (*w)->AddBytes(m.dictionary->name, dictionary_bytes); !r) return r;
  for (size_t i = 0; i < o.boot_files.size(); ++i) {
    if (auto r = (*w)->AddFile(m.boot_files[i].name, o.boot_files[i]); !r) return r;
  }
  if (auto r = (*w)->AddFile(image_name, image_member_path); !r) return r;
  return (*w)->Close();
}

Result AttachSignature(const std::string& input, const std::string& signature,
                       const std::string& output) {
  if (signature.empty()) return UsageError("The signature to attach is empty");
  if (signature.size() > kSignatureLimit) {
    return UsageError("The signature to attach is " + std::to_string(signature.size()) +
                      " bytes, more than the limit of " + std::to_string(kSignatureLimit));
  }
  auto fd = OpenInput(input);
  if (!fd) return fd.error();
  auto source = MakeFdReader(fd->Release(), true, Q(input));
  auto tar = TarReader::Open(*source, input);
  if (!tar) return tar.error();

  auto first = (*tar)->Next();
  if (!first) return first.error();
  if (!*first || (*first)->name != kManifestMember) {
    return VerificationError(Q(input) + " is not a bundle: its first member is not '" +
                             std::string(kManifestMember) + "'");
  }
  if ((*first)->size > kManifestLimit) {
    return VerificationError(Q(input) + ": manifest.yaml is larger than the limit");
  }
  auto manifest = ReadSmallMember((*tar)->Data(), (*first)->size);
  if (!manifest) return manifest.error();
  auto parsed = ParseManifest(*manifest);
  if (!parsed) return parsed.error().Context(Q(input));
  // Signing is trusting: not for content that every device refuses.
  if (auto r = CheckBundleContent(*parsed); !r) return r.error().Context(Q(input));

  auto out = BundleOutput::Create(output);
  if (!out) return out.error();
  StringReader manifest_reader(*manifest), signature_reader(signature);
  if (auto r = (*out)->tar().Add(kManifestMember, manifest->size(), manifest_reader); !r) return r;
  if (auto r = (*out)->tar().Add(kSignatureMember, signature.size(), signature_reader); !r) {
    return r;
  }
  for (;;) {
    auto e = (*tar)->Next();
    if (!e) return e.error();
    if (!*e) break;
    if ((*e)->name == kSignatureMember) continue;  // the old (empty) one
    if (auto r = (*out)->tar().Add((*e)->name, (*e)->size, (*tar)->Data()); !r) return r;
  }
  return (*out)->Install();
}

}  // namespace osu

// Tar with libarchive: the bundle is a plain (uncompressed) tar read strictly front to back
// through callbacks, so that files, pipes and HTTP bodies are read the same way.
#include "bundle/tar.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <unistd.h>

#include <optional>
#include <vector>

#include "common/fd.hpp"
#include "common/text.hpp"

namespace osu {
namespace {

constexpr size_t kReadChunk = 64u << 10;
constexpr size_t kWriteChunk = 1u << 20;

struct ArchiveReadFree {
  void operator()(archive* a) const { archive_read_free(a); }
};
struct EntryFree {
  void operator()(archive_entry* e) const { archive_entry_free(e); }
};

// libarchive's messages can quote a member's name: escaped.
std::string ArchiveMessage(archive* a) {
  const char* s = archive_error_string(a);
  return s ? Printable(s) : "unknown libarchive error";
}

class ArchiveTarReader final : public TarReader, private Reader {
 public:
  ArchiveTarReader(Reader& source, std::string where)
      : source_(source), where_(std::move(where)), buf_(kReadChunk) {}

  Result Init() {
    archive_.reset(archive_read_new());
    if (!archive_) return DeviceError("Failed to create a libarchive reader: out of memory");
    // Tar only, no filters: a compressed or foreign archive is "not a bundle", not decoded.
    archive_read_support_format_tar(archive_.get());
    if (archive_read_open(archive_.get(), this, nullptr, &ArchiveTarReader::ReadCallback,
                          nullptr) != ARCHIVE_OK) {
      return Fail();
    }
    return {};
  }

  Expected<std::optional<Entry>> Next() override {
    if (failed_) return *failed_;
    archive_entry* entry = nullptr;
    in_data_ = false;
    int r = archive_read_next_header(archive_.get(), &entry);
    if (r == ARCHIVE_EOF) return std::optional<Entry>();
    if (r != ARCHIVE_OK && r != ARCHIVE_WARN) return Fail();
    ++headers_;
    Entry e;
    const char* name = archive_entry_pathname(entry);
    e.name = name ? name : "";
    la_int64_t size = archive_entry_size(entry);
    e.size = size > 0 ? static_cast<uint64_t>(size) : 0;
    e.regular = archive_entry_filetype(entry) == AE_IFREG;
    const la_int64_t at = archive_read_header_position(archive_.get());
    e.offset = at > 0 ? static_cast<uint64_t>(at) : 0;
    member_ = e.name;
    in_data_ = true;
    return std::optional<Entry>(std::move(e));
  }

  Reader& Data() override { return *this; }

 private:
  // The member data, as a Reader.
  Expected<size_t> Read(std::span<uint8_t> buf) override {
    if (failed_) return *failed_;
    if (headers_ == 0) return size_t{0};
    la_ssize_t n = archive_read_data(archive_.get(), buf.data(), buf.size());
    if (n >= 0) return static_cast<size_t>(n);
    return Fail();
  }

  // Decides what a libarchive failure means, and makes it sticky.
  Error Fail() {
    if (!source_error_) {
      if (headers_ == 0 && archive_format(archive_.get()) == 0) {
        failed_ = VerificationError(InQuotes(where_) + " is not a bundle: not a tar archive");
      } else {
        const std::string inside =
            in_data_ ? "member " + InQuotes(member_) : std::string("a member header");
        failed_ = VerificationError(InQuotes(where_) + " is truncated: it ends inside " + inside +
                                    " (" + ArchiveMessage(archive_.get()) + ")");
      }
    } else {
      failed_ = *source_error_;  // the source's own error: a network error stays one
    }
    return *failed_;
  }

  static la_ssize_t ReadCallback(archive* a, void* self_ptr, const void** out) {
    auto* self = static_cast<ArchiveTarReader*>(self_ptr);
    auto n = self->source_.Read(self->buf_);
    if (!n) {
      self->source_error_ = n.error();
      archive_set_error(a, EIO, "%s", n.error().message().c_str());
      return -1;
    }
    *out = self->buf_.data();
    return static_cast<la_ssize_t>(*n);
  }

  Reader& source_;
  std::string where_;
  std::vector<uint8_t> buf_;
  std::unique_ptr<archive, ArchiveReadFree> archive_;
  std::optional<Error> source_error_, failed_;
  uint64_t headers_ = 0;
  std::string member_;  // the current member, for "truncated inside ..." messages
  bool in_data_ = false;
};

class ArchiveTarWriter final : public TarWriter {
 public:
  ArchiveTarWriter(Fd fd, std::string path) : fd_(std::move(fd)), path_(std::move(path)) {}
  ~ArchiveTarWriter() override {
    if (archive_) {
      // Not closed: abandoned. The close still runs (archive_write_fail would leak
      // libarchive's block buffer) but writes nothing more.
      abandoned_ = true;
      archive_write_free(archive_);
    }
  }

  Result Init() {
    archive_ = archive_write_new();
    if (!archive_) return DeviceError("Failed to create a libarchive writer: out of memory");
    // pax restricted: plain ustar headers, plus a pax header only where ustar cannot say
    // it (members over 8 GiB, long names).
    if (archive_write_set_format_pax_restricted(archive_) != ARCHIVE_OK ||
        archive_write_open(archive_, this, nullptr, &ArchiveTarWriter::WriteCallback, nullptr) !=
            ARCHIVE_OK) {
      return Fail("Failed to start tar archive");
    }
    return {};
  }

  Result Add(const std::string& name, uint64_t size, Reader& data) override {
    std::unique_ptr<archive_entry, EntryFree> entry(archive_entry_new());
    if (!entry) return DeviceError("Failed to create a tar entry: out of memory");
    archive_entry_set_pathname(entry.get(), name.c_str());
    archive_entry_set_size(entry.get(), static_cast<la_int64_t>(size));
    archive_entry_set_filetype(entry.get(), AE_IFREG);
    archive_entry_set_perm(entry.get(), 0644);
    // A fixed time keeps bundles of the same inputs byte-identical.
    archive_entry_set_mtime(entry.get(), 0, 0);
    int r = archive_write_header(archive_, entry.get());
    if (r != ARCHIVE_OK && r != ARCHIVE_WARN) return Fail("Failed to add '" + name + "'");

    std::vector<uint8_t> buf(kWriteChunk);
    uint64_t done = 0;
    for (;;) {
      auto n = data.Read(buf);
      if (!n) return n.error();
      if (*n == 0) break;
      if (*n > size - done) {
        return DeviceError("Failed to add '" + name + "' to '" + path_ + "': it has more than " +
                           std::to_string(size) + " bytes (did it change?)");
      }
      la_ssize_t w = archive_write_data(archive_, buf.data(), *n);
      if (w < 0 || static_cast<size_t>(w) != *n) return Fail("Failed to add '" + name + "'");
      done += *n;
    }
    if (done != size) {
      return DeviceError("Failed to add '" + name + "' to '" + path_ + "': it has " +
                         std::to_string(done) + " bytes, expected " + std::to_string(size) +
                         " (did it change?)");
    }
    return {};
  }

  Result Close() override {
    if (archive_write_close(archive_) != ARCHIVE_OK) return Fail("Failed to finish tar archive");
    if (::fsync(fd_.get()) != 0) return ErrnoError("Failed to fsync '" + path_ + "'");
    return {};
  }

 private:
  Error Fail(const std::string& what) {
    if (write_error_) return *write_error_;
    return DeviceError(what + " '" + path_ + "': " + ArchiveMessage(archive_));
  }

  static la_ssize_t WriteCallback(archive* a, void* self_ptr, const void* data, size_t size) {
    auto* self = static_cast<ArchiveTarWriter*>(self_ptr);
    if (self->abandoned_) return static_cast<la_ssize_t>(size);
    auto r = WriteAll(self->fd_.get(), {static_cast<const uint8_t*>(data), size},
                      "'" + self->path_ + "'");
    if (!r) {
      self->write_error_ = r.error();
      archive_set_error(a, EIO, "%s", r.error().message().c_str());
      return -1;
    }
    return static_cast<la_ssize_t>(size);
  }

  Fd fd_;
  std::string path_;
  archive* archive_ = nullptr;
  bool abandoned_ = false;
  std::optional<Error> write_error_;
};

}  // namespace

Expected<std::unique_ptr<TarReader>> TarReader::Open(Reader& source, const std::string& where) {
  auto reader = std::make_unique<ArchiveTarReader>(source, where);
  if (auto r = reader->Init(); !r) return r.error();
  return std::unique_ptr<TarReader>(std::move(reader));
}

Expected<std::unique_ptr<TarWriter>> TarWriter::Create(const std::string& path) {
  auto fd = Fd::Open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (!fd) return fd.error();
  auto writer = std::make_unique<ArchiveTarWriter>(std::move(fd).value(), path);
  if (auto r = writer->Init(); !r) return r.error();
  return std::unique_ptr<TarWriter>(std::move(writer));
}

}  // namespace osu

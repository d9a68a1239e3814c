#include "delta/range_source.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <vector>

#include "common/fd.hpp"
#include "platform/curl/range_fetch.hpp"

namespace osu {
namespace {

class FileRanges final : public RangeSource {
 public:
  FileRanges(Fd fd, std::string path) : fd_(std::move(fd)), path_(std::move(path)) {}
  Result Read(uint64_t offset, std::span<uint8_t> out) override {
    ++requests_;
    size_t done = 0;
    while (done < out.size()) {
      const ssize_t n = ::pread(fd_.get(), out.data() + done, out.size() - done,
                                static_cast<off_t>(offset + done));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return ErrnoError("Failed to read bundle '" + path_ + "'", errno, ErrorKind::Source);
      if (n == 0)
        return SourceError("bundle '" + path_ + "' ends at byte " + std::to_string(offset + done) +
                           ", before the range asked");
      done += static_cast<size_t>(n);
    }
    bytes_ += done;
    return {};
  }
  Expected<uint64_t> Size() override {
    struct stat st {};
    if (::fstat(fd_.get(), &st) != 0)
      return ErrnoError("Failed to stat bundle '" + path_ + "'", errno, ErrorKind::Source);
    return static_cast<uint64_t>(st.st_size);
  }
  uint64_t requests() const override { return requests_; }
  uint64_t bytes() const override { return bytes_; }

 private:
  Fd fd_;
  std::string path_;
  uint64_t requests_ = 0, bytes_ = 0;
};

class RangeReader final : public Reader {
 public:
  // `first`: the range's first bytes, already fetched.
  RangeReader(RangeSource& source, uint64_t offset, uint64_t length, size_t piece,
              size_t max_piece, const uint64_t* cap, std::vector<uint8_t> first = {})
      : source_(source), next_(offset + first.size()), end_(offset + length), piece_(piece),
        max_piece_(std::max(piece, max_piece)), cap_(cap), buf_(std::move(first)) {}
  Expected<size_t> Read(std::span<uint8_t> out) override {
    if (pos_ == buf_.size()) {
      const uint64_t end = cap_ ? std::min(end_, *cap_) : end_;
      if (next_ >= end) return size_t{0};
      buf_.resize(static_cast<size_t>(std::min<uint64_t>(piece_, end - next_)));
      if (auto r = source_.Read(next_, buf_); !r) return r.error();
      next_ += buf_.size();
      pos_ = 0;
      piece_ = std::min(piece_ * 2, max_piece_);
    }
    const size_t n = std::min(out.size(), buf_.size() - pos_);
    std::copy_n(buf_.data() + pos_, n, out.data());
    pos_ += n;
    return n;
  }

 private:
  RangeSource& source_;
  uint64_t next_, end_;
  size_t piece_, max_piece_, pos_ = 0;
  const uint64_t* cap_;
  std::vector<uint8_t> buf_;
};

}  // namespace

Expected<std::unique_ptr<RangeSource>> OpenRangeSource(const std::string& uri,
                                                       const SourceOptions& options) {
  if (IsHttpSource(uri)) return OpenHttpRanges(uri, options);
  auto path = LocalSourcePath(uri);
  if (!path) return std::unique_ptr<RangeSource>();
  auto fd = Fd::Open(*path, O_RDONLY);
  if (!fd) return Error(ErrorKind::Source, fd.error().message());
  // A bundle on a block device or a pipe (a medium written with dd, /dev/vdb) has no file size
  // to range over, and reading it whole is as cheap as a partial fetch: front to back only.
  struct stat st {};
  if (::fstat(fd->get(), &st) != 0)
    return ErrnoError("Failed to stat bundle '" + *path + "'", errno, ErrorKind::Source);
  if (!S_ISREG(st.st_mode)) return std::unique_ptr<RangeSource>();
  return std::unique_ptr<RangeSource>(std::make_unique<FileRanges>(std::move(fd).value(), *path));
}

std::unique_ptr<Reader> MakeRangeReader(RangeSource& source, uint64_t offset, uint64_t length,
                                        size_t piece, size_t max_piece, const uint64_t* cap) {
  return std::make_unique<RangeReader>(source, offset, length, piece, max_piece, cap);
}

Expected<ProbedRange> ProbeRange(RangeSource& source, uint64_t offset, uint64_t length,
                                 size_t probe, size_t piece) {
  std::vector<uint8_t> first(static_cast<size_t>(std::min<uint64_t>(length, probe)));
  const auto start = std::chrono::steady_clock::now();
  if (auto r = source.Read(offset, first); !r) return r.error();
  const std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
  ProbedRange probed;
  probed.bytes_per_second = static_cast<double>(first.size()) / std::max(took.count(), 1e-6);
  probed.reader = std::make_unique<RangeReader>(source, offset, length, piece, piece, nullptr,
                                                std::move(first));
  return probed;
}

}  // namespace osu

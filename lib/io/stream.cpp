#include "io/stream.hpp"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <istream>
#include <vector>

#include "common/fd.hpp"

namespace osu {
namespace {

class FdReader final : public Reader {
 public:
  FdReader(int fd, bool owned, std::string name) : fd_(fd), owned_(owned), name_(std::move(name)) {}
  ~FdReader() override {
    if (owned_) ::close(fd_);
  }
  Expected<size_t> Read(std::span<uint8_t> buf) override {
    for (;;) {
      ssize_t n = ::read(fd_, buf.data(), buf.size());
      if (n >= 0) return static_cast<size_t>(n);
      if (errno != EINTR) return ErrnoError("Failed to read " + name_, errno, ErrorKind::Source);
    }
  }

 private:
  int fd_;
  bool owned_;
  std::string name_;
};

class IstreamReader final : public Reader {
 public:
  IstreamReader(std::istream& in, std::string name) : in_(in), name_(std::move(name)) {}
  Expected<size_t> Read(std::span<uint8_t> buf) override {
    in_.read(reinterpret_cast<char*>(buf.data()), static_cast<std::streamsize>(buf.size()));
    if (in_.bad()) return SourceError("Failed to read " + name_);
    return static_cast<size_t>(in_.gcount());
  }

 private:
  std::istream& in_;
  std::string name_;
};

}  // namespace

std::unique_ptr<Reader> MakeIstreamReader(std::istream& in, std::string name) {
  return std::make_unique<IstreamReader>(in, std::move(name));
}

std::unique_ptr<Reader> MakeFdReader(int fd, bool owned, std::string name) {
  return std::make_unique<FdReader>(fd, owned, std::move(name));
}

Result Drain(Reader& r) {
  std::vector<uint8_t> buf(256u << 10);
  for (;;) {
    auto n = r.Read(buf);
    if (!n) return n.error();
    if (*n == 0) return {};
  }
}

Expected<size_t> CountingReader::Read(std::span<uint8_t> buf) {
  auto n = inner_.Read(buf);
  if (n && *n > 0) {
    total_ += *n;
    if (observe_) observe_(total_);
  }
  return n;
}

Expected<size_t> StringReader::Read(std::span<uint8_t> buf) {
  const size_t n = std::min(buf.size(), data_.size() - pos_);
  std::memcpy(buf.data(), data_.data() + pos_, n);
  pos_ += n;
  return n;
}

}  // namespace osu

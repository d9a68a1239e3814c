#include "source/source.hpp"

#include <fcntl.h>
#include <sys/stat.h>

#include <cctype>
#include <cerrno>

#include "common/fd.hpp"
#include "platform/curl/http_source.hpp"
#include "source/ssh_source.hpp"

namespace osu {
namespace {

constexpr const char* kStdinName = "standard input";

// "scheme" of "scheme://rest" (RFC 3986 scheme characters), or "" for a plain path.
std::string SchemeOf(const std::string& uri) {
  auto sep = uri.find("://");
  if (sep == std::string::npos || sep == 0) return "";
  if (!std::isalpha(static_cast<unsigned char>(uri[0]))) return "";
  for (size_t i = 1; i < sep; ++i) {
    char c = uri[i];
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '+' && c != '-' && c != '.') return "";
  }
  std::string scheme = uri.substr(0, sep);
  for (char& c : scheme) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return scheme;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// file:///a%20b => "/a b"; file://localhost/x => "/x". Other hosts are not local files.
Expected<std::string> FileUrlPath(const std::string& uri) {
  std::string rest = uri.substr(uri.find("://") + 3);
  if (rest.rfind("localhost/", 0) == 0) rest = rest.substr(9);
  if (rest.empty() || rest[0] != '/') {
    return UsageError("file:// URL '" + uri + "' names a host; use file:///PATH for a local file");
  }
  std::string path;
  for (size_t i = 0; i < rest.size(); ++i) {
    if (rest[i] == '%' && i + 2 < rest.size()) {
      int hi = HexValue(rest[i + 1]), lo = HexValue(rest[i + 2]);
      if (hi >= 0 && lo >= 0) {
        path.push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
        continue;
      }
    }
    path.push_back(rest[i]);
  }
  return path;
}

Expected<std::unique_ptr<Reader>> OpenFileSource(const std::string& path) {
  auto fd = Fd::Open(path, O_RDONLY);
  if (!fd) {
    int err = errno;
    if (err == ENOENT) return ErrnoError("bundle '" + path + "' not found", err, ErrorKind::Source);
    return ErrnoError("Failed to open bundle '" + path + "'", err, ErrorKind::Source);
  }
  struct stat st {};
  if (::fstat(fd->get(), &st) != 0) {
    return ErrnoError("Failed to stat bundle '" + path + "'", errno, ErrorKind::Source);
  }
  if (S_ISDIR(st.st_mode)) return SourceError("bundle '" + path + "' is a directory");
  return MakeFdReader(fd->Release(), true, "bundle '" + path + "'");
}

}  // namespace

std::optional<std::string> LocalSourcePath(const std::string& uri) {
  if (uri.empty() || uri == "-") return std::nullopt;
  const std::string scheme = SchemeOf(uri);
  if (scheme.empty()) return uri;
  if (scheme != "file") return std::nullopt;
  auto path = FileUrlPath(uri);
  if (!path) return std::nullopt;
  return *path;
}

bool IsHttpSource(const std::string& uri) {
  const std::string scheme = SchemeOf(uri);
  return scheme == "http" || scheme == "https";
}

Expected<std::unique_ptr<Reader>> OpenSource(const std::string& uri, const SourceOptions& options) {
  if (uri.empty())
    return UsageError("No bundle source given (a path, file://, -, http://, https:// or ssh://)");
  if (uri == "-") return MakeFdReader(0, false, kStdinName);

  std::string scheme = SchemeOf(uri);
  if (scheme.empty()) return OpenFileSource(uri);
  if (scheme == "file") {
    auto path = FileUrlPath(uri);
    if (!path) return path.error();
    return OpenFileSource(*path);
  }
  if (scheme == "http" || scheme == "https") return OpenHttpSource(uri, options);
  if (scheme == "ssh") return OpenSshSource(uri, options);
  return UsageError("Unsupported source scheme '" + scheme + "://' in '" + DescribeSource(uri) +
                    "' (use a path, file://, -, http://, https:// or ssh://)");
}

bool StartOverAfter(const Error& error, const SourceHistory& history, const SourceOptions& options,
                    const std::string& where) {
  if (!history.changed && !(history.joined && error.kind() == ErrorKind::Verification)) return false;
  if (options.log) {
    options.log("downloading '" + where + "' once more from byte 0" +
                (history.changed ? "" : " (it was resumed: two versions of it may have been joined)") +
                " after: " + error.message());
  }
  return true;
}

bool IsSshSource(const std::string& uri) { return SchemeOf(uri) == "ssh"; }

std::string DescribeSource(const std::string& uri) {
  if (uri == "-") return kStdinName;
  std::string scheme = SchemeOf(uri);
  if (scheme.empty()) return uri;
  if (scheme == "file") {
    auto path = FileUrlPath(uri);
    return path ? *path : uri;
  }
  // Drop "user:password@" from the authority: it must never reach logs or messages.
  size_t start = uri.find("://") + 3;
  size_t end = uri.find_first_of("/?#", start);
  if (end == std::string::npos) end = uri.size();
  if (end == start) return uri;
  size_t at = uri.rfind('@', end - 1);
  if (at == std::string::npos || at < start) return uri;
  return uri.substr(0, start) + uri.substr(at + 1);
}

}  // namespace osu

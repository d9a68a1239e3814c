// Where a bundle comes from: a path, file://PATH, "-" (stdin), http(s):// (libcurl), or
// ssh://user@host[:port]/NAME (an ssh subprocess; EOS's servers stream unsigned raw images).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "common/error.hpp"
#include "io/stream.hpp"

namespace osu {

struct SourceOptions {
  std::string ca_file;            // https: CA bundle; empty = system default
  std::string pinned_pubkey;      // https: "sha256//<base64>[;...]" the server key must match
  long connect_timeout_s = 30;    // http and ssh
  long low_speed_limit = 1024;    // bytes/s ...
  long low_speed_time_s = 60;     // ... for this long aborts the transfer
  unsigned retries = 3;           // http: resumed with Range within the same run
  // Upper bound on the bytes the caller will read (0 = all): lets http ask for a Range
  // instead of the whole file (--check reads only manifest and signature).
  uint64_t read_limit = 0;
  std::function<void(const std::string& event)> log;  // retries, resumes; may be empty
  std::string ssh_identity;       // ssh: private key file (-i); empty = ssh's defaults
  std::string ssh_known_hosts;    // ssh: the only host keys trusted; empty = ssh's defaults
};

// Errors are Source errors (exit 3): "Bundle 'x' not found: No such file or directory",
// "HTTP 404 from 'http://...'".
Expected<std::unique_ptr<Reader>> OpenSource(const std::string& uri, const SourceOptions& options);

// ssh://...: not a bundle but an unsigned raw partition image (see install/raw_image.hpp).
bool IsSshSource(const std::string& uri);

// A short display name: the path, or the URL without credentials.
std::string DescribeSource(const std::string& uri);

}  // namespace osu

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

// What an http download did that decides whether a failure is worth a fresh download.
struct SourceHistory {
  bool joined = false;   // bytes of two responses joined on the server's word (a resume)
  bool changed = false;  // the file changed on the server under the download
};

struct SourceOptions {
  std::string ca_file;            // https: CA bundle; empty = system default
  std::string pinned_pubkey;      // https: "sha256//<base64>[;...]" the server key must match
  long connect_timeout_s = 30;    // http and ssh
  long low_speed_limit = 1024;    // bytes/s ...
  long low_speed_time_s = 60;     // ... for this long aborts the transfer
  unsigned retries = 3;           // http: resumed with Range within the same run
  // The bytes the caller expects to read (0 = all): http asks for this Range first, and for
  // larger ones only if the caller reads on (--check reads only manifest and signature).
  uint64_t read_window = 0;
  std::function<void(const std::string& event)> log;  // retries, resumes; may be empty
  SourceHistory* history = nullptr;                    // http fills it in when given
  std::string ssh_identity;       // ssh: private key file (-i); empty = ssh's defaults
  std::string ssh_known_hosts;    // ssh: the only host keys trusted; empty = ssh's defaults
};

// Errors are Source errors (exit 3): "Bundle 'x' not found: No such file or directory",
// "HTTP 404 from 'http://...'".
Expected<std::unique_ptr<Reader>> OpenSource(const std::string& uri, const SourceOptions& options);

using SourceOpener = std::function<Expected<std::unique_ptr<Reader>>(const SourceOptions&)>;

// Whether a failed read earns one more download from byte 0: the download joined responses
// (a resume may have spliced two versions of a file replaced with the same validator) and
// the bundle failed to verify, or the file changed under the download. Says so in options.log.
bool StartOverAfter(const Error& error, const SourceHistory& history, const SourceOptions& options,
                    const std::string& where);

// Opens a source and runs `consume` on it, at most twice (see StartOverAfter): the user is
// never told a bundle is corrupt where a fresh download would have worked.
template <class T>
Expected<T> ConsumeSource(const SourceOpener& open, const SourceOptions& options, const std::string& where,
                          const std::function<Expected<T>(Reader&)>& consume) {
  for (int download = 1;; ++download) {
    SourceHistory history;
    SourceOptions o = options;
    o.history = &history;
    auto source = open(o);
    if (!source) return source.error();
    auto result = consume(**source);
    if (result || download == 2 || !StartOverAfter(result.error(), history, options, where)) return result;
  }
}

// ssh://...: not a bundle but an unsigned raw partition image (see install/raw_image.hpp).
bool IsSshSource(const std::string& uri);

// The file a path or file:// URL names; nullopt for "-", other schemes and bad file:// URLs.
std::optional<std::string> LocalSourcePath(const std::string& uri);
// Whether the URI is http:// or https://.
bool IsHttpSource(const std::string& uri);

// A short display name: the path, or the URL without credentials.
std::string DescribeSource(const std::string& uri);

}  // namespace osu

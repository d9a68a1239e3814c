// ssh://[user@]host[:port]/NAME: runs the OpenSSH client and reads its stdout. EOS's update
// servers restrict the device key with a forced command that streams the image whatever was
// asked; an unrestricted server runs `cat NAME` in the login directory.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "io/stream.hpp"
#include "source/source.hpp"

namespace osu {

struct SshTarget {
  std::string user;  // "" = ssh's default
  std::string host;
  std::string port;  // "" = ssh's default
  std::string name;  // what to stream (the URL path without its first '/')
};

// Usage error for anything that is not ssh://[user@]host[:port]/NAME.
Expected<SshTarget> ParseSshUrl(const std::string& url);

// The ssh command line (argv) that streams `target`: batch mode (never a prompt), the key of
// options.ssh_identity, host keys from options.ssh_known_hosts only when it is set.
std::vector<std::string> SshCommand(const SshTarget& target, const SourceOptions& options);

// Starts ssh and waits for the first bytes, so that a refused key, an unknown host or a
// missing file fail here (Source error with ssh's last stderr line), before anything is
// written. A stream that ends with a non-zero ssh exit status is a Source error at its end.
Expected<std::unique_ptr<Reader>> OpenSshSource(const std::string& url, const SourceOptions& options);

}  // namespace osu

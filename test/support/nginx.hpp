// A real nginx on 127.0.0.1 for the http(s) source tests: its own config, logs and temp
// paths in a TempDir, killed in the destructor. Skips the test when nginx is not installed.
#pragma once

#include <sys/types.h>

#include <string>

#include "support/support.hpp"

namespace osu::test {

struct NginxOptions {
  bool tls = false;          // listen with TLS, with a certificate for 127.0.0.1 from a test CA
  std::string server_extra;  // more directives inside server { }, e.g. "location = /x { return 500; }"
};

class NginxServer {
 public:
  explicit NginxServer(NginxOptions options = {});
  ~NginxServer();
  NginxServer(const NginxServer&) = delete;
  NginxServer& operator=(const NginxServer&) = delete;

  int port() const { return port_; }
  // Files served are read from here.
  std::string root() const { return dir_ / "www"; }
  // "http://127.0.0.1:PORT/<path>" (https when tls).
  std::string Url(const std::string& path) const;
  // The test CA's certificate (tls only).
  std::string ca_file() const { return dir_ / "ca.crt"; }
  // One line per request: "<method> <uri> <status> <body_bytes_sent> range=<Range> if_range=<If-Range>".
  std::string AccessLog() const;

 private:
  void MakeCertificates();
  void WriteConfig(const NginxOptions& options);
  bool StartAndWait(std::string& why);

  TempDir dir_;
  bool tls_ = false;
  int port_ = 0;
  pid_t pid_ = -1;
};

// The nginx binary (PATH, then /usr/sbin), or "" when it is not installed.
std::string NginxBinary();

}  // namespace osu::test

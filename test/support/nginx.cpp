#include "support/nginx.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <thread>

namespace osu::test {

std::string NginxBinary() {
  auto r = Run("command -v nginx");
  if (r.exit_code == 0 && !r.output.empty()) return r.output.substr(0, r.output.find('\n'));
  for (const char* p : {"/usr/sbin/nginx", "/usr/local/sbin/nginx"}) {
    if (::access(p, X_OK) == 0) return p;
  }
  return "";
}

NginxServer::NginxServer(NginxOptions options) : tls_(options.tls) {
  SkipUnless(!NginxBinary().empty(), "nginx is not installed (apt-get install nginx)");
  if (tls_) RequireTool("openssl");
  std::filesystem::create_directories(root());
  if (tls_) MakeCertificates();
  std::string why;
  for (int attempt = 0; attempt < 3; ++attempt) {
    port_ = FreeLoopbackPort();
    REQUIRE(port_ > 0);
    WriteConfig(options);
    if (StartAndWait(why)) return;
  }
  FAIL("nginx did not start: " << why);
}

NginxServer::~NginxServer() { StopChild(pid_); }

std::string NginxServer::Url(const std::string& path) const {
  std::string p = path.empty() || path[0] != '/' ? "/" + path : path;
  return std::string(tls_ ? "https" : "http") + "://127.0.0.1:" + std::to_string(port_) + p;
}

std::string NginxServer::AccessLog() const {
  return FileExists(dir_ / "access.log") ? ReadFile(dir_ / "access.log") : "";
}

void NginxServer::MakeCertificates() {
  // A throwaway CA and a server certificate for 127.0.0.1 and localhost, valid two days.
  std::string d = "'" + dir_.path() + "'";
  MustRun("cd " + d +
          " && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
          " -keyout ca.key -out ca.crt -days 2 -subj /CN=osu-test-ca"
          " -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign"
          " && openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
          " -keyout server.key -out server.csr -subj /CN=127.0.0.1"
          " && printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\nbasicConstraints=CA:FALSE\\n"
          "extendedKeyUsage=serverAuth\\n' > server.ext"
          " && openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial"
          " -out server.crt -days 2 -extfile server.ext");
}

void NginxServer::WriteConfig(const NginxOptions& options) {
  const std::string& d = dir_.path();
  std::string listen = "127.0.0.1:" + std::to_string(port_) + (tls_ ? " ssl" : "");
  std::string conf =
      "daemon off;\n"
      "master_process off;\n"
      "worker_processes 1;\n"
      "pid " + d + "/nginx.pid;\n"
      "error_log " + d + "/error.log info;\n"
      "events { worker_connections 64; }\n"
      "http {\n"
      "  log_format osu '$request_method $uri $status $body_bytes_sent range=$http_range "
      "if_range=$http_if_range';\n"
      "  access_log " + d + "/access.log osu;\n"
      "  client_body_temp_path " + d + "/client_body;\n"
      "  proxy_temp_path " + d + "/proxy;\n"
      "  fastcgi_temp_path " + d + "/fastcgi;\n"
      "  uwsgi_temp_path " + d + "/uwsgi;\n"
      "  scgi_temp_path " + d + "/scgi;\n"
      "  default_type application/octet-stream;\n"
      "  server {\n"
      "    listen " + listen + ";\n"
      "    server_name localhost;\n"
      "    root " + root() + ";\n";
  if (tls_) {
    conf += "    ssl_certificate " + d + "/server.crt;\n"
            "    ssl_certificate_key " + d + "/server.key;\n";
  }
  conf += "    " + options.server_extra + "\n  }\n}\n";
  WriteFile(dir_ / "nginx.conf", conf);
}

bool NginxServer::StartAndWait(std::string& why) {
  std::string binary = NginxBinary();
  std::string conf = dir_ / "nginx.conf", out = dir_ / "nginx.out", err = dir_ / "error.log";
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    int fd = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd >= 0) {
      ::dup2(fd, 1);
      ::dup2(fd, 2);
    }
    // -e: the error log before the config is read (the default is /var/log/nginx).
    ::execl(binary.c_str(), "nginx", "-c", conf.c_str(), "-p", dir_.path().c_str(), "-e", err.c_str(),
            static_cast<char*>(nullptr));
    ::_exit(127);
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < deadline) {
    if (::waitpid(pid, nullptr, WNOHANG) == pid) {
      why = (FileExists(out) ? ReadFile(out) : "") + (FileExists(err) ? ReadFile(err) : "");
      return false;
    }
    if (LoopbackPortAccepts(port_)) {
      pid_ = pid;
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
  why = "port " + std::to_string(port_) + " did not accept connections within 10 s";
  return false;
}

}  // namespace osu::test

// A real OpenSSH server on 127.0.0.1 for the ssh:// source tests, set up as EOS's update
// servers restrict the device key: authorized_keys holds `command="...",restrict`, so the
// server streams one file whatever the client asks. Its own host key, config and log in a
// TempDir; killed in the destructor. Skips the test when sshd is not installed. Header-only.
#pragma once

#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <string>
#include <thread>

#include "support/support.hpp"

namespace osu::test {

inline std::string SshdBinary() {
  for (const char* p : {"/usr/sbin/sshd", "/usr/local/sbin/sshd"})
    if (::access(p, X_OK) == 0) return p;
  return "";
}

class SshServer {
 public:
  // `forced_command` runs for every login of client_key(), as EOS's server does.
  explicit SshServer(const std::string& forced_command) {
    SkipUnless(!SshdBinary().empty(), "sshd is not installed (apt-get install openssh-server)");
    RequireTool("ssh");
    RequireTool("ssh-keygen");
    if (::geteuid() == 0) {
      // As root sshd separates privileges into this directory and user (Debian's package
      // makes both; the service creates the directory at start).
      SkipUnless(::getpwnam("sshd") != nullptr, "sshd's privilege separation user 'sshd' is missing");
      ::mkdir("/run/sshd", 0755);
    }
    const passwd* me = ::getpwuid(::geteuid());
    REQUIRE(me != nullptr);
    user_ = me->pw_name;
    const std::string d = "'" + dir_.path() + "'";
    MustRun("cd " + d +
            " && ssh-keygen -q -t ed25519 -N '' -C osu-test-host -f host_key"
            " && ssh-keygen -q -t ed25519 -N '' -C osu-test-device -f device_key"
            " && ssh-keygen -q -t ed25519 -N '' -C osu-test-stranger -f other_key");
    std::string escaped;
    for (char c : forced_command) escaped += c == '"' ? std::string("\\\"") : std::string(1, c);
    WriteFile(dir_ / "authorized_keys",
              "command=\"" + escaped + "\",restrict " + ReadFile(dir_ / "device_key.pub"));
    for (int attempt = 0; attempt < 3; ++attempt) {
      port_ = FreeLoopbackPort();
      WriteConfig();
      if (StartAndWait()) {
        WriteFile(dir_ / "known_hosts",
                  "[127.0.0.1]:" + std::to_string(port_) + " " + ReadFile(dir_ / "host_key.pub"));
        return;
      }
    }
    FAIL("sshd did not start: " << Log());
  }
  ~SshServer() { StopChild(pid_); }
  SshServer(const SshServer&) = delete;
  SshServer& operator=(const SshServer&) = delete;

  int port() const { return port_; }
  const std::string& user() const { return user_; }
  // ssh://user@127.0.0.1:PORT, for update.server.
  std::string Server() const { return "ssh://" + user_ + "@127.0.0.1:" + std::to_string(port_); }
  std::string device_key() const { return dir_ / "device_key"; }  // authorized
  std::string other_key() const { return dir_ / "other_key"; }    // not authorized
  std::string known_hosts() const { return dir_ / "known_hosts"; }
  std::string Log() const { return FileExists(dir_ / "sshd.log") ? ReadFile(dir_ / "sshd.log") : ""; }

 private:
  void WriteConfig() {
    WriteFile(dir_ / "sshd_config",
              "Port " + std::to_string(port_) + "\n"
              "ListenAddress 127.0.0.1\n"
              "HostKey " + (dir_ / "host_key") + "\n"
              "PidFile none\n"
              "AuthorizedKeysFile " + (dir_ / "authorized_keys") + "\n"
              // The temp dir hangs off a world-writable /tmp: sshd's ownership check would refuse it.
              "StrictModes no\n"
              "UsePAM no\n"
              "PubkeyAuthentication yes\n"
              "PasswordAuthentication no\n"
              "KbdInteractiveAuthentication no\n"
              "PermitRootLogin forced-commands-only\n"
              "LogLevel VERBOSE\n");
  }

  bool StartAndWait() {
    const std::string binary = SshdBinary(), conf = dir_ / "sshd_config", log = dir_ / "sshd.log";
    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
      if (fd >= 0) {
        ::dup2(fd, 1);
        ::dup2(fd, 2);
      }
      // -D: stay in the foreground (our child); -e: log to stderr; an absolute path: sshd
      // re-executes itself for every connection.
      ::execl(binary.c_str(), binary.c_str(), "-D", "-e", "-f", conf.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < deadline) {
      if (::waitpid(pid, nullptr, WNOHANG) == pid) return false;  // e.g. the port was taken
      if (Log().find("Server listening on 127.0.0.1 port") != std::string::npos) {
        pid_ = pid;
        return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    return false;
  }

  TempDir dir_;
  std::string user_;
  int port_ = 0;
  pid_t pid_ = -1;
};

}  // namespace osu::test

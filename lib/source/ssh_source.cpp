#include "source/ssh_source.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "common/fd.hpp"

extern char** environ;

namespace osu {
namespace {

constexpr size_t kHeadBytes = 64 * 1024;

// Single quotes for the remote shell: 'it'\''s'.
std::string ShellQuote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// The last non-empty line ssh (or the remote command) wrote to stderr, for the one-line error.
std::string LastLine(const std::string& text) {
  std::string t = text;
  while (!t.empty() && (t.back() == '\n' || t.back() == '\r' || t.back() == ' ')) t.pop_back();
  std::string line = t.substr(t.find_last_of('\n') == std::string::npos ? 0 : t.find_last_of('\n') + 1);
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return line.size() > 300 ? line.substr(0, 300) + "..." : line;
}

class SshSource final : public Reader {
 public:
  SshSource(std::string display, pid_t pid, Fd out, Fd err)
      : display_(std::move(display)), pid_(pid), out_(std::move(out)), err_(std::move(err)) {}

  ~SshSource() override {
    if (pid_ > 0) {  // read no further: stop our own ssh, never leave a zombie
      ::kill(pid_, SIGTERM);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  SshSource(const SshSource&) = delete;
  SshSource& operator=(const SshSource&) = delete;

  // The first bytes, or why there are none.
  Result ReadHead() {
    head_.resize(kHeadBytes);
    auto n = ReadPipe(head_);
    if (!n) return n.error();
    head_.resize(*n);
    if (*n == 0) {
      if (auto r = Finish(); !r) return r;
      return SourceError("'" + display_ + "' sent nothing: the image is empty");
    }
    return {};
  }

  Expected<size_t> Read(std::span<uint8_t> buf) override {
    if (failed_) return *failed_;
    if (head_pos_ < head_.size()) {
      size_t n = std::min(buf.size(), head_.size() - head_pos_);
      std::memcpy(buf.data(), head_.data() + head_pos_, n);
      head_pos_ += n;
      return n;
    }
    if (pid_ <= 0) return size_t{0};
    auto n = ReadPipe(buf);
    if (n && *n == 0) {
      // The end of the stream counts only if ssh says the transfer was complete.
      if (auto r = Finish(); !r) n = r.error();
    }
    if (!n) failed_ = n.error();
    return n;
  }

 private:
  Expected<size_t> ReadPipe(std::span<uint8_t> buf) {
    for (;;) {
      ssize_t n = ::read(out_.get(), buf.data(), buf.size());
      if (n >= 0) return static_cast<size_t>(n);
      if (errno != EINTR) return ErrnoError("Failed to read from ssh for '" + display_ + "'", errno, ErrorKind::Source);
    }
  }

  Result Finish() {
    int status = 0;
    pid_t pid = pid_;
    pid_ = -1;
    while (::waitpid(pid, &status, 0) < 0) {
      if (errno != EINTR) return ErrnoError("Failed to wait for ssh", errno, ErrorKind::Source);
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return {};
    std::string why = WIFEXITED(status) ? "exit status " + std::to_string(WEXITSTATUS(status))
                                        : std::string("killed by signal ") + ::strsignal(WTERMSIG(status));
    std::string detail = LastLine(StderrText());
    // 255 is ssh's own failure (connection, host key, authentication); others are the server's.
    std::string who = WIFEXITED(status) && WEXITSTATUS(status) == 255 ? "ssh" : "the server's command";
    return SourceError("'" + display_ + "': " + who + " failed (" + why + ")" +
                       (detail.empty() ? "" : ": " + detail));
  }

  std::string StderrText() const {
    std::string text;
    char buf[4096];
    off_t at = 0;
    for (;;) {
      ssize_t n = ::pread(err_.get(), buf, sizeof buf, at);
      if (n <= 0) break;
      text.append(buf, static_cast<size_t>(n));
      at += n;
      if (text.size() > 65536) break;
    }
    return text;
  }

  const std::string display_;
  pid_t pid_;
  Fd out_, err_;  // ssh's stdout (a pipe); its stderr (a memfd, read after it exited)
  std::vector<uint8_t> head_;
  size_t head_pos_ = 0;
  std::optional<Error> failed_;
};

}  // namespace

Expected<SshTarget> ParseSshUrl(const std::string& url) {
  auto bad = [&](const std::string& why) {
    return UsageError("ssh source '" + url + "' " + why + " (use ssh://[user@]host[:port]/NAME)");
  };
  if (url.rfind("ssh://", 0) != 0) return bad("is not an ssh:// URL");
  std::string rest = url.substr(6);
  size_t slash = rest.find('/');
  if (slash == std::string::npos || slash + 1 == rest.size()) return bad("names no file");
  SshTarget t;
  t.name = rest.substr(slash + 1);
  std::string authority = rest.substr(0, slash);
  if (size_t at = authority.rfind('@'); at != std::string::npos) {
    t.user = authority.substr(0, at);
    authority = authority.substr(at + 1);
    if (t.user.empty()) return bad("has an empty user name");
  }
  if (!authority.empty() && authority[0] == '[') {  // [::1]:2222
    size_t close = authority.find(']');
    if (close == std::string::npos) return bad("has an unclosed '['");
    t.host = authority.substr(1, close - 1);
    authority = authority.substr(close + 1);
    if (!authority.empty() && authority[0] != ':') return bad("has text after ']'");
    if (!authority.empty()) t.port = authority.substr(1);
  } else if (size_t colon = authority.find(':'); colon != std::string::npos) {
    t.host = authority.substr(0, colon);
    t.port = authority.substr(colon + 1);
  } else {
    t.host = authority;
  }
  if (t.host.empty()) return bad("names no host");
  // ssh would take a leading '-' as an option.
  if (t.host[0] == '-' || (!t.user.empty() && t.user[0] == '-')) return bad("has a host or user starting with '-'");
  if (!t.port.empty() && (t.port.size() > 5 || t.port.find_first_not_of("0123456789") != std::string::npos))
    return bad("has a bad port '" + t.port + "'");
  if (t.name.find_first_of(std::string("\n\r\0", 3)) != std::string::npos) return bad("has a control character in its name");
  return t;
}

std::vector<std::string> SshCommand(const SshTarget& t, const SourceOptions& options) {
  // A stalled stream ends in about a minute, not never.
  std::vector<std::string> argv = {"ssh", "-T", "-o", "BatchMode=yes", "-o", "LogLevel=ERROR",
                                   "-o", "ServerAliveInterval=15", "-o", "ServerAliveCountMax=4"};
  if (options.connect_timeout_s > 0)
    argv.insert(argv.end(), {"-o", "ConnectTimeout=" + std::to_string(options.connect_timeout_s)});
  if (!options.ssh_identity.empty()) {
    argv.insert(argv.end(), {"-i", options.ssh_identity, "-o", "IdentitiesOnly=yes"});
  }
  if (!options.ssh_known_hosts.empty()) {
    argv.insert(argv.end(), {"-o", "StrictHostKeyChecking=yes", "-o",
                             "UserKnownHostsFile=" + options.ssh_known_hosts, "-o",
                             "GlobalKnownHostsFile=/dev/null"});
  }
  if (!t.port.empty()) argv.insert(argv.end(), {"-p", t.port});
  if (!t.user.empty()) argv.insert(argv.end(), {"-l", t.user});
  argv.insert(argv.end(), {"--", t.host, "cat -- " + ShellQuote(t.name)});
  return argv;
}

Expected<std::unique_ptr<Reader>> OpenSshSource(const std::string& url, const SourceOptions& options) {
  auto target = ParseSshUrl(url);
  if (!target) return target.error();
  const std::string display = DescribeSource(url);

  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) return ErrnoError("Failed to create a pipe for ssh", errno, ErrorKind::Source);
  Fd out(pipe_fds[0]), out_child(pipe_fds[1]);
  Fd err(::memfd_create("ssh-stderr", MFD_CLOEXEC));
  if (!err.valid()) return ErrnoError("Failed to create a buffer for ssh's messages", errno, ErrorKind::Source);
  Fd null_in(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  if (!null_in.valid()) return ErrnoError("Failed to open '/dev/null'", errno, ErrorKind::Source);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, null_in.get(), STDIN_FILENO);
  posix_spawn_file_actions_adddup2(&actions, out_child.get(), STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, err.get(), STDERR_FILENO);
  std::vector<std::string> args = SshCommand(*target, options);
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = -1;
  int rc = ::posix_spawnp(&pid, "ssh", &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) return ErrnoError("Failed to run ssh for '" + display + "'", rc, ErrorKind::Source);
  out_child = Fd();  // only ssh writes to the pipe now: its exit is our end of file

  auto source = std::make_unique<SshSource>(display, pid, std::move(out), std::move(err));
  if (auto r = source->ReadHead(); !r) return r.error();
  return std::unique_ptr<Reader>(std::move(source));
}

}  // namespace osu

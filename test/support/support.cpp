#include "support/support.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <thread>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>


namespace osu::test {

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string tmpl = std::string(base && *base ? base : "/tmp") + "/osu-test.XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (!::mkdtemp(buf.data())) throw std::runtime_error("mkdtemp failed");
  path_ = buf.data();
}

TempDir::~TempDir() {
  if (std::getenv("OSU_TEST_KEEP")) {  // debugging a failure: keep the fake device
    std::cerr << "kept " << path_ << std::endl;
    return;
  }
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

CommandResult Run(const std::string& command) {
  CommandResult r;
  std::string full = "exec 2>&1; " + command;
  FILE* p = ::popen(full.c_str(), "r");
  if (!p) return r;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.output.append(buf, n);
  int status = ::pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

std::string MustRun(const std::string& command) {
  auto r = Run(command);
  INFO("command: " << command << "\noutput:\n" << r.output);
  REQUIRE(r.exit_code == 0);
  return r.output;
}

void WriteFile(const std::string& path, const std::string& data) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << data;
  if (!f) throw std::runtime_error("cannot write " + path);
}

std::string ReadFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error("cannot read " + path);
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

std::string Sha256OfFile(const std::string& path) {
  auto out = MustRun("sha256sum '" + path + "'");
  return out.substr(0, 64);
}

bool FileExists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

void SkipUnless(bool condition, const std::string& reason) {
  if (condition) return;
  std::cout << "SKIP: " << reason << std::endl;
  std::cerr << "SKIP: " << reason << std::endl;
  std::_Exit(77);
}

void SkipUnlessRoot(const std::string& what) {
  SkipUnless(::geteuid() == 0, what + " needs root (loop devices, mounts); run the tests as root");
}

bool HaveTool(const std::string& tool) {
  return Run("command -v '" + tool + "' >/dev/null").exit_code == 0;
}

void RequireTool(const std::string& tool) {
  SkipUnless(HaveTool(tool), "'" + tool + "' is not installed (scripts/install-deps.sh installs it)");
}

size_t CountOf(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

bool HasOneErrorLine(const std::string& err, const std::string& prog) {
  const std::string tag = prog + ": ";
  const auto first = err.find(tag);
  if (first == std::string::npos || first != err.rfind(tag)) return false;
  if (first != 0 && err[first - 1] != '\n') return false;
  return err.find('\n', first) == err.size() - 1;
}

std::string SourceDir() { return OSU_SOURCE_DIR; }
std::string BinaryDir() { return OSU_BINARY_DIR; }

void StopChild(int pid) {
  if (pid <= 0) return;
  ::kill(pid, SIGTERM);
  for (int i = 0; i < 100; ++i) {
    if (::waitpid(pid, nullptr, WNOHANG) == pid) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
}

namespace {
sockaddr_in Loopback(int port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(port));
  return a;
}
}  // namespace

int FreeLoopbackPort() {
  int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a = Loopback(0);
  socklen_t len = sizeof a;
  int port = 0;
  if (::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      ::getsockname(s, reinterpret_cast<sockaddr*>(&a), &len) == 0) {
    port = ntohs(a.sin_port);
  }
  ::close(s);
  return port;
}

bool LoopbackPortAccepts(int port) {
  int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a = Loopback(port);
  bool ok = ::connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(s);
  return ok;
}

}  // namespace osu::test

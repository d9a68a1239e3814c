// Shared test helpers: temp directories, running commands, skipping with a reason.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace osu {
class BootEnv;
}

namespace osu::test {

// A fresh directory under $TMPDIR, removed with everything in it at scope exit.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr, interleaved
};
// Runs `command` with /bin/sh -c; never throws.
CommandResult Run(const std::string& command);
// Runs it and fails the current test (with its output) unless it exits 0.
std::string MustRun(const std::string& command);

void WriteFile(const std::string& path, const std::string& data);
std::string ReadFile(const std::string& path);
std::string Sha256OfFile(const std::string& path);  // via sha256sum: an oracle, not our code
bool FileExists(const std::string& path);

// Exit 77 (ctest: SKIP) printing the reason, unless the condition holds.
void SkipUnless(bool condition, const std::string& reason);
void SkipUnlessRoot(const std::string& what);
bool HaveTool(const std::string& tool);
void RequireTool(const std::string& tool);

// How often `what` occurs in `text` (overlapping occurrences count).
size_t CountOf(const std::string& text, const std::string& what);

// stderr of a failed run holds exactly one error line "<prog>: ...", and it is the last line
// (lines before it are the narrative a non-terminal run prints).
bool HasOneErrorLine(const std::string& err, const std::string& prog = "os-update");

std::string SourceDir();  // the repository
std::string BinaryDir();  // the build tree

// Runs osu::cli::UpdateMain / BundleMain in-process with the given arguments (argv[0] added).
struct MainResult {
  int code = -1;
  std::string out, err;
};
MainResult RunUpdate(const std::vector<std::string>& args, const std::string& stdin_data = "");
// As RunUpdate, with `env` as the boot env (FakeBootEnv, or one the test keeps open).
MainResult RunUpdate(const std::vector<std::string>& args, BootEnv& env);
// As RunUpdate, but with the real platform's refusal to kexec or reboot from an image file.
MainResult RunUpdateAsHost(const std::vector<std::string>& args);

// Ends a server the test started: SIGTERM, up to 2 s to exit, then SIGKILL; always reaped.
void StopChild(int pid);
// A 127.0.0.1 port that was free a moment ago (0 if none): the server that takes it must
// notice when it loses the race, and the test start it again.
int FreeLoopbackPort();
// Whether something accepts TCP connections on 127.0.0.1:port.
bool LoopbackPortAccepts(int port);
MainResult RunBundle(const std::vector<std::string>& args, const std::string& stdin_data = "");
// What the last RunUpdate asked of its (fake) activator: "load K I CMDLINE", "kexec", "reboot".
std::vector<std::string> LastActivatorCalls();

}  // namespace osu::test

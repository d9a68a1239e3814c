// kexec_file_load(2) and reboot(2): the real way out of the running system.
#include <fcntl.h>
#include <linux/kexec.h>
#include <linux/reboot.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "activate/activator.hpp"
#include "common/fd.hpp"

namespace osu {
namespace {

// Runs argv without a shell; returns its exit status or an error.
Result RunProgram(const std::vector<std::string>& argv) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid < 0) return ErrnoError("Failed to start '" + argv[0] + "'");
  if (pid == 0) {
    ::execvp(args[0], args.data());
    ::_exit(127);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return ErrnoError("Failed to wait for '" + argv[0] + "'");
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    return DeviceError("'" + argv[0] + " " + argv[1] + "' failed with status " +
                       std::to_string(WIFEXITED(status) ? WEXITSTATUS(status) : -1));
  return {};
}

class SystemActivator final : public Activator {
 public:
  explicit SystemActivator(std::string systemd_dir) : systemd_dir_(std::move(systemd_dir)) {}

  Result LoadKexec(const std::string& kernel, const std::string& initrd,
                   const std::string& cmdline) override {
    auto k = Fd::Open(kernel, O_RDONLY);
    if (!k) return k.error();
    auto i = Fd::Open(initrd, O_RDONLY);
    if (!i) return i.error();
    // The kernel wants the terminating NUL counted in the length.
    long rc = ::syscall(SYS_kexec_file_load, k->get(), i->get(), cmdline.size() + 1,
                        cmdline.c_str(), 0UL);
    if (rc != 0) return ErrnoError("kexec_file_load of '" + kernel + "' failed");
    return {};
  }

  Result Kexec() override {
    ::sync();
    if (SystemdRuns()) return RunProgram({"systemctl", "kexec"});
    if (::reboot(LINUX_REBOOT_CMD_KEXEC) != 0) return ErrnoError("reboot(KEXEC) failed");
    return {};
  }

  Result Reboot(const std::string& argument) override {
    ::sync();
    if (SystemdRuns()) {
      // systemd stops the units, then hands the argument to reboot(2) as RESTART2 itself.
      if (argument.empty()) return RunProgram({"systemctl", "reboot"});
      return RunProgram({"systemctl", "reboot", argument});
    }
    if (argument.empty()) {
      if (::reboot(RB_AUTOBOOT) != 0) return ErrnoError("reboot failed");
      return {};
    }
    if (::syscall(SYS_reboot, LINUX_REBOOT_MAGIC1, LINUX_REBOOT_MAGIC2,
                  LINUX_REBOOT_CMD_RESTART2, argument.c_str()) != 0)
      return ErrnoError("reboot(RESTART2, '" + argument + "') failed");
    return {};
  }

 private:
  bool SystemdRuns() const {
    struct stat st {};
    return ::stat(systemd_dir_.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
  }
  std::string systemd_dir_;
};

}  // namespace

std::unique_ptr<Activator> MakeSystemActivator(const std::string& systemd_runtime_dir) {
  return std::make_unique<SystemActivator>(systemd_runtime_dir);
}

}  // namespace osu

// In-process runs of the two command lines (kept apart so per-file test targets link
// without the whole CLI). os-update runs with a fake activator: a test must never kexec or
// reboot the machine it runs on.
#include <functional>
#include <sstream>

#include "cli/cli.hpp"
#include "support/support.hpp"

namespace osu::test {

namespace {

MainResult RunMain(const std::function<int(const std::vector<std::string>&, const cli::Streams&)>& fn,
                   const std::string& argv0, const std::vector<std::string>& args,
                   const std::string& stdin_data) {
  std::vector<std::string> argv{argv0};
  argv.insert(argv.end(), args.begin(), args.end());
  std::istringstream in(stdin_data);
  std::ostringstream out, err;
  MainResult r;
  r.code = fn(argv, cli::Streams{in, out, err});
  r.out = out.str();
  r.err = err.str();
  return r;
}

std::vector<std::string>& ActivatorLog() {
  static std::vector<std::string> log;
  return log;
}

}  // namespace

std::vector<std::string> LastActivatorCalls() { return ActivatorLog(); }

namespace {
// Hands the test's own env to one run of os-update, which owns what it is given.
class SharedEnv final : public BootEnv {
 public:
  explicit SharedEnv(BootEnv& env) : env_(env) {}
  Expected<EnvVars> Load() override { return env_.Load(); }
  Result Apply(const EnvChanges& changes) override { return env_.Apply(changes); }
  bool Exists() const override { return env_.Exists(); }
  std::string Describe() const override { return env_.Describe(); }
  std::string TrialRebootArgument() const override { return env_.TrialRebootArgument(); }

 private:
  BootEnv& env_;
};

MainResult RunUpdateOn(const std::vector<std::string>& args, const std::string& stdin_data,
                       bool activate_from_image_file, BootEnv* env = nullptr) {
  ActivatorLog().clear();
  cli::Platform platform;
  if (env)
    platform.make_boot_env = [env](const Config&) -> std::unique_ptr<BootEnv> {
      return std::make_unique<SharedEnv>(*env);
    };
  platform.make_activator = [](const std::string&) -> std::unique_ptr<Activator> {
    return std::make_unique<FakeActivator>(ActivatorLog());
  };
  platform.activate_from_image_file = activate_from_image_file;
  return RunMain(
      [&](const std::vector<std::string>& a, const cli::Streams& s) {
        return cli::UpdateMain(a, s, platform);
      },
      "os-update", args, stdin_data);
}
}  // namespace

MainResult RunUpdate(const std::vector<std::string>& args, const std::string& stdin_data) {
  return RunUpdateOn(args, stdin_data, true);
}

MainResult RunUpdateAsHost(const std::vector<std::string>& args) {
  return RunUpdateOn(args, "", false);
}

MainResult RunUpdate(const std::vector<std::string>& args, BootEnv& env) {
  return RunUpdateOn(args, "", true, &env);
}

MainResult RunBundle(const std::vector<std::string>& args, const std::string& stdin_data) {
  return RunMain(
      [](const std::vector<std::string>& a, const cli::Streams& s) { return cli::BundleMain(a, s); },
      "os-update-bundle", args, stdin_data);
}

}  // namespace osu::test

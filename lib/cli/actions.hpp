// What every action of `os-update` shares: its options, how it prints a result or an error,
// and the steps more than one action takes (opening a source, leaving the running system).
// One file per action: status.cpp, check.cpp, apply.cpp, activate.cpp, commit.cpp, rollback.cpp.
#pragma once

#include <memory>
#include <string>

#include "cli/cli.hpp"
#include "cli/progress.hpp"
#include "common/json.hpp"
#include "config/config.hpp"
#include "install/activation.hpp"
#include "install/system.hpp"
#include "io/stream.hpp"
#include "source/source.hpp"

namespace osu::cli {

struct Options {
  bool check = false, status = false, json = false, dry_run = false, allow_downgrade = false,
       ignore_rollout = false;
  bool commit = false, rollback = false, no_activate = false, kexec = false, reboot = false;
  bool no_delta = false;  // --apply: always the whole bundle, no partial fetch
  bool activate = false;
  std::string apply_source;
  bool apply = false;
  std::string config_path = kDefaultConfigPath;
  bool config_given = false;
  std::string check_source;
};

// Prints an error as one line (and a JSON object with --json) and returns its exit code.
class Printer {
 public:
  Printer(const Streams& s, bool json) : s_(s), json_(json) {}
  int Fail(const Error& e) const;

 private:
  const Streams& s_;
  bool json_;
};

struct Context {
  const Options& opt;
  const Streams& s;
  const Printer& p;
  const Platform& platform;
  BootEnv& env;
};

// Prints one result line (or object), returns 0.
int Done(const Streams& s, bool json, const std::string& action, const std::string& message,
         Json extra = Json::MakeObject());

Expected<std::unique_ptr<Reader>> OpenCliSource(const std::string& uri, const Streams& s,
                                                const SourceOptions& options);
SourceOptions MakeSourceOptions(const Config& config, ProgressPrinter* printer);
ProgressPrinter::Mode PrinterMode(const Options& opt, const Streams& s);

// kexec and reboot leave the running system; that only makes sense when it boots from the
// slots. An image file (the demo, a build host) never is: refuse before anything is written.
Result CheckCanLeaveSystem(const SystemState& st, const Platform& platform,
                           const std::string& hint = "use --no-activate");
Activation ActivationMode(const Options& opt, const Config& config);
// The end of --apply and all of --activate: say what is about to happen, then kexec, or set
// OSU_TRY and reboot. `details` is the result, printed only if the activator returns (a fake).
int StartTrial(const SystemState& st, const ActivationPlan& plan, const Context& c,
               const std::string& action, const std::string& message, Json details);

// The actions, one file each.
int RunStatus(const SystemState& st, const Context& c);
int RunCheck(const SystemState& st, const Context& c);
int RunApply(const SystemState& st, const Context& c);
int RunActivate(const SystemState& st, const Context& c);
int RunCommit(const SystemState& st, const Context& c);
int RunRollback(const SystemState& st, const Context& c);

}  // namespace osu::cli

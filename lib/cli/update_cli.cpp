// `os-update`: the device-side command. Parses, loads config and system state, runs one
// action, prints the result, and returns the exit code. All logic lives in lib/install.
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <iostream>
#include <memory>
#include <optional>

#include "cli/cli.hpp"
#include "cli/actions.hpp"
#include "common/json.hpp"
#include "common/text.hpp"
#include "install/activation.hpp"
#include "install/apply.hpp"
#include "install/lock.hpp"
#include "install/raw_image.hpp"
#include "install/system.hpp"
#include "source/source.hpp"

namespace osu::cli {
namespace {

constexpr const char* kFooter = R"(How an update goes:
  --apply   writes and verifies the inactive slot, then starts it as a trial: kexec (x86
            default) or a one-shot boot through the bootloader (--reboot; Raspberry Pi default)
  --commit  run by os-update-commit.service after boot-complete.target: the trial becomes
            the default. A trial that never commits ends in a reboot into the old slot.
  --activate  starts a slot that --apply --no-activate left verified, as --apply would have
  --rollback  makes the other (verified) slot the default again; --reboot to go there now

Examples:
  os-update --status                      where am I, what is installed in each slot
  os-update --check                       is there a newer bundle on update.server?
  os-update --apply                       install it into the inactive slot and start it
  os-update --apply /media/usb/eos-2.0.osu --no-activate
  os-update --activate --reboot           later, in the maintenance window
  os-update --apply https://updates.example.com/eos-x86_64-kvm.osu --json
  curl -s https://.../b.osu | os-update --apply -
  os-update --rollback --reboot

Exit codes:
  0    success; --check: up to date
  100  --check: an update is available
  1    usage or configuration error
  2    verification failed (signature, sha256, size, compatible, version)
  3    source or network error (retrying may help)
  4    refused by state (trial pending, another os-update runs, target in use or not
       verified, slots not found)
  5    device or I/O error

Configuration: /etc/os-update.yml, described in os-update.yml(5).)";

}  // namespace

Platform SystemPlatform() {
  Platform p;
  p.make_activator = [](const std::string& systemd_dir) { return MakeSystemActivator(systemd_dir); };
  p.make_boot_env = [](const Config& config) { return MakeBootEnv(config); };
  return p;
}

int UpdateMain(const std::vector<std::string>& args, const Streams& s) {
  return UpdateMain(args, s, SystemPlatform());
}

int UpdateMain(const std::vector<std::string>& args, const Streams& s, const Platform& platform) {
  Options opt;
  CLI::App app{
      "os-update: A/B image updates for immutable embedded Linux.\n"
      "Streams a signed bundle into the inactive slot, verifying its signature before a\n"
      "byte is written and its sha256 and size while it streams."};
  app.footer(kFooter);
  auto* actions = app.add_option_group("Actions", "exactly one of");
  actions->add_flag("--check", opt.check,
                    "Read only the manifest and signature of SOURCE (default: update.server) "
                    "and compare with the booted slot: exit 0 up to date, 100 update available");
  auto* apply = actions->add_option("--apply", opt.apply_source,
                                    "Install SOURCE (path, file://, -, http(s)://, ssh://; default: "
                                    "update.server) into the inactive slot")
                    ->expected(0, 1);
  actions->add_flag("--activate", opt.activate,
                    "Start the inactive slot, verified by an earlier --apply --no-activate, as a trial");
  actions->add_flag("--commit", opt.commit,
                    "Make the booted slot the default (after a trial) or mark it good; run by "
                    "os-update-commit.service after boot-complete.target");
  actions->add_flag("--rollback", opt.rollback,
                    "Make the other slot the default again, if it is verified; remembers the "
                    "version rolled back from so --check does not offer it again");
  actions->add_flag("--status", opt.status,
                    "Show the slots, their records, boot attempts, booted and committed slot");
  actions->require_option(1);
  app.add_option("source", opt.check_source, "SOURCE for --check or --apply");
  app.add_flag("--json", opt.json, "Machine-readable output: one JSON object per line");
  auto* config = app.add_option("--config", opt.config_path, "Configuration file")
                     ->capture_default_str();
  app.add_flag("--dry-run", opt.dry_run,
               "--apply: verify the bundle's manifest and signature and print the plan only; "
               "--activate, --rollback: the plan only");
  app.add_flag("--allow-downgrade", opt.allow_downgrade,
               "--apply: accept a bundle older than the installed version, or one rolled back "
               "from; --activate: start a version rolled back from");
  app.add_flag("--ignore-rollout", opt.ignore_rollout,
               "--apply (TUF): install a release its staged rollout holds back for this device "
               "(without it such an --apply is refused, exit 2, also with an explicit SOURCE)");
  auto* kexec = app.add_flag("--kexec", opt.kexec,
                             "--apply, --activate: activate by kexec into the new slot (x86 default)");
  app.add_flag("--reboot", opt.reboot,
               "--apply, --activate: activate by a one-shot boot of the new slot (Raspberry Pi "
               "default); --rollback: reboot afterwards")
      ->excludes(kexec);
  app.add_flag("--no-activate", opt.no_activate,
               "--apply: stop after the slot is verified and recorded");
  app.add_flag("--no-delta", opt.no_delta,
               "--apply: download the whole bundle, even where the device holds most of it "
               "(else a patch or the chunks it lacks; update.delta_prefer: time or bytes)");
  app.set_version_flag("--version", std::string("os-update ") + OSU_VERSION);

  std::vector<const char*> argv;
  for (const auto& a : args) argv.push_back(a.c_str());
  try {
    app.parse(static_cast<int>(argv.size()), const_cast<char**>(argv.data()));
  } catch (const CLI::CallForHelp&) {
    s.out << app.help();
    return kExitOk;
  } catch (const CLI::CallForVersion&) {
    s.out << "os-update " << OSU_VERSION << "\n";
    return kExitOk;
  } catch (const CLI::ParseError& e) {
    s.err << "os-update: " << e.what() << "\nRun 'os-update --help' for usage." << std::endl;
    return kExitUsage;
  }
  opt.apply = apply->count() > 0;
  opt.config_given = config->count() > 0;
  Printer printer(s, opt.json);
  if (opt.apply && opt.apply_source.empty()) opt.apply_source = opt.check_source;
  if (!opt.check && !opt.check_source.empty() && !opt.apply)
    return printer.Fail(UsageError("a SOURCE argument goes with --check or --apply"));
  if (opt.activate && opt.no_activate)
    return printer.Fail(UsageError("--no-activate goes with --apply; --activate is the step after it"));

  auto cfg = LoadConfig(opt.config_path, opt.config_given);
  if (!cfg) return printer.Fail(cfg.error());
  // Whatever changes the device holds the lock from before it reads the state it acts on.
  Expected<Fd> lock = Fd();
  if (opt.apply || opt.activate || opt.commit || opt.rollback) {
    lock = AcquireLock(cfg->lock_path);
    if (!lock) return printer.Fail(lock.error());
  }
  auto env = platform.make_boot_env ? platform.make_boot_env(*cfg) : MakeBootEnv(*cfg);
  auto state = LoadSystemState(*cfg, *env);
  if (!state) return printer.Fail(state.error());

  Context context{opt, s, printer, platform, *env};
  if (opt.status) return RunStatus(*state, context);
  if (opt.check) return RunCheck(*state, context);
  if (opt.commit) return RunCommit(*state, context);
  if (opt.rollback) return RunRollback(*state, context);
  if (opt.activate) return RunActivate(*state, context);
  return RunApply(*state, context);
}

}  // namespace osu::cli

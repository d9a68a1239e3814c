// `os-update`: the device-side command. Parses, loads config and system state, runs one
// action, prints the result, and returns the exit code. All logic lives in lib/install.
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <iostream>
#include <memory>
#include <optional>

#include "cli/cli.hpp"
#include "cli/progress.hpp"
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

Configuration: /etc/os-update.yml (see README: update.*, slots.*, boot.*, system.*).)";

struct Options {
  bool check = false, status = false, json = false, dry_run = false, allow_downgrade = false;
  bool commit = false, rollback = false, no_activate = false, kexec = false, reboot = false;
  bool activate = false;
  std::string apply_source;
  bool apply = false;
  std::string config_path = kDefaultConfigPath;
  bool config_given = false;
  std::string check_source;
};

class Printer {
 public:
  Printer(const Streams& s, bool json) : s_(s), json_(json) {}

  // Escaped as a whole (a no-op on text escaped where it entered): one line, always.
  int Fail(const Error& e) const {
    int code = ExitCode(e);
    const std::string message = Printable(e.message());
    s_.err << "os-update: " << message << std::endl;
    if (json_)
      s_.out << Json::MakeObject()
                    .Set("event", "error")
                    .Set("error", message)
                    .Set("exit_code", code)
                    .Dump()
             << std::endl;
    return code;
  }

 private:
  const Streams& s_;
  bool json_;
};

Json SlotJson(const SystemState& st, SlotId id) {
  const Slot& slot = st.slots[id];
  Json j = Json::MakeObject();
  j.Set("device", slot.part.device.empty() ? slot.part.disk : slot.part.device);
  if (slot.part.device.empty()) j.Set("offset", slot.part.offset);
  j.Set("label", slot.part.label);
  j.Set("partuuid", slot.part.partuuid);
  j.Set("size", slot.part.size);
  j.Set("booted", st.booted == id);
  j.Set("attempts_left", st.selection ? Json(st.selection->attempts(id)) : Json());
  if (const auto& r = st.record(id)) {
    j.Set("state", SlotStateName(r->state));
    if (!r->version.empty()) j.Set("version", r->version);
    if (!r->sha256.empty()) j.Set("sha256", r->sha256);
    if (r->size) j.Set("image_size", r->size);
    if (!r->updated_at.empty()) j.Set("updated_at", r->updated_at);
    if (!r->reason.empty()) j.Set("reason", r->reason);
  }
  return j;
}

int Status(const SystemState& st, const Streams& s, bool json) {
  if (json) {
    Json j = Json::MakeObject();
    j.Set("booted", SlotName(st.booted));
    j.Set("committed", st.committed ? Json(SlotName(*st.committed)) : Json());
    j.Set("trial", st.trial);
    j.Set("try", st.selection && st.selection->try_slot
                     ? Json(SlotName(*st.selection->try_slot))
                     : Json());
    j.Set("installed_version",
          st.installed_version.empty() ? Json() : Json(st.installed_version));
    Json slots = Json::MakeObject();
    slots.Set("A", SlotJson(st, SlotId::A));
    slots.Set("B", SlotJson(st, SlotId::B));
    j.Set("slots", std::move(slots));
    s.out << j.Dump() << std::endl;
    return kExitOk;
  }
  s.out << "Booted slot:    " << SlotLetter(st.booted)
        << (st.installed_version.empty() ? ""
                                         : " (version " + Printable(st.installed_version) + ")")
        << "\n";
  s.out << "Committed slot: "
        << (st.committed ? SlotName(*st.committed)
                         : std::string("unknown (no boot env)"))
        << (st.trial ? "   -- slot " + SlotName(st.booted) +
                           " runs as a trial: --commit or --rollback"
                     : "")
        << "\n";
  for (SlotId id : {SlotId::A, SlotId::B}) {
    const Slot& slot = st.slots[id];
    const auto& r = st.record(id);
    s.out << "Slot " << SlotLetter(id) << (st.booted == id ? " (booted)" : "") << ": "
          << slot.part.label << " on " << slot.Describe() << ", " << slot.part.size << " bytes";
    if (st.selection) s.out << ", " << st.selection->attempts(id) << " boot attempts left";
    if (st.selection && st.selection->try_slot == id) s.out << ", one-shot try pending";
    s.out << "\n";
    if (!r) {
      s.out << "  no record\n";
      continue;
    }
    s.out << "  state " << SlotStateName(r->state);
    if (!r->version.empty()) s.out << ", version " << Printable(r->version);
    if (!r->updated_at.empty()) s.out << ", " << r->updated_at;
    s.out << "\n";
    if (!r->sha256.empty()) s.out << "  sha256 " << r->sha256 << "\n";
    if (!r->reason.empty()) s.out << "  reason: " << Printable(r->reason) << "\n";
  }
  return kExitOk;
}

Expected<std::unique_ptr<Reader>> OpenCliSource(const std::string& uri, const Streams& s,
                                                const SourceOptions& options) {
  if (uri == "-") {
    // The real stdin is read through its fd; an in-process test passes its own stream.
    if (&s.in == &std::cin) return MakeFdReader(STDIN_FILENO, false, "standard input");
    return MakeIstreamReader(s.in, "standard input");
  }
  return OpenSource(uri, options);
}

SourceOptions MakeSourceOptions(const Config& config, ProgressPrinter* printer) {
  SourceOptions o;
  o.ca_file = config.ca_file;
  o.pinned_pubkey = config.pinned_pubkey;
  o.connect_timeout_s = config.connect_timeout_s;
  o.low_speed_limit = config.low_speed_limit;
  o.low_speed_time_s = config.low_speed_time_s;
  o.retries = config.retries;
  o.ssh_identity = config.pkey;
  o.ssh_known_hosts = config.known_hosts;
  if (printer) o.log = [printer](const std::string& line) { printer->Info(line); };
  return o;
}

int RunCheck(const SystemState& st, const Options& opt, const Streams& s, const Printer& p) {
  std::string uri = opt.check_source.empty() ? st.config.DefaultSource() : opt.check_source;
  if (uri.empty())
    return p.Fail(UsageError("no SOURCE given and update.server/update.name are not configured"));
  if (IsSshSource(uri))
    return p.Fail(UsageError("--check needs a signed bundle; '" + DescribeSource(uri) +
                             "' serves an unsigned raw image"));
  SourceOptions so = MakeSourceOptions(st.config, nullptr);
  so.read_window = 48 * 1024;  // manifest and signature, as a rule; larger ones are read on
  auto result = ConsumeSource<CheckResult>(
      [&](const SourceOptions& o) { return OpenCliSource(uri, s, o); }, so, DescribeSource(uri),
      [&](Reader& source) { return Check(st, source, DescribeSource(uri)); });
  if (!result) return p.Fail(result.error());
  const int code = result->update_available ? kExitUpdateAvailable : kExitOk;
  if (opt.json) {
    s.out << Json::MakeObject()
                 .Set("installed", result->installed_version.empty()
                                       ? Json()
                                       : Json(result->installed_version))
                 .Set("available", result->manifest.version)
                 .Set("compatible", result->manifest.compatible)
                 .Set("update_available", result->update_available)
                 .Set("source", result->source)
                 .Set("reason", result->reason)
                 .Dump()
          << std::endl;
  } else {
    s.out << "Installed: "
          << (result->installed_version.empty() ? "unknown"
                                                : Printable(result->installed_version))
          << " (slot " << SlotLetter(st.booted) << ")\n"
          << "Available: " << result->manifest.version << " (" << Printable(result->source)
          << ")\n"
          << (result->update_available ? "Update available: " : "Up to date: ")
          << Printable(result->reason) << "\n";
  }
  return code;
}

// Prints one result line (or object), returns 0.
int Done(const Streams& s, bool json, const std::string& action, const std::string& message,
         Json extra = Json::MakeObject()) {
  if (json) {
    extra.Set("event", "result").Set("action", action).Set("message", message);
    s.out << extra.Dump() << std::endl;
  } else {
    s.out << Printable(message) << "\n";
  }
  return kExitOk;
}

struct Context {
  const Options& opt;
  const Streams& s;
  const Printer& p;
  const Platform& platform;
  BootEnv& env;
};

// kexec and reboot leave the running system; that only makes sense when it boots from the
// slots. An image file (the demo, a build host) never is: refuse before anything is written.
Result CheckCanLeaveSystem(const SystemState& st, const Platform& platform,
                           const std::string& hint = "use --no-activate") {
  struct stat info{};
  if (platform.activate_from_image_file || ::stat(st.config.disk.c_str(), &info) != 0 ||
      !S_ISREG(info.st_mode))
    return {};
  return UsageError("slots.disk '" + st.config.disk +
                    "' is an image file, not a disk this system boots from: refusing to kexec "
                    "or reboot the host; " + hint);
}

Activation ActivationMode(const Options& opt, const Config& config) {
  return opt.kexec ? Activation::Kexec : (opt.reboot ? Activation::Reboot : config.activation);
}

// The end of --apply and all of --activate: say what is about to happen, then kexec, or set
// OSU_TRY and reboot. `details` is the result, printed only if the activator returns (a fake).
int StartTrial(const SystemState& st, const ActivationPlan& plan, const Context& c,
               const std::string& action, const std::string& message, Json details) {
  details.Set("activation", ActivationName(plan.mode));
  if (c.opt.json) {
    c.s.out << Json::MakeObject().Set("event", "info").Set("message", plan.Describe()).Dump()
            << std::endl;
  } else {
    c.s.out << Printable(message) << "\n"
            << "Activating: " << Printable(plan.Describe()) << "\n"
            << std::flush;
  }
  auto activator = c.platform.make_activator(st.config.systemd_path);
  if (auto r = Activate(st, plan, c.env, *activator); !r) return c.p.Fail(r.error());
  if (c.opt.json)
    c.s.out << details.Set("event", "result").Set("action", action).Dump() << std::endl;
  return kExitOk;
}

ProgressPrinter::Mode PrinterMode(const Options& opt, const Streams& s) {
  const bool tty = &s.err == &std::cerr && ::isatty(STDERR_FILENO);
  return opt.json ? ProgressPrinter::Mode::Json
                  : (tty ? ProgressPrinter::Mode::Bar : ProgressPrinter::Mode::Plain);
}

// ssh://: EOS's unsigned raw images, only with update.allow_unsigned_ssh (checked before
// connecting). Never activated: a raw image brings no kernel or bootloader snippet.
int RunApplyRaw(const SystemState& st, const Context& c, const std::string& uri) {
  const Options& opt = c.opt;
  const std::string where = DescribeSource(uri);
  if (auto r = CheckUnsignedImageAllowed(st.config, where); !r) return c.p.Fail(r.error());
  if (opt.kexec || opt.reboot)
    return c.p.Fail(UsageError("--kexec and --reboot need boot files; the unsigned raw image from '" +
                               where + "' has none, it can only be installed"));
  const char letter = SlotLetter(OtherSlot(st.booted));
  if (opt.dry_run)
    return Done(c.s, opt.json, "apply",
                "Dry run: would stream the unsigned raw image from " + where + " into slot " +
                    letter + "; nothing was written.",
                Json::MakeObject().Set("slot", std::string(1, letter)).Set("dry_run", true));
  ProgressPrinter printer(PrinterMode(opt, c.s), opt.json ? c.s.out : c.s.err);
  auto source = OpenCliSource(uri, c.s, MakeSourceOptions(st.config, &printer));
  if (!source) return c.p.Fail(source.error());
  auto result = ApplyRawImage(st, c.env, **source, RawImageRequest{where}, printer.MakeReporter());
  printer.Finish();
  if (!result) return c.p.Fail(result.error());
  return Done(c.s, opt.json, "apply",
              "Installed the unsigned raw image from " + where + " into slot " + letter + " (" +
                  std::to_string(result->copy.bytes) + " bytes, sha256 " + result->copy.sha256 +
                  "), recorded as " + kUnsignedSshSource +
                  ". Not activated: a raw image carries no boot files.",
              Json::MakeObject()
                  .Set("slot", std::string(1, letter))
                  .Set("version", result->manifest.version)
                  .Set("sha256", result->copy.sha256)
                  .Set("bytes", result->copy.bytes)
                  .Set("source", kUnsignedSshSource)
                  .Set("activation", "none"));
}

int RunApply(const SystemState& st, const Context& c) {
  const Options& opt = c.opt;
  const Streams& s = c.s;
  std::string uri = opt.apply_source.empty() ? st.config.DefaultSource() : opt.apply_source;
  if (uri.empty())
    return c.p.Fail(UsageError("no SOURCE given and update.server/update.name are not configured"));
  // A refusal by state must not depend on the source: say "trial pending", not "not found".
  if (auto r = CheckInstallAllowed(st); !r) return c.p.Fail(r.error());
  if (IsSshSource(uri)) return RunApplyRaw(st, c, uri);
  if (!opt.no_activate && !opt.dry_run)
    if (auto r = CheckCanLeaveSystem(st, c.platform); !r) return c.p.Fail(r.error());

  ProgressPrinter printer(PrinterMode(opt, s), opt.json ? s.out : s.err);
  ApplyRequest request;
  request.where = DescribeSource(uri);
  request.dry_run = opt.dry_run;
  request.allow_downgrade = opt.allow_downgrade;
  auto result = ConsumeSource<ApplyResult>(
      [&](const SourceOptions& o) { return OpenCliSource(uri, s, o); },
      MakeSourceOptions(st.config, &printer), request.where,
      [&](Reader& source) { return Apply(st, c.env, source, request, printer.MakeReporter()); });
  printer.Finish();
  if (!result) return c.p.Fail(result.error());

  const char letter = SlotLetter(result->target);
  const Activation mode = ActivationMode(opt, st.config);
  if (result->dry_run) {
    return Done(s, opt.json, "apply",
                "Dry run: would install " + result->manifest.version + " into slot " + letter +
                    (opt.no_activate ? "" : ", then " + ActivationName(mode) + " into it") +
                    "; nothing was written.",
                Json::MakeObject().Set("slot", std::string(1, letter)).Set("dry_run", true));
  }
  const double mb = static_cast<double>(result->copy.bytes) / 1e6;
  char rate[64];
  std::snprintf(rate, sizeof rate, "%.1f s, %.1f MB/s", result->seconds,
                result->seconds > 0 ? mb / result->seconds : 0.0);
  Json details = Json::MakeObject()
                     .Set("slot", std::string(1, letter))
                     .Set("version", result->manifest.version)
                     .Set("sha256", result->copy.sha256)
                     .Set("bytes", result->copy.bytes)
                     .Set("bytes_written", result->copy.bytes_written)
                     .Set("seconds", result->seconds);
  std::string message = "Installed " + result->manifest.version + " into slot " + letter + " (" +
                        std::to_string(result->copy.bytes) + " bytes, sha256 " +
                        result->copy.sha256 + ", " + rate + "). Slot " + letter + " is verified.";
  if (opt.no_activate) {
    details.Set("activation", "none");
    return Done(s, opt.json, "apply", message + " Not activated (--no-activate).", details);
  }

  // Activation reads the state again: the records and env just changed.
  auto fresh = LoadSystemState(st.config, c.env);
  if (!fresh) return c.p.Fail(fresh.error());
  auto plan = PlanActivation(*fresh, result->target, mode);
  if (!plan) return c.p.Fail(plan.error());
  return StartTrial(*fresh, *plan, c, "apply", message, std::move(details));
}

// --activate: the slot an --apply --no-activate left verified, started as --apply would have.
int RunActivate(const SystemState& st, const Context& c) {
  const Options& opt = c.opt;
  if (!opt.dry_run)
    if (auto r = CheckCanLeaveSystem(st, c.platform, "run --activate on the device itself"); !r)
      return c.p.Fail(r.error());
  auto plan = PlanInactiveActivation(st, ActivationMode(opt, st.config), opt.allow_downgrade);
  if (!plan) return c.p.Fail(plan.error());
  const std::string letter(1, SlotLetter(plan->slot));
  const Record& record = *st.record(plan->slot);  // verified: the plan checked it
  Json details = Json::MakeObject()
                     .Set("slot", letter)
                     .Set("version", record.version)
                     .Set("sha256", record.sha256);
  if (opt.dry_run)
    return Done(c.s, opt.json, "activate",
                "Dry run: would " + plan->Describe() + "; nothing was written.",
                details.Set("activation", ActivationName(plan->mode)).Set("dry_run", true));
  return StartTrial(st, *plan, c, "activate",
                    "Slot " + letter + " (version " + record.version + ") is verified.",
                    std::move(details));
}

int RunCommit(const SystemState& st, const Context& c) {
  auto r = Commit(st, c.env);
  if (!r) return c.p.Fail(r.error());
  return Done(c.s, c.opt.json, "commit", r->message,
              Json::MakeObject().Set("slot", SlotName(st.booted))
                  .Set("changed", r->changed));
}

int RunRollback(const SystemState& st, const Context& c) {
  if (c.opt.reboot)
    if (auto r = CheckCanLeaveSystem(st, c.platform); !r) return c.p.Fail(r.error());
  if (c.opt.dry_run) {
    return Done(c.s, c.opt.json, "rollback",
                std::string("Dry run: would make slot ") + SlotLetter(OtherSlot(st.booted)) +
                    " the default; nothing was written.");
  }
  auto r = Rollback(st, c.env);
  if (!r) return c.p.Fail(r.error());
  Done(c.s, c.opt.json, "rollback", r->message,
       Json::MakeObject().Set("slot", SlotName(OtherSlot(st.booted))));
  if (c.opt.reboot) {
    auto activator = c.platform.make_activator(st.config.systemd_path);
    if (auto rb = activator->Reboot(); !rb) return c.p.Fail(rb.error());
  }
  return kExitOk;
}

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
  auto* kexec = app.add_flag("--kexec", opt.kexec,
                             "--apply, --activate: activate by kexec into the new slot (x86 default)");
  app.add_flag("--reboot", opt.reboot,
               "--apply, --activate: activate by a one-shot boot of the new slot (Raspberry Pi "
               "default); --rollback: reboot afterwards")
      ->excludes(kexec);
  app.add_flag("--no-activate", opt.no_activate,
               "--apply: stop after the slot is verified and recorded");
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
  if (opt.status) return Status(*state, s, opt.json);
  if (opt.check) return RunCheck(*state, opt, s, printer);
  if (opt.commit) return RunCommit(*state, context);
  if (opt.rollback) return RunRollback(*state, context);
  if (opt.activate) return RunActivate(*state, context);
  return RunApply(*state, context);
}

}  // namespace osu::cli

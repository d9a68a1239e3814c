#include <sys/stat.h>
#include <unistd.h>

#include <iostream>

#include "cli/actions.hpp"
#include "common/text.hpp"

namespace osu::cli {

// Escaped as a whole (a no-op on text escaped where it entered): one line, always.
int Printer::Fail(const Error& e) const {
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

int Done(const Streams& s, bool json, const std::string& action, const std::string& message,
         Json extra) {
  if (json) {
    extra.Set("event", "result").Set("action", action).Set("message", message);
    s.out << extra.Dump() << std::endl;
  } else {
    s.out << Printable(message) << "\n";
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

ProgressPrinter::Mode PrinterMode(const Options& opt, const Streams& s) {
  const bool tty = &s.err == &std::cerr && ::isatty(STDERR_FILENO);
  return opt.json ? ProgressPrinter::Mode::Json
                  : (tty ? ProgressPrinter::Mode::Bar : ProgressPrinter::Mode::Plain);
}

Result CheckCanLeaveSystem(const SystemState& st, const Platform& platform,
                           const std::string& hint) {
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

}  // namespace osu::cli

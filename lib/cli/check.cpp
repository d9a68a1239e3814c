// --check: the manifest and signature only, compared with the booted slot.
#include "cli/actions.hpp"
#include "common/text.hpp"
#include "install/apply.hpp"
#include "install/tuf_release.hpp"

#include <ctime>

namespace osu::cli {

int RunCheck(const SystemState& st, const Context& c) {
  const Options& opt = c.opt;
  const Streams& s = c.s;
  const Printer& p = c.p;
  std::string uri = opt.check_source.empty() ? st.config.DefaultSource() : opt.check_source;
  if (uri.empty())
    return p.Fail(UsageError("no SOURCE given and update.server/update.name are not configured"));
  if (IsSshSource(uri))
    return p.Fail(UsageError("--check needs a signed bundle; '" + DescribeSource(uri) +
                             "' serves an unsigned raw image"));
  SourceOptions so = MakeSourceOptions(st.config, nullptr);
  so.read_window = 48 * 1024;  // manifest and signature, as a rule; larger ones are read on
  Expected<CheckResult> result = UsageError("");
  if (!st.config.tuf_root.empty()) {  // TUF: the metadata only, never the bundle
    auto release = ResolveTufRelease(st.config, uri, so, static_cast<int64_t>(std::time(nullptr)));
    result = release ? CheckTufRelease(st, *release) : Expected<CheckResult>(release.error());
  } else {
    result = ConsumeSource<CheckResult>(
        [&](const SourceOptions& o) { return OpenCliSource(uri, s, o); }, so, DescribeSource(uri),
        [&](Reader& source) { return Check(st, source, DescribeSource(uri)); });
  }
  if (!result) return p.Fail(result.error());
  if (!result->warning.empty()) s.err << "os-update: warning: " << Printable(result->warning) << "\n";
  const int code = result->update_available ? kExitUpdateAvailable : kExitOk;
  if (opt.json) {
    Json line = Json::MakeObject();
    line.Set("installed", result->installed_version.empty()
                                       ? Json()
                                       : Json(result->installed_version))
                 .Set("available", result->manifest.version)
                 .Set("compatible", result->manifest.compatible)
                 .Set("update_available", result->update_available)
                 .Set("source", result->source)
                 .Set("reason", result->reason);
    if (!result->warning.empty()) line.Set("warning", result->warning);
    s.out << line.Dump() << std::endl;
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

}  // namespace osu::cli

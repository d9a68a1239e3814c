// --apply: a signed bundle (or an unsigned raw image over ssh://) into the inactive slot,
// then its trial.
#include "cli/actions.hpp"
#include "common/text.hpp"
#include "install/apply.hpp"
#include "install/apply_delta.hpp"
#include "install/raw_image.hpp"
#include "install/tuf_release.hpp"

#include <ctime>

namespace osu::cli {

namespace {

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

}  // namespace

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

  ApplyRequest request;
  if (!st.config.tuf_root.empty()) {
    // TUF: only the bundle its verified target entry names, trusted through the manifest's
    // sha256 there (checked before a byte reaches the slot; the manifest binds the rest).
    auto release = ResolveTufRelease(st.config, uri, MakeSourceOptions(st.config, nullptr),
                                     static_cast<int64_t>(std::time(nullptr)));
    if (!release) return c.p.Fail(release.error());
    if (release->target.bundle.manifest_sha256.size() != 64)
      return c.p.Fail(VerificationError("target '" + release->target_name +
                                        "' lists no custom.manifest_sha256, so its bundle cannot "
                                        "be checked before it is written"));
    // The rollout binds every --apply, an explicit SOURCE too: a unit or script that names
    // the URL must not take the whole fleet past a 5% rollout. The operator's way past it is
    // the flag.
    const RolloutVerdict rollout = JudgeRollout(st.config, release->target.bundle);
    if (!rollout.warning.empty()) s.err << "os-update: warning: " << Printable(rollout.warning) << "\n";
    if (rollout.held && !opt.ignore_rollout)
      return c.p.Fail(VerificationError(rollout.reason + "; --ignore-rollout installs it anyway"));
    if (rollout.held) s.err << "os-update: warning: " << Printable(rollout.reason) << "; installing it (--ignore-rollout)\n";
    uri = release->bundle_uri;
    request.manifest_sha256 = release->target.bundle.manifest_sha256;
    request.target_length = release->target.length;
    request.target_sha256 = release->target.hashes.at("sha256");
  }
  ProgressPrinter printer(PrinterMode(opt, s), opt.json ? s.out : s.err);
  request.where = DescribeSource(uri);
  request.dry_run = opt.dry_run;
  request.allow_downgrade = opt.allow_downgrade;
  // The cheapest verified way first: the chunks the device lacks; else the whole bundle.
  Expected<std::optional<ApplyResult>> delta = std::optional<ApplyResult>();
  if (!opt.no_delta)
    delta = ApplyDelta(st, c.env, uri, MakeSourceOptions(st.config, &printer), request,
                       printer.MakeReporter());
  if (!delta) {
    printer.Finish();
    return c.p.Fail(delta.error());
  }
  auto result = *delta ? Expected<ApplyResult>(std::move(**delta))
                       : ConsumeSource<ApplyResult>(
                             [&](const SourceOptions& o) { return OpenCliSource(uri, s, o); },
                             MakeSourceOptions(st.config, &printer), request.where,
                             [&](Reader& source) {
                               return Apply(st, c.env, source, request, printer.MakeReporter());
                             });
  printer.Finish();
  if (!result) return c.p.Fail(result.error());
  const auto& d = result->delta;

  const char letter = SlotLetter(result->target);
  const Activation mode = ActivationMode(opt, st.config);
  if (result->dry_run) {
    Json plan = Json::MakeObject().Set("slot", std::string(1, letter)).Set("dry_run", true);
    if (d) plan.Set("way", d->way).Set("download_bytes", d->planned).Set("ranges", d->ranges);
    else plan.Set("way", "full");
    if (d && d->recompress_bytes) plan.Set("recompress_bytes", d->recompress_bytes);
    return Done(s, opt.json, "apply",
                "Dry run: would install " + result->manifest.version + " into slot " + letter +
                    (d && d->way == "patch" ? " from a patch against the booted slot, downloading " +
                                                 std::to_string(d->planned) + " bytes" +
                                                 (d->recompress_bytes
                                                      ? " and compressing " +
                                                            std::to_string(d->recompress_bytes) +
                                                            " bytes of zstd blocks again"
                                                      : std::string())
                     : d ? " by partial fetch, downloading " + std::to_string(d->planned) +
                               " bytes of the image in " + std::to_string(d->ranges) + " ranges"
                         : std::string(" by a full download")) +
                    (opt.no_activate ? "" : ", then " + ActivationName(mode) + " into it") +
                    "; nothing was written.",
                plan);
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
                     .Set("seconds", result->seconds)
                     .Set("way", d ? d->way : "full");
  if (d) details.Set("fetched_bytes", d->fetched).Set("reused_bytes", d->reused).Set("requests", d->requests);
  if (d && d->recompress_bytes) details.Set("recompress_bytes", d->recompress_bytes);
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

}  // namespace osu::cli

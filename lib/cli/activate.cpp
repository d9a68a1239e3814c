// --activate: the slot an --apply --no-activate left verified, started as --apply would.
#include "cli/actions.hpp"

namespace osu::cli {

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

}  // namespace osu::cli

// --rollback [--reboot]: back to the other slot, if it has run as the committed one.
#include "cli/actions.hpp"

namespace osu::cli {

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
    if (auto rb = activator->Reboot(""); !rb) return c.p.Fail(rb.error());
  }
  return kExitOk;
}

}  // namespace osu::cli

// --commit: after boot-complete.target, the trial becomes the default (or attempts reset).
#include "cli/actions.hpp"

namespace osu::cli {

int RunCommit(const SystemState& st, const Context& c) {
  auto r = Commit(st, c.env);
  if (!r) return c.p.Fail(r.error());
  return Done(c.s, c.opt.json, "commit", r->message,
              Json::MakeObject().Set("slot", SlotName(st.booted))
                  .Set("changed", r->changed));
}

}  // namespace osu::cli

#include "boot/selection.hpp"

#include <sstream>

namespace osu {
namespace {

int ParseAttempts(const EnvVars& vars, const char* name) {
  auto it = vars.find(name);
  if (it == vars.end() || it->second.size() != 1) return 0;
  char c = it->second[0];
  return c >= '0' && c <= '0' + kMaxAttempts ? c - '0' : 0;
}

}  // namespace

BootSelection ParseSelection(const EnvVars& vars) {
  BootSelection s;
  if (auto it = vars.find("OSU_ORDER"); it != vars.end()) {
    std::vector<SlotId> order;
    std::istringstream words(it->second);
    std::string w;
    while (words >> w) {
      if (w == "A") order.push_back(SlotId::A);
      if (w == "B") order.push_back(SlotId::B);
    }
    if (!order.empty()) s.order = order;
  }
  s.attempts(SlotId::A) = ParseAttempts(vars, "OSU_A_LEFT");
  s.attempts(SlotId::B) = ParseAttempts(vars, "OSU_B_LEFT");
  if (auto it = vars.find("OSU_TRY"); it != vars.end()) {
    if (it->second == "A") s.try_slot = SlotId::A;
    if (it->second == "B") s.try_slot = SlotId::B;
  }
  return s;
}

EnvChanges SelectionChanges(const BootSelection& s) {
  std::string order;
  for (SlotId id : s.order) {
    if (!order.empty()) order += ' ';
    order += SlotLetter(id);
  }
  EnvChanges c;
  c["OSU_ORDER"] = order;
  c["OSU_A_LEFT"] = std::to_string(s.attempts(SlotId::A));
  c["OSU_B_LEFT"] = std::to_string(s.attempts(SlotId::B));
  c["OSU_TRY"] = s.try_slot ? std::optional<std::string>(SlotName(*s.try_slot))
                            : std::nullopt;
  return c;
}

BootSelection FactorySelection() {
  BootSelection s;
  s.attempts(SlotId::A) = kMaxAttempts;
  s.attempts(SlotId::B) = kMaxAttempts;
  return s;
}

BootOutcome SimulateBoot(const BootSelection& before) {
  BootOutcome out;
  out.env_after = before;
  if (before.try_slot) {
    out.slot = *before.try_slot;
    out.trial = true;
    out.env_after.try_slot.reset();
    return out;
  }
  for (SlotId s : before.order) {
    if (before.attempts(s) > 0) {
      out.slot = s;
      out.env_after.attempts(s) = before.attempts(s) - 1;
      return out;
    }
  }
  out.slot = before.committed();
  return out;
}

}  // namespace osu

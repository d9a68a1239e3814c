#include "bootenv/boot_env.hpp"

namespace osu {

Expected<EnvVars> FakeBootEnv::Load() {
  if (!exists) return DeviceError("fake boot env does not exist");
  return vars;
}

Result FakeBootEnv::Apply(const EnvChanges& changes) {
  if (fail_next_apply) {
    fail_next_apply = false;
    return DeviceError("fake boot env: write failed");
  }
  for (const auto& [k, v] : changes) {
    if (v) vars[k] = *v;
    else vars.erase(k);
  }
  exists = true;
  ++applies;
  return {};
}

}  // namespace osu

// --status: the slots, their records, attempts, booted and committed slot.
#include "bootenv/pi_firmware.hpp"
#include "cli/actions.hpp"
#include "common/text.hpp"

namespace osu::cli {

namespace {

// The Pi firmware counts no boots: the committed slot always boots, so no attempts to show.
bool CountsBoots(const SystemState& st) {
  return st.selection && st.config.bootloader != Bootloader::PiFirmware;
}

Json OptionalSlot(const std::optional<SlotId>& s) { return s ? Json(SlotName(*s)) : Json(); }

// What the Pi firmware reads: the slot config.txt and tryboot.txt select, and whether this
// boot came through tryboot.
Json PiFirmwareJson(const PiBootState& pi) {
  Json j = Json::MakeObject();
  j.Set("config_txt", OptionalSlot(pi.config_txt));
  j.Set("tryboot_txt", OptionalSlot(pi.tryboot_txt));
  j.Set("tryboot_flag", pi.tryboot_flag ? Json(*pi.tryboot_flag) : Json());
  return j;
}

std::string PiFirmwareLine(const PiBootState& pi) {
  auto slot = [](const std::optional<SlotId>& s) { return s ? SlotName(*s) : "no slot"; };
  return "Pi firmware:    config.txt boots " + slot(pi.config_txt) + ", tryboot.txt " +
         slot(pi.tryboot_txt) + "; this boot " +
         (pi.tryboot_flag ? (*pi.tryboot_flag ? "came through tryboot" : "read config.txt")
                          : "unknown (no chosen/bootloader/tryboot)") +
         "\n";
}

Json SlotJson(const SystemState& st, SlotId id) {
  const Slot& slot = st.slots[id];
  Json j = Json::MakeObject();
  j.Set("device", slot.part.device.empty() ? slot.part.disk : slot.part.device);
  if (slot.part.device.empty()) j.Set("offset", slot.part.offset);
  j.Set("label", slot.part.label);
  j.Set("partuuid", slot.part.partuuid);
  j.Set("size", slot.part.size);
  j.Set("booted", st.booted == id);
  j.Set("attempts_left", CountsBoots(st) ? Json(st.selection->attempts(id)) : Json());
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

}  // namespace

int RunStatus(const SystemState& st, const Context& c) {
  const Streams& s = c.s;
  const bool json = c.opt.json;
  std::optional<PiBootState> pi;
  if (st.config.bootloader == Bootloader::PiFirmware)
    pi = ReadPiBootState(st.config.boot_path, st.config.device_tree_path);
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
    if (pi) j.Set("pi_firmware", PiFirmwareJson(*pi));
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
  if (pi) s.out << PiFirmwareLine(*pi);
  for (SlotId id : {SlotId::A, SlotId::B}) {
    const Slot& slot = st.slots[id];
    const auto& r = st.record(id);
    s.out << "Slot " << SlotLetter(id) << (st.booted == id ? " (booted)" : "") << ": "
          << slot.part.label << " on " << slot.Describe() << ", " << slot.part.size << " bytes";
    if (CountsBoots(st)) s.out << ", " << st.selection->attempts(id) << " boot attempts left";
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

}  // namespace osu::cli

#include "slots/slots.hpp"

#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <algorithm>
#include <cctype>

#include "slots/mountinfo.hpp"

namespace osu {
namespace {

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

bool StartsWith(const std::string& s, const std::string& prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}

std::string DescribePartition(const Partition& p) {
  if (!p.device.empty()) return p.device;
  return p.disk + " partition " + std::to_string(p.number);
}

std::string DevnoText(dev_t d) {
  return std::to_string(major(d)) + ":" + std::to_string(minor(d));
}

// What root= names, matched against the slots; nullopt when it names neither.
std::optional<SlotId> MatchRoot(const SlotPair& slots, std::string root) {
  // dracut's overlay roots ("root=overlay:PARTUUID=...") name the slot underneath.
  if (StartsWith(root, "overlay:")) root.erase(0, 8);
  for (SlotId id : {SlotId::A, SlotId::B}) {
    const Partition& p = slots[id].part;
    if (StartsWith(root, "PARTUUID=")) {
      if (!p.partuuid.empty() && Lower(root.substr(9)) == Lower(p.partuuid)) return id;
    } else if (StartsWith(root, "PARTLABEL=")) {
      if (root.substr(10) == p.label) return id;
    } else if (StartsWith(root, "/dev/")) {
      struct stat st {};
      if (::stat(root.c_str(), &st) == 0 && S_ISBLK(st.st_mode)) {
        if (p.devno != 0 && st.st_rdev == p.devno) return id;
      } else if (!p.device.empty() && root == p.device) {
        return id;
      }
    }
  }
  return std::nullopt;
}

std::optional<SlotId> MatchRootMount(const SlotPair& slots, const std::string& mountinfo,
                                     dev_t& root_devno) {
  root_devno = 0;
  // The last "/" line is the one visible (a later mount covers an earlier one).
  for (const auto& m : ParseMountInfo(mountinfo)) {
    if (m.mount_point == "/") root_devno = m.devno;
  }
  if (root_devno == 0) return std::nullopt;
  for (SlotId id : {SlotId::A, SlotId::B}) {
    if (slots[id].part.devno == root_devno) return id;
  }
  return std::nullopt;
}

}  // namespace

std::optional<SlotId> ParseSlotLetter(const std::string& s) {
  if (s == "A" || s == "a") return SlotId::A;
  if (s == "B" || s == "b") return SlotId::B;
  return std::nullopt;
}

std::string Slot::Describe() const { return DescribePartition(part); }

Expected<SlotPair> SelectSlots(const std::vector<Partition>& parts, const SlotLabels& labels,
                               const std::string& where) {
  SlotPair pair;
  for (SlotId id : {SlotId::A, SlotId::B}) {
    const std::string& label = id == SlotId::A ? labels.a : labels.b;
    const Partition* found = nullptr;
    for (const auto& p : parts) {
      if (p.label != label) continue;
      if (found) {
        return StateError("partition label '" + label + "' found twice on '" + where + "': " +
                          DescribePartition(*found) + " and " + DescribePartition(p));
      }
      found = &p;
    }
    if (!found) return StateError("no partition labelled '" + label + "' on '" + where + "'");
    pair.slots[static_cast<size_t>(id)] = Slot{id, *found};
  }
  // A slot that shares bytes with the other slot or another partition (a bad GPT, a wrong
  // label) would be written through it: noted here, refused before any install.
  for (const Slot& slot : pair.slots) {
    for (const auto& p : parts) {
      if (p.disk != slot.part.disk || (p.number == slot.part.number && p.offset == slot.part.offset))
        continue;
      const uint64_t end = slot.part.offset + slot.part.size, p_end = p.offset + p.size;
      if (slot.part.offset < p_end && p.offset < end && pair.overlap.empty())
        pair.overlap = "slot " + SlotName(slot.id) + " (" + DescribePartition(slot.part) +
                       ", bytes " + std::to_string(slot.part.offset) + "-" + std::to_string(end) +
                       ") overlaps " + DescribePartition(p) + " (bytes " +
                       std::to_string(p.offset) + "-" + std::to_string(p_end) + ")";
    }
  }
  return pair;
}

Expected<SlotPair> FindSlots(const std::string& disk, const SlotLabels& labels) {
  if (!disk.empty()) {
    auto parts = ReadDiskPartitions(disk);
    if (!parts) return parts.error();
    return SelectSlots(*parts, labels, disk);
  }
  auto parts = ScanPartitionsByLabel({labels.a, labels.b});
  if (!parts) return parts.error();
  return SelectSlots(*parts, labels, "any block device");
}

Expected<SlotId> FindBootedSlot(const SlotPair& slots, const std::string& cmdline,
                                const std::string& mountinfo) {
  KernelCmdline args(cmdline);
  if (auto letter = args.Get("osu.slot")) {
    if (auto id = ParseSlotLetter(*letter)) return *id;
    return StateError("kernel command line has osu.slot='" + *letter + "'; expected A or B");
  }
  auto root = args.Get("root");
  if (root && !root->empty()) {
    if (auto id = MatchRoot(slots, *root)) return *id;
  }
  // No usable root= (or one naming a mapper or a file-system UUID): ask what is mounted at /.
  dev_t root_devno = 0;
  if (auto id = MatchRootMount(slots, mountinfo, root_devno)) return *id;

  auto describe = [&](SlotId id) {
    const Partition& p = slots[id].part;
    std::string s = slots[id].Describe();
    if (!p.partuuid.empty()) s += ", PARTUUID " + p.partuuid;
    if (p.devno != 0) s += ", " + DevnoText(p.devno);
    return s;
  };
  std::string looked = root ? "its root=" + *root : "it has no root=";
  looked += root_devno ? ", / is mounted from " + DevnoText(root_devno)
                       : ", no device is mounted at /";
  return StateError("cannot tell the booted slot: kernel command line has no osu.slot= and " +
                    looked + "; that matches neither slot A (" + describe(SlotId::A) +
                    ") nor B (" + describe(SlotId::B) + ")");
}

bool IsSlotMounted(const Slot& slot, const std::string& mountinfo) {
  if (slot.part.devno == 0) return false;
  for (const auto& m : ParseMountInfo(mountinfo)) {
    if (m.devno == slot.part.devno) return true;
  }
  return false;
}

}  // namespace osu

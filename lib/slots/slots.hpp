// A/B slots: found by GPT PARTLABEL, the booted one from the kernel command line or the
// device mounted at /.
#pragma once

#include <sys/types.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/error.hpp"

namespace osu {

enum class SlotId { A = 0, B = 1 };
inline char SlotLetter(SlotId s) { return s == SlotId::A ? 'A' : 'B'; }
inline std::string SlotName(SlotId s) { return std::string(1, SlotLetter(s)); }  // "A", "B"
inline SlotId OtherSlot(SlotId s) { return s == SlotId::A ? SlotId::B : SlotId::A; }
std::optional<SlotId> ParseSlotLetter(const std::string& s);  // "A"/"a"/"B"/"b"

// One GPT partition as the platform sees it.
struct Partition {
  std::string disk;      // the disk or disk image file holding it
  std::string device;    // partition device node ("/dev/loop0p2"), or "" on an image file
  int number = 0;        // 1-based partition number
  uint64_t offset = 0;   // bytes from the start of `disk`
  uint64_t size = 0;     // bytes
  std::string label;     // GPT PARTLABEL
  std::string partuuid;  // GPT partition UUID, lower case
  dev_t devno = 0;       // of `device`, 0 when there is none
};

struct Slot {
  SlotId id = SlotId::A;
  Partition part;
  // What to open to write the slot: the partition node at offset 0, or the disk at offset.
  std::string WritePath() const { return part.device.empty() ? part.disk : part.device; }
  uint64_t WriteOffset() const { return part.device.empty() ? part.offset : 0; }
  std::string Describe() const;  // "/dev/vda3" or "disk.img partition 3"
};

struct SlotLabels {
  std::string a = "p.lxreadonly";
  std::string b = "p.lxrootclone1";
};

struct SlotPair {
  std::array<Slot, 2> slots;
  // Set when a slot shares bytes with the other slot or another partition of its disk: what
  // overlaps what. Nothing may be installed then.
  std::string overlap;
  const Slot& operator[](SlotId id) const { return slots[static_cast<size_t>(id)]; }
};

// Platform: the partitions of one disk or image file (libfdisk).
Expected<std::vector<Partition>> ReadDiskPartitions(const std::string& disk);
// Platform: all partitions of the system's block devices carrying one of `labels` (libblkid).
Expected<std::vector<Partition>> ScanPartitionsByLabel(const std::vector<std::string>& labels);

// Picks A and B by label. No such label: State error "no partition labelled 'p.lxrootclone1'
// on 'disk.img'"; a label found twice: State error naming both.
Expected<SlotPair> SelectSlots(const std::vector<Partition>& parts, const SlotLabels& labels,
                               const std::string& where);

// `disk` non-empty: ReadDiskPartitions(disk); else ScanPartitionsByLabel. Then SelectSlots.
Expected<SlotPair> FindSlots(const std::string& disk, const SlotLabels& labels);

// The kernel command line, parsed the way the kernel does (quotes group spaces).
class KernelCmdline {
 public:
  explicit KernelCmdline(const std::string& text);
  // The last occurrence wins; a bare `key` (no '=') gives "", an absent one nullopt.
  std::optional<std::string> Get(const std::string& key) const;
  const std::vector<std::pair<std::string, std::optional<std::string>>>& args() const {
    return args_;
  }
  // What follows a "--": init's arguments, verbatim; nullopt when there is no "--".
  const std::optional<std::string>& init_args() const { return init_args_; }

 private:
  std::vector<std::pair<std::string, std::optional<std::string>>> args_;
  std::optional<std::string> init_args_;
};

// The booted slot: osu.slot=, else root=PARTUUID= / root=PARTLABEL= / root=/dev/..., else the
// device mounted at / per `mountinfo` (contents of /proc/self/mountinfo). None matches: State
// error saying what was looked at.
Expected<SlotId> FindBootedSlot(const SlotPair& slots, const std::string& cmdline,
                                const std::string& mountinfo);

// Whether the slot's partition is mounted, per `mountinfo` contents (major:minor match).
bool IsSlotMounted(const Slot& slot, const std::string& mountinfo);

}  // namespace osu

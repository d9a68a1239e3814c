// What the kernel says about block devices in /sys/dev/block/MAJ:MIN/ (no C library needed;
// shared by the libfdisk and libblkid code).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>

namespace osu {

// /sys/dev/block/MAJ:MIN/<attribute> as a number ("start", "size", "partition"), if present.
std::optional<uint64_t> ReadBlockAttribute(dev_t devno, const std::string& attribute);

struct PartitionNode {
  std::string device;  // "/dev/loop0p2"
  dev_t devno = 0;
};
// The kernel's node for partition `number` (1-based) of the whole disk `disk`, if the kernel
// knows that partition and its node exists in /dev.
std::optional<PartitionNode> FindPartitionNode(dev_t disk, int number);

}  // namespace osu

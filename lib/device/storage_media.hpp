// What a slot is stored on, for the skip-unchanged default: on flash a read is cheap and every
// write wears the medium, so writing only the blocks that differ pays; on an image file or a
// spinning disk the extra read pass only costs time.
#pragma once

#include <optional>
#include <string>

namespace osu {

enum class StorageMedia { File, Flash, Rotational, Unknown };
std::string StorageMediaName(StorageMedia media);  // "image file", "flash", ...

// Platform (posix): a regular file is File; a block device is classified by ClassifyBlockDevice.
StorageMedia ProbeStorageMedia(const std::string& path, const std::string& sys_root = "/sys");

// Platform (posix): the block device MAJOR:MINOR per <sys_root>/dev/block/MAJOR:MINOR (a
// partition is judged by its whole disk): mmcblk* or queue/rotational 0 is Flash, 1 is
// Rotational, anything unreadable Unknown.
StorageMedia ClassifyBlockDevice(const std::string& sys_root, unsigned major, unsigned minor);

// install.skip_unchanged: true or false force it; unset means on for flash only.
bool SkipUnchangedFor(std::optional<bool> configured, StorageMedia media);

}  // namespace osu

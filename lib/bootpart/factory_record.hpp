// The factory record: what an image builder writes for the slot its build filled (KIWI puts
// the root in slot A), so that os-update knows that slot as it knows one it installed, and
// `--rollback` can return to it. Made on the build host from the built disk, with the same
// SaveRecord() as an install: no second writer of the record format.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "common/error.hpp"
#include "record/record.hpp"
#include "slots/slots.hpp"

namespace osu {

struct FactoryRecordRequest {
  std::string disk;       // the built disk image (or disk device)
  std::string partition;  // PARTLABEL of the slot's partition
  SlotId slot = SlotId::A;
  std::string boot_path;  // a directory holding the boot partition's osu/<S>/ (boot files)
  std::string version;
  std::string compatible;
  std::string cmdline;           // the slot's kernel command line, as a bundle's
  std::optional<uint64_t> size;  // image bytes; default: from the file system in the slot
};

// The length of the file system image at the start of `fd` + `offset`: a squashfs is
// bytes_used rounded up to 4 KiB (mksquashfs pads the file so, and KIWI writes the file), ext2/3/4
// is blocks * block size. nullopt when neither superblock is there.
Expected<std::optional<uint64_t>> FileSystemImageSize(int fd, uint64_t offset,
                                                      const std::string& what);

// Hashes the slot's image, lists the boot files in <boot_path>/osu/<S>/ (every file but the
// record and the bootloader's slot snippet, grub.cfg / boot.env, as an install lists them),
// and saves a verified record there, marked committed (the factory env boots that slot), with
// the slot's chunk list beside it (chunks.idx: the image cut as a bundle's chunk index cuts it,
// in the same pass as the hash), so that the first partial fetch finds the factory slot's
// chunks without reading the whole slot first, as it does for a slot it installed.
// Nothing is written when any step fails.
Expected<Record> WriteFactoryRecord(const FactoryRecordRequest& request);

}  // namespace osu

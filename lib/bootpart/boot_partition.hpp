// Everything os-update keeps on the boot partition, and the only code that changes it:
//   <boot>/osu/<A|B>/record.yml            what is known of the slot (format: record/)
//   <boot>/osu/<A|B>/<boot files>          kernel, initrd, ... as the signed manifest lists them
//   <boot>/osu/<A|B>/grub.cfg | boot.env   the slot's bootloader snippet (root=, command line)
//   <boot>/osu/<A|B>/chunks.idx            the chunk index of the slot's image, when its bundle
//                                          had one (delta/chunk_index.hpp): where its chunks are
//   <boot>/osu/rejected                    versions this device rolled back from, one a line
// The bootloader env on the same partition belongs to bootenv/. Every file goes in through
// InstallFile or the install transaction below: temp, fsync, rename, fsync again, fsync dir.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "common/file_entry.hpp"
#include "io/stream.hpp"
#include "record/record.hpp"
#include "slots/slots.hpp"

namespace osu {

class BootPartition {
 public:
  explicit BootPartition(std::string boot_path) : path_(std::move(boot_path)) {}
  const std::string& path() const { return path_; }
  std::string SlotDirectory(SlotId slot) const;  // <boot>/osu/<A|B>

  // nullopt when the slot has no record. An unreadable or malformed record comes back as an
  // Invalid record whose reason says so: it never counts as verified.
  std::optional<Record> LoadRecord(SlotId slot) const;
  // The slot's chunks.idx as stored (nullopt when there is none). Not trusted: a chunk found
  // through it is hashed again before it is used.
  std::optional<std::string> LoadChunkList(SlotId slot) const;
  Result SaveRecord(const Record& record) const;
  // The factory's chunk list (factory_record.hpp), written in place as SaveRecord writes the
  // record; an install stages its list with the boot files (SlotInstall) instead.
  Result SaveChunkList(SlotId slot, const std::string& list) const;

  std::vector<std::string> RejectedVersions() const;
  bool WasRolledBack(const std::string& version) const;
  Result Reject(const std::string& version) const;   // adds it, if not there yet
  Result Readmit(const std::string& version) const;  // takes it off, if there

  // Whether the slot may be booted: `record` (the slot's) says verified and lists boot
  // files, and each is there with its recorded size and sha256. State error saying what is not.
  Result CheckBootable(SlotId slot, const std::optional<Record>& record) const;

 private:
  std::string path_;
};

// The slot's bootloader snippet: file name in the slot directory and its text.
struct BootSnippet {
  std::string name, text;
};

// One install into a slot's directory, shared by every way a slot is filled:
//   Begin: record "installing" (the slot is not bootable from here on)
//   StageBootFile: each boot file written beside its final name, created exclusively
//   Finish: after the image verified, the snippet and the staged files moved into place,
//           files of an older install removed, the version readmitted, record "verified"
//   Fail: staged files removed, record "invalid" with the reason; returns the error
class SlotInstall {
 public:
  static Expected<SlotInstall> Begin(const BootPartition& boot, Record installing);

  Result StageBootFile(const FileEntry& entry, Reader& data);
  // The image's chunk index (the bundle's, checked against its manifest), kept as chunks.idx
  // so that the next partial fetch finds this slot's chunks without reading the whole slot.
  Result StageChunkList(const std::string& index);
  // A raw image brings no boot files: an older install's must go before the slot is written.
  Result RemoveBootFiles();
  // `image_sha256`/`image_size`: what was verified on the slot.
  Result Finish(const std::optional<BootSnippet>& snippet, const std::string& image_sha256,
                uint64_t image_size);
  Error Fail(const Error& error);

  const Record& record() const { return record_; }

 private:
  SlotInstall(const BootPartition& boot, Record record);
  std::string StagedPath(const std::string& name) const;
  Result Stage(const std::string& name, Reader& data, const char* fault);

  BootPartition boot_;
  Record record_;
  std::string dir_;
  std::vector<FileEntry> staged_;
  bool chunk_list_staged_ = false;
};

}  // namespace osu

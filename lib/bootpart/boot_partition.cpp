#include "bootpart/boot_partition.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <set>
#include <sstream>

#include "bundle/content_rules.hpp"
#include "common/fault.hpp"
#include "common/fd.hpp"
#include "crypto/sha256.hpp"

namespace osu {
namespace {

constexpr const char* kRecordName = "record.yml";
constexpr const char* kChunkListName = "chunks.idx";

Record InvalidRecord(SlotId slot, const std::string& reason) {
  Record bad;
  bad.slot = slot;
  bad.state = SlotState::Invalid;
  bad.reason = reason;
  return bad;
}

std::vector<std::string> ListDirectory(const std::string& dir) {
  std::vector<std::string> names;
  if (DIR* d = ::opendir(dir.c_str())) {
    while (dirent* e = ::readdir(d)) {
      std::string name = e->d_name;
      if (name != "." && name != "..") names.push_back(name);
    }
    ::closedir(d);
  }
  return names;
}

Result Unlink(const std::string& path) {
  if (::unlink(path.c_str()) != 0 && errno != ENOENT)
    return ErrnoError("Failed to remove '" + path + "'");
  return {};
}

}  // namespace

std::string BootPartition::SlotDirectory(SlotId slot) const {
  return path_ + "/osu/" + SlotLetter(slot);
}

std::optional<std::string> BootPartition::LoadChunkList(SlotId slot) const {
  const std::string path = SlotDirectory(slot) + "/" + kChunkListName;
  struct stat st {};
  // A regular file (never through a symlink) of an index's size: 64 MiB is a 40 GiB image.
  if (::lstat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > (64 << 20))
    return std::nullopt;
  auto bytes = ReadFile(path);
  if (!bytes) return std::nullopt;
  return std::move(bytes).value();
}

std::optional<Record> BootPartition::LoadRecord(SlotId slot) const {
  const std::string path = SlotDirectory(slot) + "/" + kRecordName;
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0 && errno == ENOENT) return std::nullopt;
  auto text = ReadFile(path);
  if (!text) return InvalidRecord(slot, text.error().message());
  auto record = ParseRecord(*text);
  if (!record) return InvalidRecord(slot, "'" + path + "': " + record.error().message());
  if (record->slot != slot) return InvalidRecord(slot, "'" + path + "': record is for the other slot");
  return *record;
}

Result BootPartition::SaveRecord(const Record& record) const {
  const std::string dir = SlotDirectory(record.slot);
  if (auto r = MakeDirectories(dir); !r) return r;
  return InstallFile(dir + "/" + kRecordName, SerializeRecord(record));
}

Result BootPartition::SaveChunkList(SlotId slot, const std::string& list) const {
  const std::string dir = SlotDirectory(slot);
  if (auto r = MakeDirectories(dir); !r) return r;
  return InstallFile(dir + "/" + kChunkListName, list);
}

std::vector<std::string> BootPartition::RejectedVersions() const {
  std::vector<std::string> out;
  auto text = ReadFile(path_ + "/osu/rejected");
  if (!text) return out;
  std::istringstream in(*text);
  std::string line;
  while (std::getline(in, line))
    if (!line.empty()) out.push_back(line);
  return out;
}

bool BootPartition::WasRolledBack(const std::string& version) const {
  const auto rejected = RejectedVersions();
  return std::find(rejected.begin(), rejected.end(), version) != rejected.end();
}

namespace {
Result SaveRejected(const std::string& boot_path, const std::vector<std::string>& versions) {
  std::string text;
  for (const auto& version : versions) text += version + "\n";
  if (auto r = MakeDirectories(boot_path + "/osu"); !r) return r;
  return InstallFile(boot_path + "/osu/rejected", text);
}
}  // namespace

Result BootPartition::Reject(const std::string& version) const {
  auto rejected = RejectedVersions();
  if (version.empty() || std::find(rejected.begin(), rejected.end(), version) != rejected.end())
    return {};
  rejected.push_back(version);
  FaultPoint("rejected versions: add");
  return SaveRejected(path_, rejected);
}

Result BootPartition::Readmit(const std::string& version) const {
  auto rejected = RejectedVersions();
  if (std::erase(rejected, version) == 0) return {};
  FaultPoint("rejected versions: remove");
  return SaveRejected(path_, rejected);
}

Result BootPartition::CheckBootable(SlotId slot, const std::optional<Record>& record) const {
  if (!record)
    return StateError("slot " + SlotName(slot) +
                      " has no record: it was never installed by os-update");
  if (record->state != SlotState::Verified)
    return StateError("slot " + SlotName(slot) + " is not verified (state " +
                      SlotStateName(record->state) +
                      (record->reason.empty() ? "" : ": " + record->reason) + ")");
  // A raw image (ssh://, unsigned) brings no kernel: the bootloader would find nothing.
  if (record->boot_files.empty())
    return StateError("slot " + SlotName(slot) + " has no boot files" +
                      (record->source.empty() ? "" : " (installed from " + record->source + ")") +
                      ": the bootloader has nothing to boot there");
  const std::string dir = SlotDirectory(slot);
  for (const auto& f : record->boot_files) {
    auto data = ReadFile(dir + "/" + f.name, ErrorKind::State);
    if (!data) return data.error().Context("slot " + SlotName(slot) + " is incomplete");
    if (data->size() != f.size || Sha256Hex(*data) != f.sha256)
      return StateError("slot " + SlotName(slot) + " is incomplete: boot file '" + f.name +
                        "' no longer matches its record");
  }
  return {};
}

SlotInstall::SlotInstall(const BootPartition& boot, Record record)
    : boot_(boot), record_(std::move(record)), dir_(boot.SlotDirectory(record_.slot)) {}

Expected<SlotInstall> SlotInstall::Begin(const BootPartition& boot, Record installing) {
  installing.state = SlotState::Installing;
  installing.committed_at.clear();
  installing.updated_at = UtcNow();
  SlotInstall install(boot, std::move(installing));
  if (auto r = boot.SaveRecord(install.record_); !r) return r.error();
  return install;
}

// Staged beside the final name under the prefix and suffix the content rules reserve: the name
// is one path component short enough to stage, and the staged name is nothing os-update owns.
std::string SlotInstall::StagedPath(const std::string& name) const {
  return dir_ + "/" + std::string(kStagedPrefix) + name + std::string(kStagedSuffix);
}

// Creates the staged file for `name` (exclusively, never through a symlink: a leftover or a
// planted link is removed first), writes `data` to it and fsyncs it. `fault`: a crash point
// between the write and the fsync, or nullptr.
Result SlotInstall::Stage(const std::string& name, Reader& data, const char* fault) {
  const std::string tmp = StagedPath(name);
  auto fd = CreateStagedFile(tmp);
  if (!fd) return fd.error();
  std::vector<uint8_t> buf(1 << 20);
  for (;;) {
    auto n = data.Read(buf);
    if (!n) return n.error();
    if (*n == 0) break;
    if (auto r = WriteAll(fd->get(), std::span(buf.data(), *n), "'" + tmp + "'"); !r) return r;
  }
  if (fault) FaultPoint(fault);
  if (::fsync(fd->get()) != 0) return ErrnoError("Failed to fsync '" + tmp + "'");
  return {};
}

Result SlotInstall::StageChunkList(const std::string& index) {
  StringReader reader(index);
  Result r = Stage(kChunkListName, reader, nullptr);
  // Only a whole list goes into place; without one, the next partial fetch reads the slot.
  if (!r) ::unlink(StagedPath(kChunkListName).c_str());
  chunk_list_staged_ = r.ok();
  return r;
}

Result SlotInstall::StageBootFile(const FileEntry& entry, Reader& data) {
  staged_.push_back(entry);  // removed again by Abandon, whatever happens below
  const std::string fault = "apply: boot file " + entry.name + " staged, before fsync";
  return Stage(entry.name, data, fault.c_str());
}

Result SlotInstall::RemoveBootFiles() {
  for (const auto& name : ListDirectory(dir_))
    if (name != kRecordName)
      if (auto r = Unlink(dir_ + "/" + name); !r) return r;
  return SyncDirectory(dir_);
}

Result SlotInstall::Finish(const std::optional<BootSnippet>& snippet,
                           const std::string& image_sha256, uint64_t image_size) {
  std::set<std::string> keep{kRecordName};
  if (snippet) {
    keep.insert(snippet->name);
    if (auto r = InstallFile(dir_ + "/" + snippet->name, snippet->text); !r) return r;
  }
  for (const auto& f : staged_) {
    keep.insert(f.name);
    const std::string staged = StagedPath(f.name), final_path = dir_ + "/" + f.name;
    FaultPoint("apply: rename boot file " + f.name);
    // Renamed and fsynced again (vfat), as InstallFile does; the directory once, below.
    if (auto r = RenameIntoPlace(staged, final_path); !r) return r;
  }
  if (chunk_list_staged_) {
    keep.insert(kChunkListName);
    if (auto r = RenameIntoPlace(StagedPath(kChunkListName), dir_ + "/" + kChunkListName); !r) return r;
  }
  for (const auto& name : ListDirectory(dir_))
    if (!keep.count(name))
      if (auto r = Unlink(dir_ + "/" + name); !r) return r;
  FaultPoint("apply: boot files renamed, before directory fsync");
  if (auto r = SyncDirectory(dir_); !r) return r;
  std::vector<FileEntry> boot_files = std::move(staged_);
  staged_.clear();
  // Only --allow-downgrade gets a rolled-back version this far: it may be committed again.
  if (auto r = boot_.Readmit(record_.version); !r) return r;
  Record verified = record_;
  verified.state = SlotState::Verified;
  verified.sha256 = image_sha256;
  verified.size = image_size;
  verified.boot_files = std::move(boot_files);
  verified.updated_at = UtcNow();
  if (auto r = boot_.SaveRecord(verified); !r) return r;
  record_ = std::move(verified);
  return {};
}

Error SlotInstall::Fail(const Error& error) {
  for (const auto& f : staged_) ::unlink(StagedPath(f.name).c_str());
  staged_.clear();
  if (chunk_list_staged_) ::unlink(StagedPath(kChunkListName).c_str());
  chunk_list_staged_ = false;
  Record invalid = record_;
  invalid.state = SlotState::Invalid;
  invalid.reason = error.message();
  invalid.updated_at = UtcNow();
  (void)boot_.SaveRecord(invalid);  // best effort: "installing" is not bootable either
  return error;
}

}  // namespace osu

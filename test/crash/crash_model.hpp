// Crash states of a recorded run, in the manner of ALICE (Pillai et al., OSDI 2014) and
// CrashMonkey (Mohan et al., OSDI 2018): the file-system calls a program made (recorded by
// fsrecord.c) are replayed, and at every crash point the states the disk may hold are built
// under one of two persistence models.
//
// Posix: a file's data is durable after an fsync/fdatasync of that file; names (create,
//   rename, unlink, mkdir) are durable after an fsync of their directory; a rename is atomic;
//   pending name changes reach the disk in the order they were made (as a journal commits
//   them), file data independently of them.
// Vfat (Linux fs/fat, vfat_rename and fat_write_inode): a directory entry holds the file's
//   first cluster and size. Creating a file, or renaming onto a new name, adds an entry with
//   cluster 0 and size 0; renaming onto an existing name reuses that entry, which keeps the
//   replaced file's clusters and size. The file's own cluster and size reach its entry only
//   when its inode is written back: an fsync/fdatasync of that file (or writeback at any
//   time, with or without its data). An fsync of the directory writes the entries, not the
//   moved file's inode. No journal: every pending entry change, inode write and file's data
//   reaches the disk independently of the others.
// Granularity: a file's pending data persists all or nothing, as do the slot's pending writes
// (each fdatasync makes all of them durable). Where a crash point has more than kAllSubsets
// pending units, the states are: nothing, everything, each unit alone, each unit left out.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace osu::crash {

struct Op {
  enum class Kind { Open, Write, Truncate, Fsync, Fdatasync, Close, Rename, Unlink, Mkdir, Rmdir, Unrecorded };
  Kind kind = Kind::Open;
  int fd = -1;
  std::string path, to;  // absolute
  uint64_t offset = 0, length = 0;
  std::string bytes;  // written bytes (boot directory files only)
  std::string Describe() const;
};

// Parses fsrecord's log; a malformed line is an error (std::runtime_error).
std::vector<Op> ParseTrace(const std::string& text);

enum class Model { Posix, Vfat };
const char* ModelName(Model m);

struct Extent {
  uint64_t offset = 0, length = 0;
};

// What the disk may hold after a crash.
struct DiskState {
  std::map<std::string, std::string> files;  // path (absolute) -> content
  std::set<std::string> dirs;                // absolute
  std::vector<Extent> slot_writes;           // writes to the disk image that reached it
  std::string Key() const;                   // equal states, equal keys
};

// Files under the watched boot directory before the run.
struct Initial {
  std::map<std::string, std::string> files;
  std::set<std::string> dirs;
  std::string disk_image;  // its writes are tracked as extents
};
Initial ReadTree(const std::string& root, const std::string& disk_image);

struct CrashPoint {
  size_t ops_done = 0;  // the crash comes after this many ops
  std::vector<DiskState> states;
};

// Every crash point of `ops` (0..ops.size()) with its possible states (duplicates removed
// within a point).
std::vector<CrashPoint> CrashStates(const Initial& initial, const std::vector<Op>& ops, Model m);

inline constexpr size_t kAllSubsets = 8;

}  // namespace osu::crash

namespace osu::crash {

// Runs `command` (a shell command line) under the recorder, watching the files under
// `bytes_root` (with their bytes) and `disk_image` (offsets and lengths); returns its ops.
// Under ASan the recorder is loaded in front of ASan's runtime, which ASan allows only with
// verify_asan_link_order=0 (the recorder's calls go on through ASan's interceptors).
struct Recorded {
  int exit_code = -1;
  std::string output;
  std::vector<Op> ops;
};
Recorded Record(const std::string& command, const std::string& bytes_root,
                const std::string& disk_image, const std::string& log_path);

// The ops without the fsync of a file right after its rename from a name ending in
// `staged_suffix` ("" for every rename): what the boot-file swap did before the vfat fix,
// for showing that the checks catch it.
std::vector<Op> WithoutFsyncAfterRename(const std::vector<Op>& ops,
                                        const std::string& staged_suffix = "");

}  // namespace osu::crash

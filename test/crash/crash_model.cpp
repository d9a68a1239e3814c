#include "crash/crash_model.hpp"

#include <fcntl.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <stdexcept>

namespace osu::crash {
namespace {

std::vector<std::string> SplitTabs(const std::string& line) {
  std::vector<std::string> out;
  size_t start = 0;
  for (;;) {
    size_t tab = line.find('\t', start);
    out.push_back(line.substr(start, tab == std::string::npos ? std::string::npos : tab - start));
    if (tab == std::string::npos) return out;
    start = tab + 1;
  }
}

std::string Unhex(const std::string& hex) {
  auto nibble = [&](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    throw std::runtime_error("trace: bad hex digit");
  };
  if (hex.size() % 2) throw std::runtime_error("trace: odd hex length");
  std::string out(hex.size() / 2, '\0');
  for (size_t i = 0; i < out.size(); ++i)
    out[i] = static_cast<char>(nibble(hex[2 * i]) << 4 | nibble(hex[2 * i + 1]));
  return out;
}

std::string Parent(const std::string& path) { return path.substr(0, path.find_last_of('/')); }

// Subsets of n independent units to try: all of them when there are few, else the extremes
// and each unit alone and each left out.
std::vector<std::vector<bool>> Subsets(size_t n) {
  std::vector<std::vector<bool>> out;
  if (n <= kAllSubsets) {
    for (uint64_t mask = 0; mask < (uint64_t{1} << n); ++mask) {
      std::vector<bool> s(n);
      for (size_t i = 0; i < n; ++i) s[i] = (mask >> i) & 1;
      out.push_back(s);
    }
    return out;
  }
  out.push_back(std::vector<bool>(n, false));
  out.push_back(std::vector<bool>(n, true));
  for (size_t i = 0; i < n; ++i) {
    std::vector<bool> one(n, false), all_but(n, true);
    one[i] = true;
    all_but[i] = false;
    out.push_back(one);
    out.push_back(all_but);
  }
  return out;
}

// A change of names not yet durable.
struct NameOp {
  enum Kind { Link, Remove, Rename, Mkdir, Rmdir } kind;
  std::string path, to;
  int ino = -1;
  bool Touches(const std::string& dir) const {
    return Parent(path) == dir || (kind == Rename && Parent(to) == dir);
  }
};

class Replay {
 public:
  Replay(const Initial& initial, Model model) : model_(model), disk_(initial.disk_image) {
    dirs_ = ddirs_ = initial.dirs;
    root_ = initial.dirs.empty() ? "" : *initial.dirs.begin();
    for (const auto& d : initial.dirs)
      if (d.size() < root_.size()) root_ = d;
    for (const auto& [path, content] : initial.files) {
      const int ino = next_ino_++;
      names_[path] = dnames_[path] = ino;
      data_[ino] = ddata_[ino] = content;
      dentries_[path] = content;
    }
  }

  void Apply(const Op& op) {
    switch (op.kind) {
      case Op::Kind::Open: return Open(op);
      case Op::Kind::Write: return Write(op);
      case Op::Kind::Truncate: {
        const int ino = FileOf(op);
        if (ino == kDisk) return;  // not done to the disk image
        data_[ino].resize(op.length);
        dirty_data_.insert(ino);
        dirty_inode_.insert(ino);
        return;
      }
      case Op::Kind::Fsync:
      case Op::Kind::Fdatasync: return Sync(op);
      case Op::Kind::Close:
        fds_.erase(op.fd);
        dir_fds_.erase(op.fd);
        return;
      case Op::Kind::Rename: return Rename(op);
      case Op::Kind::Unlink: {
        auto it = names_.find(op.path);
        if (it == names_.end()) throw std::runtime_error("trace: unlink of unknown " + op.path);
        pending_.push_back({NameOp::Remove, op.path, "", it->second});
        names_.erase(it);
        return;
      }
      case Op::Kind::Mkdir:
        dirs_.insert(op.path);
        pending_.push_back({NameOp::Mkdir, op.path, "", -1});
        return;
      case Op::Kind::Rmdir:
        dirs_.erase(op.path);
        pending_.push_back({NameOp::Rmdir, op.path, "", -1});
        return;
      case Op::Kind::Unrecorded:
        throw std::runtime_error("trace: a call the recorder cannot follow: " + op.path);
    }
  }

  std::vector<DiskState> States() const {
    std::vector<DiskState> out;
    std::set<std::string> seen;
    auto add = [&](DiskState s) {
      if (seen.insert(s.Key()).second) out.push_back(std::move(s));
    };
    const std::vector<int> dirty(dirty_data_.begin(), dirty_data_.end());
    if (model_ == Model::Posix) {
      // Name changes as a prefix (journal order); file data and the slot's writes each
      // independently.
      const size_t n = dirty.size() + (slot_pending_.empty() ? 0 : 1);
      for (size_t k = 0; k <= pending_.size(); ++k) {
        for (const auto& pick : Subsets(n)) {
          auto names = dnames_;
          auto dirs = ddirs_;
          for (size_t i = 0; i < k; ++i) ApplyPosix(pending_[i], names, dirs);
          DiskState s;
          s.dirs = dirs;
          for (const auto& [path, ino] : names) {
            if (!Visible(path, dirs)) continue;
            auto pos = std::find(dirty.begin(), dirty.end(), ino);
            const bool persisted = pos != dirty.end() && pick[static_cast<size_t>(pos - dirty.begin())];
            s.files[path] = persisted ? data_.at(ino) : Durable(ino);
          }
          s.slot_writes = SlotWrites(!slot_pending_.empty() && pick[n - 1]);
          add(std::move(s));
        }
      }
      return out;
    }
    // vfat: every pending entry change, file's data and inode write on its own.
    const std::vector<int> inodes(dirty_inode_.begin(), dirty_inode_.end());
    const size_t n = pending_.size() + dirty.size() + inodes.size() + (slot_pending_.empty() ? 0 : 1);
    for (const auto& pick : Subsets(n)) {
      auto entries = dentries_;
      auto dirs = ddirs_;
      auto ddata = ddata_;
      size_t u = 0;
      for (const auto& op : pending_)
        if (pick[u++]) ApplyVfat(op, entries, dirs);
      std::set<int> data_written;
      for (int ino : dirty)
        if (pick[u++]) data_written.insert(ino);
      for (int ino : inodes)
        if (pick[u++]) WriteInode(ino, data_written.count(ino) || !dirty_data_.count(ino), entries);
      DiskState s;
      s.dirs = dirs;
      for (const auto& [path, content] : entries)
        if (Visible(path, dirs)) s.files[path] = content;
      s.slot_writes = SlotWrites(!slot_pending_.empty() && pick[u]);
      add(std::move(s));
    }
    return out;
  }

 private:
  static constexpr int kDisk = -2;

  int FileOf(const Op& op) const {
    auto it = fds_.find(op.fd);
    if (it == fds_.end())
      throw std::runtime_error("trace: " + op.Describe() + " on an fd not opened in the trace");
    return it->second;
  }

  void Open(const Op& op) {
    if (op.path == disk_) {
      fds_[op.fd] = kDisk;
      return;
    }
    if (dirs_.count(op.path)) {
      dir_fds_[op.fd] = op.path;
      return;
    }
    auto it = names_.find(op.path);
    int ino;
    if (it == names_.end()) {
      ino = next_ino_++;
      names_[op.path] = ino;
      data_[ino] = "";
      pending_.push_back({NameOp::Link, op.path, "", ino});
    } else {
      ino = it->second;
      if (op.offset & O_TRUNC && !data_[ino].empty()) {
        data_[ino].clear();
        dirty_data_.insert(ino);
        dirty_inode_.insert(ino);
      }
    }
    fds_[op.fd] = ino;
  }

  void Write(const Op& op) {
    const int ino = FileOf(op);
    if (ino == kDisk) {
      slot_pending_.push_back({op.offset, op.length});
      return;
    }
    std::string& d = data_[ino];
    if (d.size() < op.offset + op.length) d.resize(op.offset + op.length);
    d.replace(op.offset, op.length, op.bytes);
    dirty_data_.insert(ino);
    dirty_inode_.insert(ino);
  }

  void Sync(const Op& op) {
    if (auto dir = dir_fds_.find(op.fd); dir != dir_fds_.end()) {
      // The directory's own entries, in order; on vfat not the inodes of files moved into it.
      std::vector<NameOp> rest;
      for (const auto& p : pending_) {
        if (!p.Touches(dir->second)) {
          rest.push_back(p);
        } else if (model_ == Model::Posix) {
          ApplyPosix(p, dnames_, ddirs_);
        } else {
          ApplyVfat(p, dentries_, ddirs_);
        }
      }
      pending_ = rest;
      return;
    }
    const int ino = FileOf(op);
    if (ino == kDisk) {
      slot_durable_.insert(slot_durable_.end(), slot_pending_.begin(), slot_pending_.end());
      slot_pending_.clear();
      return;
    }
    ddata_[ino] = data_[ino];
    dirty_data_.erase(ino);
    if (model_ == Model::Vfat) {
      // fat_write_inode writes the entry where the file now is: the sector that holds it, so
      // a pending creation of that entry lands too.
      const std::string path = PathOf(ino);
      std::vector<NameOp> rest;
      for (const auto& p : pending_)
        if (!(p.kind == NameOp::Link && p.path == path)) rest.push_back(p);
      pending_ = rest;
      WriteInode(ino, true, dentries_);
      dirty_inode_.erase(ino);
    }
  }

  void Rename(const Op& op) {
    if (dirs_.count(op.path)) throw std::runtime_error("trace: rename of a directory: " + op.path);
    auto from = names_.find(op.path);
    if (from == names_.end()) throw std::runtime_error("trace: rename of unknown " + op.path);
    const int ino = from->second;
    const bool onto_existing = names_.count(op.to) > 0;
    names_.erase(from);
    names_[op.to] = ino;
    if (model_ == Model::Posix) {
      pending_.push_back({NameOp::Rename, op.path, op.to, ino});
      return;
    }
    // vfat_rename: a new name gets a fresh entry (cluster 0, size 0); an existing name keeps
    // its entry (and with it the replaced file's cluster and size). The inode is only marked
    // dirty.
    if (!onto_existing) pending_.push_back({NameOp::Link, op.to, "", ino});
    pending_.push_back({NameOp::Remove, op.path, "", ino});
    dirty_inode_.insert(ino);
  }

  std::string PathOf(int ino) const {
    for (const auto& [path, i] : names_)
      if (i == ino) return path;
    return "";
  }

  std::string Durable(int ino) const {
    auto it = ddata_.find(ino);
    return it == ddata_.end() ? std::string() : it->second;
  }

  // The inode's cluster and size into its entry: its data if that reached the disk, else
  // whatever the newly allocated clusters held.
  void WriteInode(int ino, bool data_durable, std::map<std::string, std::string>& entries) const {
    const std::string path = PathOf(ino);
    if (path.empty()) return;  // unlinked: no entry to write
    const std::string& now = data_.at(ino);
    entries[path] = data_durable ? now : std::string(now.size(), '\xa5');
  }

  static void ApplyPosix(const NameOp& p, std::map<std::string, int>& names,
                         std::set<std::string>& dirs) {
    switch (p.kind) {
      case NameOp::Link: names[p.path] = p.ino; break;
      case NameOp::Remove: names.erase(p.path); break;
      case NameOp::Rename:
        names.erase(p.path);
        names[p.to] = p.ino;
        break;
      case NameOp::Mkdir: dirs.insert(p.path); break;
      case NameOp::Rmdir: dirs.erase(p.path); break;
    }
  }

  static void ApplyVfat(const NameOp& p, std::map<std::string, std::string>& entries,
                        std::set<std::string>& dirs) {
    switch (p.kind) {
      case NameOp::Link: entries[p.path] = ""; break;
      case NameOp::Remove: entries.erase(p.path); break;
      case NameOp::Rename: break;  // not produced under vfat
      case NameOp::Mkdir: dirs.insert(p.path); break;
      case NameOp::Rmdir: dirs.erase(p.path); break;
    }
  }

  bool Visible(const std::string& path, const std::set<std::string>& dirs) const {
    for (std::string d = Parent(path); d.size() >= root_.size(); d = Parent(d)) {
      if (!dirs.count(d)) return false;
      if (d == root_) return true;
    }
    return false;
  }

  std::vector<Extent> SlotWrites(bool with_pending) const {
    auto out = slot_durable_;
    if (with_pending) out.insert(out.end(), slot_pending_.begin(), slot_pending_.end());
    return out;
  }

  Model model_;
  std::string disk_, root_;
  int next_ino_ = 1;
  // What the program sees.
  std::map<std::string, int> names_;
  std::set<std::string> dirs_;
  std::map<int, std::string> data_;
  std::map<int, int> fds_;
  std::map<int, std::string> dir_fds_;
  // What is on the disk for sure.
  std::map<int, std::string> ddata_;
  std::map<std::string, int> dnames_;                // Posix
  std::map<std::string, std::string> dentries_;      // vfat: entry -> what it shows
  std::set<std::string> ddirs_;
  // Not yet durable.
  std::vector<NameOp> pending_;
  std::set<int> dirty_data_, dirty_inode_;
  std::vector<Extent> slot_durable_, slot_pending_;
};

}  // namespace

std::string Op::Describe() const {
  static const char* names[] = {"open", "write", "truncate", "fsync", "fdatasync", "close",
                                "rename", "unlink", "mkdir", "rmdir", "unrecorded"};
  std::string s = names[static_cast<int>(kind)];
  if (fd >= 0) s += " fd " + std::to_string(fd);
  if (!path.empty()) s += " " + path;
  if (!to.empty()) s += " -> " + to;
  if (kind == Kind::Write) s += " [" + std::to_string(offset) + ", +" + std::to_string(length) + ")";
  return s;
}

std::vector<Op> ParseTrace(const std::string& text) {
  std::vector<Op> ops;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    auto f = SplitTabs(line);
    Op op;
    const std::string& k = f[0];
    auto need = [&](size_t n) {
      if (f.size() < n) throw std::runtime_error("trace: short line: " + line.substr(0, 200));
    };
    if (k == "open") {
      need(4);
      op.kind = Op::Kind::Open;
      op.fd = std::stoi(f[1]);
      op.offset = std::stoul(f[2], nullptr, 16);  // the open flags
      op.path = f[3];
    } else if (k == "write") {
      need(4);
      op.kind = Op::Kind::Write;
      op.fd = std::stoi(f[1]);
      op.offset = std::stoull(f[2]);
      op.length = std::stoull(f[3]);
      if (f.size() > 4) {
        op.bytes = Unhex(f[4]);
        if (op.bytes.size() != op.length) throw std::runtime_error("trace: write length");
      }
    } else if (k == "truncate") {
      need(3);
      op.kind = Op::Kind::Truncate;
      op.fd = std::stoi(f[1]);
      op.length = std::stoull(f[2]);
    } else if (k == "fsync" || k == "fdatasync" || k == "close") {
      need(2);
      op.kind = k == "fsync" ? Op::Kind::Fsync : k == "close" ? Op::Kind::Close : Op::Kind::Fdatasync;
      op.fd = std::stoi(f[1]);
    } else if (k == "rename") {
      need(3);
      op.kind = Op::Kind::Rename;
      op.path = f[1];
      op.to = f[2];
    } else if (k == "unlink" || k == "mkdir" || k == "rmdir" || k == "unrecorded") {
      need(2);
      op.kind = k == "unlink"  ? Op::Kind::Unlink
                : k == "mkdir" ? Op::Kind::Mkdir
                : k == "rmdir" ? Op::Kind::Rmdir
                               : Op::Kind::Unrecorded;
      op.path = f[1];
    } else {
      throw std::runtime_error("trace: unknown line: " + line.substr(0, 200));
    }
    ops.push_back(std::move(op));
  }
  return ops;
}

const char* ModelName(Model m) { return m == Model::Posix ? "POSIX" : "vfat"; }

std::string DiskState::Key() const {
  std::string key;
  for (const auto& [path, content] : files)
    key += path + '\0' + std::to_string(std::hash<std::string>{}(content)) + ':' +
           std::to_string(content.size()) + '\0';
  key += '|';
  for (const auto& d : dirs) key += d + '\0';
  key += '|';
  for (const auto& e : slot_writes) key += std::to_string(e.offset) + '+' + std::to_string(e.length) + ',';
  return key;
}

Initial ReadTree(const std::string& root, const std::string& disk_image) {
  namespace fs = std::filesystem;
  Initial init;
  init.disk_image = disk_image;
  init.dirs.insert(root);
  for (const auto& e : fs::recursive_directory_iterator(root)) {
    if (e.is_directory()) {
      init.dirs.insert(e.path().string());
    } else {
      std::ifstream in(e.path(), std::ios::binary);
      std::ostringstream s;
      s << in.rdbuf();
      init.files[e.path().string()] = s.str();
    }
  }
  return init;
}

std::vector<CrashPoint> CrashStates(const Initial& initial, const std::vector<Op>& ops, Model m) {
  Replay replay(initial, m);
  std::vector<CrashPoint> points;
  points.push_back({0, replay.States()});
  for (size_t i = 0; i < ops.size(); ++i) {
    replay.Apply(ops[i]);
    points.push_back({i + 1, replay.States()});
  }
  return points;
}

}  // namespace osu::crash

#include "support/support.hpp"

namespace osu::crash {

Recorded Record(const std::string& command, const std::string& bytes_root,
                const std::string& disk_image, const std::string& log_path) {
  std::filesystem::remove(log_path);
  const char* asan = std::getenv("ASAN_OPTIONS");
  const std::string env = "ASAN_OPTIONS='" + std::string(asan ? asan : "") +
                          (asan && *asan ? ":" : "") + "verify_asan_link_order=0' " +
                          "OSU_FSRECORD_LOG='" + log_path + "' OSU_FSRECORD_BYTES='" +
                          bytes_root + "' OSU_FSRECORD_EXTENT='" + disk_image +
                          "' LD_PRELOAD='" OSU_FSRECORD "' ";
  auto run = osu::test::Run(env + command);
  Recorded r;
  r.exit_code = run.exit_code;
  r.output = run.output;
  r.ops = ParseTrace(std::filesystem::exists(log_path) ? osu::test::ReadFile(log_path) : "");
  return r;
}

std::vector<Op> WithoutFsyncAfterRename(const std::vector<Op>& ops,
                                        const std::string& staged_suffix) {
  std::vector<Op> out;
  std::string renamed_to;  // the last rename's target, until its fsync
  std::map<int, std::string> open_paths;
  for (const auto& op : ops) {
    if (op.kind == Op::Kind::Open) open_paths[op.fd] = op.path;
    if (op.kind == Op::Kind::Rename)
      renamed_to = op.path.size() >= staged_suffix.size() &&
                           op.path.compare(op.path.size() - staged_suffix.size(),
                                           staged_suffix.size(), staged_suffix) == 0
                       ? op.to
                       : "";
    if ((op.kind == Op::Kind::Fsync || op.kind == Op::Kind::Fdatasync) && !renamed_to.empty() &&
        open_paths[op.fd] == renamed_to) {
      renamed_to.clear();
      continue;
    }
    out.push_back(op);
  }
  return out;
}

}  // namespace osu::crash

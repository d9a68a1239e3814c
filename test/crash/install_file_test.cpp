// The atomic-install helpers (lib/common/fd.hpp) against the vfat crash model: whatever a
// power cut leaves, a name holds its old or its new content, never an empty or freed file,
// and once the helper returned, the new one. The calls are those of a real run, recorded by
// the LD_PRELOAD recorder (crash/fsrecord.c) around test/crash/fs_probe.cpp.
#include <catch2/catch.hpp>

#include <filesystem>

#include "crash/crash_model.hpp"
#include "support/support.hpp"

using namespace osu::crash;
using osu::test::TempDir;
using osu::test::WriteFile;

namespace {

struct Probe {
  TempDir dir;
  std::string boot = dir / "boot";
  Initial initial;
  std::vector<Op> ops;

  // `name` replaced (or created, when `old` is empty) by `how`: "install" or "stage".
  Probe(const std::string& how, const std::string& name, const std::string& old) {
    std::filesystem::create_directories(boot);
    if (!old.empty()) WriteFile(boot + "/" + name, old);
    initial = ReadTree(boot, "");
    auto rec = Record(std::string(OSU_FS_PROBE) + " " + how + " " + boot + "/" + name + " new",
                      boot, "", dir / "trace");
    INFO(rec.output);
    REQUIRE(rec.exit_code == 0);
    ops = rec.ops;
  }
};

// What each crash point may leave at `path`: "absent", or its content.
std::vector<std::set<std::string>> Outcomes(const Initial& initial, const std::vector<Op>& ops,
                                            Model m, const std::string& path) {
  std::vector<std::set<std::string>> out;
  for (const auto& point : CrashStates(initial, ops, m)) {
    std::set<std::string> seen;
    for (const auto& s : point.states) {
      auto it = s.files.find(path);
      seen.insert(it == s.files.end() ? "absent" : it->second);
    }
    out.push_back(seen);
  }
  return out;
}

}  // namespace

TEST_CASE("a file replaced through the atomic-install helpers holds its old or new content at every crash point, the new once they return",
          "[crash][fd]") {
  for (const std::string how : {"install", "stage"}) {
    for (const bool existed : {true, false}) {
      INFO(how << (existed ? ", over an existing file" : ", a new name"));
      Probe p(how, "vmlinuz", existed ? "old" : "");
      const std::string path = p.boot + "/vmlinuz";
      // After the rename, the file itself is fsynced under its new name.
      bool renamed = false, synced_after = false;
      std::map<int, std::string> opened;
      for (const auto& op : p.ops) {
        if (op.kind == Op::Kind::Open) opened[op.fd] = op.path;
        if (op.kind == Op::Kind::Rename && op.to == path) renamed = true;
        if (renamed && op.kind == Op::Kind::Fsync && opened[op.fd] == path) synced_after = true;
      }
      CHECK(synced_after);
      for (Model m : {Model::Posix, Model::Vfat}) {
        INFO(ModelName(m));
        const auto outcomes = Outcomes(p.initial, p.ops, m, path);
        CHECK(outcomes.back() == std::set<std::string>{"new"});
        for (size_t i = 0; i < outcomes.size(); ++i) {
          INFO("after " << i << " ops");
          for (const auto& o : outcomes[i]) {
            // vfat: a rename onto a NEW name shows an empty file until the inode is written;
            // that is the file system's, and the name did not exist before.
            if (m == Model::Vfat && !existed && o.empty()) continue;
            CHECK((o == "new" || o == (existed ? "old" : "absent")));
          }
        }
        // Without the fsync after the rename (the boot-file swap before the vfat fix), the
        // model must see the name end up empty or pointing at the replaced file.
        if (m == Model::Vfat) {
          const auto broken = Outcomes(p.initial, WithoutFsyncAfterRename(p.ops), m, path);
          CHECK(broken.back() != std::set<std::string>{"new"});
        }
      }
    }
  }
}

TEST_CASE("a symlink planted at a staging name is removed, never followed", "[crash][fd]") {
  TempDir dir;
  const std::string boot = dir / "boot";
  std::filesystem::create_directories(boot);
  const std::string victim = dir / "victim";
  WriteFile(victim, "precious");
  for (const std::string how : {"install", "stage"}) {
    const std::string staged = boot + (how == "install" ? "/.vmlinuz.tmp" : "/.vmlinuz.new");
    std::filesystem::create_symlink(victim, staged);
    auto r = osu::test::Run(std::string(OSU_FS_PROBE) + " " + how + " " + boot + "/vmlinuz new");
    INFO(how << ": " << r.output);
    CHECK(r.exit_code == 0);
    CHECK(osu::test::ReadFile(victim) == "precious");
    CHECK(osu::test::ReadFile(boot + "/vmlinuz") == "new");
    CHECK(!std::filesystem::is_symlink(boot + "/vmlinuz"));
    CHECK(!std::filesystem::exists(std::filesystem::symlink_status(staged)));
  }
}

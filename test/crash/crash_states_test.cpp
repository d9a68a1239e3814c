// Power cuts at every point of a real run, in the manner of ALICE and CrashMonkey: the
// file-system calls os-update makes to the boot directory (with their bytes) and to the disk
// image holding the slots (offsets and lengths) are recorded by an LD_PRELOAD recorder
// (crash/fsrecord.c) around os-update's command line (crash/run_main.cpp: cmd/os-update's
// code with the test activator). For every crash point, the states the disk may hold are
// rebuilt under a POSIX-style model and under vfat's rules (crash/crash_model.hpp), written
// back onto the fake device, and checked:
//   - the next power-on (SimulateBoot, the boot-selection model that grub_cfg_test holds to
//     the real grub.cfg in grub-emu) boots a slot whose bytes and boot files match its
//     verified record, and so does every slot it falls back to;
//   - a verified record never describes boot files or bytes that are not there;
//   - the committed slot is reached within kMaxAttempts + 1 boots that all fail;
//   - `--status --json` on the booted system prints JSON lines (checked with python3's json);
//   - a later `--apply` (after `--commit` when the power-on was a trial) succeeds.
// The same checks on the trace with the fsync after each boot file's rename dropped (what
// the boot-file swap did before) must find bad states under vfat: the test can fail.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>

#include "boot/selection.hpp"
#include "bootenv/boot_env.hpp"
#include "crash/crash_model.hpp"
#include "crypto/sha256.hpp"
#include "record/record.hpp"
#include "support/device.hpp"
#include "support/lifecycle.hpp"
#include "support/support.hpp"

using namespace osu::crash;
using namespace osu::test;
using osu::SlotId;

namespace {

// The part of each slot os-update writes here: images are kLifecycleImageSize bytes.
constexpr uint64_t kWindow = 4u << 20;

struct Command {
  std::string name;
  std::vector<std::string> args;
  std::function<void(FakeDevice&)> setup;
};

std::string Letter(SlotId s) { return std::string(1, osu::SlotLetter(s)); }

std::string ReadAt(const std::string& path, uint64_t offset, uint64_t length) {
  std::string out(length, '\0');
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  REQUIRE(fd >= 0);
  REQUIRE(::pread(fd, out.data(), length, static_cast<off_t>(offset)) == static_cast<ssize_t>(length));
  ::close(fd);
  return out;
}

void WriteAt(const std::string& path, uint64_t offset, const std::string& data) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  REQUIRE(fd >= 0);
  REQUIRE(::pwrite(fd, data.data(), data.size(), static_cast<off_t>(offset)) ==
          static_cast<ssize_t>(data.size()));
  ::close(fd);
}

// One recorded run and the device it ran on, able to take on any crash state of it.
class RecordedRun {
 public:
  explicit RecordedRun(const Command& c) {
    UseSharedKeys(d_);
    c.setup(d_);
    cmdline_ = ReadFile(d_.path("cmdline"));
    if (!cmdline_.empty() && cmdline_.back() == '\n') cmdline_.pop_back();
    for (SlotId s : {SlotId::A, SlotId::B}) window_[Index(s)] = SlotRegion(s);
    initial_ = ReadTree(d_.boot(), d_.disk());
    for (SlotId s : {SlotId::A, SlotId::B})
      pre_[Index(s)] = ReadAt(d_.disk(), window_[Index(s)].offset, kWindow);
    std::string args;
    for (const auto& a : c.args) args += " '" + a + "'";
    auto rec = Record(std::string(OSU_CRASH_RUN) + " --config " + d_.config() + args, d_.boot(),
                      d_.disk(), trace_dir_ / "trace");
    INFO(c.name << ": " << rec.output);
    REQUIRE(rec.exit_code == 0);
    ops_ = rec.ops;
    for (SlotId s : {SlotId::A, SlotId::B})
      post_[Index(s)] = ReadAt(d_.disk(), window_[Index(s)].offset, kWindow);
    // Each byte of the slots written once (so a crash state's bytes are the old or the new),
    // and only within the windows.
    std::vector<Extent> writes;
    for (const auto& op : ops_)
      if (op.kind == Op::Kind::Write && op.path.empty() && op.bytes.empty() && op.length)
        writes.push_back({op.offset, op.length});
    std::sort(writes.begin(), writes.end(),
              [](const Extent& a, const Extent& b) { return a.offset < b.offset; });
    for (size_t i = 1; i < writes.size(); ++i)
      REQUIRE(writes[i - 1].offset + writes[i - 1].length <= writes[i].offset);
    for (const auto& w : writes) {
      bool inside = false;
      for (const auto& r : window_)
        inside |= w.offset >= r.offset && w.offset + w.length <= r.offset + kWindow;
      REQUIRE(inside);
    }
  }

  const std::vector<Op>& ops() const { return ops_; }
  const Initial& initial() const { return initial_; }

  // Puts the device in `state`: the boot directory as it says, each slot window the old
  // bytes with the writes that reached the disk from the new.
  void Restore(const DiskState& state) {
    std::filesystem::remove_all(d_.boot());
    for (const auto& dir : state.dirs) std::filesystem::create_directories(dir);
    for (const auto& [path, content] : state.files) WriteFile(path, content);
    for (SlotId s : {SlotId::A, SlotId::B}) {
      std::string bytes = pre_[Index(s)];
      const uint64_t base = window_[Index(s)].offset;
      for (const auto& e : state.slot_writes)
        if (e.offset >= base && e.offset < base + kWindow)
          bytes.replace(e.offset - base, e.length, post_[Index(s)], e.offset - base, e.length);
      WriteAt(d_.disk(), base, bytes);
    }
    d_.SetCmdline(cmdline_);
  }

  // Everything wrong with the device as it is now; `status_log` collects --status --json.
  std::vector<std::string> Check(std::ofstream& status_log) {
    std::vector<std::string> problems;
    auto problem = [&](const std::string& p) { problems.push_back(p); };
    for (SlotId s : {SlotId::A, SlotId::B})
      if (auto record = LoadRecord(s); record && record->state == osu::SlotState::Verified)
        for (const auto& p : VerifySlot(s)) problem("verified record of " + Letter(s) + ": " + p);

    // Power on, then fail every boot: each slot booted must be verified, the committed one
    // reached within kMaxAttempts + 1 boots.
    auto env = osu::MakeGrubEnv(d_.grubenv());
    auto vars = env->Load();
    osu::BootSelection sel = osu::ParseSelection(vars ? *vars : osu::EnvVars{});
    const SlotId committed = sel.committed();
    std::optional<osu::BootOutcome> first;
    int reached = 0;
    bool checked[2] = {false, false};
    for (int boot = 1; boot <= 2 * osu::kMaxAttempts + 2; ++boot) {
      const osu::BootOutcome out = osu::SimulateBoot(sel);
      if (!first) first = out;
      if (!reached && out.slot == committed) reached = boot;
      if (!checked[Index(out.slot)]) {
        checked[Index(out.slot)] = true;
        auto record = LoadRecord(out.slot);
        if (!record || record->state != osu::SlotState::Verified)
          problem("boot " + std::to_string(boot) + " starts slot " + Letter(out.slot) +
                  ", which has no verified record");
        for (const auto& p : VerifySlot(out.slot))
          problem("boot " + std::to_string(boot) + " starts slot " + Letter(out.slot) + ": " + p);
      }
      sel = out.env_after;
    }
    if (!reached || reached > osu::kMaxAttempts + 1)
      problem("the committed slot " + Letter(committed) + " is not reached within " +
              std::to_string(osu::kMaxAttempts + 1) + " failed boots");
    if (!problems.empty()) return problems;

    // The first power-on, as GRUB leaves it, and the system it starts.
    if (vars) REQUIRE(env->Apply(osu::SelectionChanges(first->env_after)).ok());
    d_.SetCmdline("console=ttyS0 root=PARTLABEL=" +
                  std::string(first->slot == SlotId::A ? "p.lxreadonly" : "p.lxrootclone1") +
                  " ro quiet osu.slot=" + Letter(first->slot) +
                  (first->trial ? " osu.trial=1" : ""));
    auto status = RunUpdate({"--config", d_.config(), "--status", "--json"});
    if (status.code != 0) problem("--status --json exits " + std::to_string(status.code) + ": " + status.err);
    status_log << status.out;
    if (first->trial) {
      auto commit = RunUpdate({"--config", d_.config(), "--commit"});
      if (commit.code != 0) problem("--commit of the trial exits " + std::to_string(commit.code) + ": " + commit.err);
    }
    // Any version but the one booted: a downgrade is allowed for this check.
    const std::string next = VersionOf(first->slot) == "3.0" ? Shared().v2 : Shared().v3;
    auto apply = RunUpdate({"--config", d_.config(), "--apply", next, "--no-activate",
                            "--allow-downgrade"});
    if (apply.code != 0) {
      problem("a later --apply exits " + std::to_string(apply.code) + ": " + apply.err);
    } else {
      for (const auto& p : VerifySlot(osu::OtherSlot(first->slot)))
        problem("after a later --apply: " + p);
    }
    return problems;
  }

 private:
  static int Index(SlotId s) { return static_cast<int>(s); }
  osu::test::Region SlotRegion(SlotId s) const { return s == SlotId::A ? d_.SlotA() : d_.SlotB(); }

  std::optional<osu::Record> LoadRecord(SlotId s) const {
    const std::string path = d_.boot() + "/osu/" + Letter(s) + "/record.yml";
    if (!FileExists(path)) return std::nullopt;
    auto r = osu::ParseRecord(ReadFile(path));
    if (!r) return std::nullopt;
    return *r;
  }
  std::string VersionOf(SlotId s) const {
    auto r = LoadRecord(s);
    return r ? r->version : "";
  }

  // What is wrong with slot s against its record (which must be verified).
  std::vector<std::string> VerifySlot(SlotId s) const {
    std::vector<std::string> out;
    auto record = LoadRecord(s);
    if (!record || record->state != osu::SlotState::Verified) return {"no verified record"};
    if (record->size > kWindow) return {"record size beyond the test's window"};
    const osu::test::Region r = SlotRegion(s);
    if (osu::Sha256Hex(ReadAt(d_.disk(), r.offset, record->size)) != record->sha256)
      out.push_back("slot bytes do not match the record's sha256");
    for (const auto& f : record->boot_files) {
      const std::string path = d_.boot() + "/osu/" + Letter(s) + "/" + f.name;
      if (!FileExists(path)) {
        out.push_back("boot file " + f.name + " missing");
        continue;
      }
      const std::string content = ReadFile(path);
      if (content.size() != f.size || osu::Sha256Hex(content) != f.sha256)
        out.push_back("boot file " + f.name + " holds " + std::to_string(content.size()) +
                      " bytes that are not the record's " + std::to_string(f.size));
    }
    return out;
  }

  FakeDevice d_;
  TempDir trace_dir_;
  std::string cmdline_;
  Initial initial_;
  std::vector<Op> ops_;
  osu::test::Region window_[2];
  std::string pre_[2], post_[2];
};

struct Tally {
  size_t points = 0, states = 0, distinct = 0;
  std::vector<std::string> problems;  // "after N ops (last: ...): problem"
};

Tally CheckAll(RecordedRun& run, const std::vector<Op>& ops, Model m, std::ofstream& status_log) {
  Tally t;
  std::set<std::string> done;
  for (const auto& point : CrashStates(run.initial(), ops, m)) {
    ++t.points;
    t.states += point.states.size();
    for (const auto& state : point.states) {
      if (!done.insert(state.Key()).second) continue;
      ++t.distinct;
      run.Restore(state);
      for (const auto& p : run.Check(status_log))
        t.problems.push_back("crash after " + std::to_string(point.ops_done) + " ops (last: " +
                             (point.ops_done ? ops[point.ops_done - 1].Describe() : "none") +
                             "): " + p);
    }
  }
  return t;
}

std::vector<Command> Commands() {
  return {
      {"--apply", {"--apply", Shared().v2}, [](FakeDevice&) {}},
      {"--activate --reboot", {"--activate", "--reboot"}, InstalledNotActivated},
      {"--commit", {"--commit"}, ApplyAndRunTrial},
      {"--rollback", {"--rollback"}, ApplyTrialCommit},
      {"--apply over the fallback slot", {"--apply", Shared().v3}, ApplyTrialCommit},
  };
}

}  // namespace

TEST_CASE("every crash state of apply, activate, commit and rollback under POSIX and vfat rules boots a verified slot and recovers",
          "[crash]") {
  RequireTool("python3");
  TempDir tmp;
  const std::string status_path = tmp / "status.jsonl";
  std::ofstream status_log(status_path);
  for (const Command& c : Commands()) {
    RecordedRun run(c);
    for (Model m : {Model::Posix, Model::Vfat}) {
      const Tally t = CheckAll(run, run.ops(), m, status_log);
      std::cout << "crash states: " << c.name << ", " << ModelName(m) << ": " << run.ops().size()
                << " calls, " << t.points << " crash points, " << t.states << " states, "
                << t.distinct << " distinct states checked, " << t.problems.size()
                << " bad\n";
      INFO(c.name << ", " << ModelName(m));
      for (size_t i = 0; i < std::min<size_t>(t.problems.size(), 5); ++i) INFO(t.problems[i]);
      CHECK(t.problems.empty());
    }
    // The same run with the fsync after each boot file's rename dropped: vfat must show it.
    if (c.name.rfind("--apply", 0) == 0) {
      const auto broken = WithoutFsyncAfterRename(run.ops(), ".new");
      REQUIRE(broken.size() < run.ops().size());
      const Tally t = CheckAll(run, broken, Model::Vfat, status_log);
      std::cout << "crash states: " << c.name << " with the boot files' fsync after rename "
                << "dropped, vfat: " << t.problems.size() << " bad of " << t.distinct
                << " distinct states" << (t.problems.empty() ? "" : "; first: " + t.problems[0])
                << "\n";
      CHECK(!t.problems.empty());
    }
  }
  status_log.close();
  auto json = osu::test::Run("python3 -c 'import json,sys\nn=0\nfor l in open(sys.argv[1]):\n"
                             "  json.loads(l); n+=1\nprint(n, \"lines\")' " + status_path);
  INFO(json.output);
  CHECK(json.exit_code == 0);
}

// GRUB's env: the grubenv block on the ESP plus a whole backup copy (grubenv.bak) that
// grub/grub.cfg loads when the primary does not. Each copy is replaced by rename, backup
// first, so at every instant one copy is whole and the primary is the old or the new env.
#include <sys/stat.h>

#include <cerrno>

#include "bootenv/boot_env.hpp"
#include "bootenv/grubenv_format.hpp"
#include "common/fd.hpp"

namespace osu {
namespace {

bool PathExists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 || errno != ENOENT;
}

Expected<grubenv::Block> ReadBlock(const std::string& path) {
  auto bytes = ReadFile(path);
  if (!bytes) return bytes.error();
  auto block = grubenv::Block::Parse(std::move(*bytes));
  if (!block) return block.error().Context("'" + path + "'");
  return block;
}

class GrubEnv final : public BootEnv {
 public:
  explicit GrubEnv(std::string path) : primary_(std::move(path)), backup_(primary_ + ".bak") {}

  Expected<EnvVars> Load() override {
    auto block = LoadBlock();
    if (!block) return block.error();
    return block->Vars();
  }

  Result Apply(const EnvChanges& changes) override {
    for (const auto& [name, value] : changes) {
      if (!grubenv::ValidName(name))
        return UsageError("Invalid variable name '" + name + "' for " + Describe());
    }
    // Nothing there yet: start from what `grub-editenv create` writes. Something there that
    // does not parse is never silently replaced by an empty env.
    auto block = Exists() ? LoadBlock() : Expected<grubenv::Block>(grubenv::Block::Empty());
    if (!block) return block.error();
    // A name held twice: keep the line GRUB reads (the last), so the edit lands on it.
    block->DropOverridden();
    EnvVars expected = block->Vars();
    for (const auto& [name, value] : changes) {
      if (!value) {
        block->Unset(name);
        expected.erase(name);
      } else if (!block->Set(name, *value)) {
        return DeviceError("The variables do not fit in the " +
                           std::to_string(grubenv::kBlockSize) + "-byte " + Describe() +
                           " (setting '" + name + "')");
      } else {
        expected[name] = *value;
      }
    }
    // What GRUB will read must be exactly the old env with these changes, or nothing is written
    // (a line envblk.c reads differently than it edits, e.g. a name running across a newline).
    if (block->Vars() != expected)
      return DeviceError(Describe() + " holds lines that GRUB would read differently than " +
                         "os-update writes them; nothing was written (recreate it with "
                         "grub-editenv)");
    if (auto r = InstallFile(backup_, block->bytes()); !r) return r;
    return InstallFile(primary_, block->bytes());
  }

  bool Exists() const override { return PathExists(primary_) || PathExists(backup_); }
  std::string Describe() const override { return "grubenv '" + primary_ + "'"; }
  std::string TrialRebootArgument() const override { return ""; }

 private:
  Expected<grubenv::Block> LoadBlock() const {
    auto primary = ReadBlock(primary_);
    if (primary) return primary;
    auto backup = ReadBlock(backup_);
    if (backup) return backup;
    return DeviceError("grubenv '" + primary_ + "' and its backup are missing or corrupt (" +
                       primary.error().message() + "; " + backup.error().message() + ")");
  }

  std::string primary_;
  std::string backup_;
};

}  // namespace

std::unique_ptr<BootEnv> MakeGrubEnv(const std::string& path) {
  return std::make_unique<GrubEnv>(path);
}

}  // namespace osu

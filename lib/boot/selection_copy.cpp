#include "boot/selection_copy.hpp"

#include "bootenv/uboot_env_image.hpp"
#include "common/fd.hpp"

namespace osu {
namespace {

class SelectionCopyEnv final : public BootEnv {
 public:
  SelectionCopyEnv(std::unique_ptr<BootEnv> env, std::string path)
      : env_(std::move(env)), path_(std::move(path)) {}

  Expected<EnvVars> Load() override { return env_->Load(); }

  Result Apply(const EnvChanges& changes) override {
    auto vars = env_->Load();
    if (!vars) return vars.error();
    for (const auto& [name, value] : changes) {
      if (value) (*vars)[name] = *value;
      else vars->erase(name);
    }
    // Copies first: a cut before the env is written leaves the new order in the copies and
    // the old one in a valid env, which U-Boot prefers; the copies only matter once the env
    // is lost, and then they are never older than the last order os-update wrote.
    const std::string image = SelectionCopyImage(ParseSelection(*vars));
    for (const std::string& copy : {path_ + ".bak", path_}) {
      auto current = ReadFile(copy);
      if (current && *current == image) continue;
      if (auto r = MakeDirectories(DirName(copy)); !r) return r;
      if (auto r = InstallFile(copy, image); !r)
        return r.error().Context("Failed to keep the boot selection's copy");
    }
    return env_->Apply(changes);
  }

  bool Exists() const override { return env_->Exists(); }
  std::string Describe() const override { return env_->Describe(); }
  std::string TrialRebootArgument() const override { return env_->TrialRebootArgument(); }

 private:
  std::unique_ptr<BootEnv> env_;
  std::string path_;
};

}  // namespace

std::string SelectionCopyImage(const BootSelection& s) {
  EnvVars vars;
  for (auto& [name, value] : SelectionChanges(s))
    if (value && name != "OSU_TRY") vars[name] = *value;
  // Three short variables always fit and never hold a NUL.
  return *UbootEnvImage(vars, kSelectionCopySize);
}

std::unique_ptr<BootEnv> WithSelectionCopy(std::unique_ptr<BootEnv> env, std::string path) {
  return std::make_unique<SelectionCopyEnv>(std::move(env), std::move(path));
}

}  // namespace osu

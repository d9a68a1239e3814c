// U-Boot env through libubootenv: the same library and fw_env.config that fw_printenv and
// fw_setenv use, so os-update, the tools and U-Boot agree on layout, CRC and redundancy flag.
// <libuboot.h> uses size_t without including <stddef.h> (libubootenv 0.3.2).
#include <cstddef>
// clang-format off
#include <libuboot.h>
// clang-format on

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "bootenv/boot_env.hpp"

namespace osu {
namespace {

struct ContextDeleter {
  void operator()(uboot_ctx* ctx) const { libuboot_exit(ctx); }
};
using Context = std::unique_ptr<uboot_ctx, ContextDeleter>;

std::string Strerror(int negative_errno) { return std::strerror(-negative_errno); }

// An env read into memory (libuboot_open holds the library's lock file until close).
class OpenEnv {
 public:
  explicit OpenEnv(uboot_ctx* ctx) : ctx_(ctx) {}
  OpenEnv(const OpenEnv&) = delete;
  OpenEnv& operator=(const OpenEnv&) = delete;
  ~OpenEnv() { libuboot_close(ctx_); }
  uboot_ctx* get() const { return ctx_; }

 private:
  uboot_ctx* ctx_;
};

class UbootEnv final : public BootEnv {
 public:
  explicit UbootEnv(std::string config) : config_(std::move(config)) {}

  Expected<EnvVars> Load() override {
    auto ctx = Initialize();
    if (!ctx) return ctx.error();
    OpenEnv env(ctx->get());
    if (auto r = Open(env); !r) return r.error();
    return Variables(env);
  }

  Result Apply(const EnvChanges& changes) override {
    auto ctx = Initialize();
    if (!ctx) return ctx.error();
    OpenEnv env(ctx->get());
    // Refusing an env without a valid copy matters: a fresh env holding only our variables
    // would replace U-Boot's whole default env (bootcmd included) and the board would not boot.
    if (auto r = Open(env); !r) return r.error();
    for (const auto& [name, value] : changes) {
      if (name.empty() || name.find('=') != std::string::npos)
        return UsageError("Invalid U-Boot variable name '" + name + "' for " + Describe());
      int ret = libuboot_set_env(env.get(), name.c_str(), value ? value->c_str() : nullptr);
      if (ret < 0)
        return DeviceError("Failed to set '" + name + "' in " + Describe() + ": " + Strerror(ret));
    }
    // The library writes the copy that is not current, with a higher flag byte, so a torn
    // write leaves the previous copy valid (redundant env).
    // -ENOMEM is how libubootenv says the variables exceed the env size.
    if (int ret = libuboot_env_store(env.get()); ret < 0)
      return DeviceError("Failed to write " + Describe() + ": " +
                         (ret == -ENOMEM ? "the variables do not fit in the env" : Strerror(ret)));
    return {};
  }

  bool Exists() const override {
    auto ctx = Initialize();
    if (!ctx) return false;
    OpenEnv env(ctx->get());
    return libuboot_open(env.get()) == 0;
  }

  std::string Describe() const override { return "U-Boot env (" + config_ + ")"; }
  std::string TrialRebootArgument() const override { return ""; }

 private:
  Expected<Context> Initialize() const {
    uboot_ctx* raw = nullptr;
    if (int ret = libuboot_initialize(&raw, nullptr); ret < 0)
      return DeviceError("Failed to initialize libubootenv: " + Strerror(ret));
    Context ctx(raw);
    if (int ret = libuboot_read_config(ctx.get(), config_.c_str()); ret < 0)
      return DeviceError("Failed to read U-Boot env config '" + config_ + "': " +
                         (ret == -EBADF ? std::string("cannot open it") : Strerror(ret)));
    return ctx;
  }

  // libuboot_open answers -ENODATA when no copy has a valid CRC; fw_printenv then falls back to
  // a default env file, which must never pass for the device's env here.
  Result Open(const OpenEnv& env) const {
    int ret = libuboot_open(env.get());
    if (ret == -ENODATA) return DeviceError(Describe() + " has no valid copy");
    if (ret < 0) return DeviceError("Failed to read " + Describe() + ": " + Strerror(ret));
    return {};
  }

  static EnvVars Variables(const OpenEnv& env) {
    EnvVars vars;
    for (void* entry = libuboot_iterator(env.get(), nullptr); entry;
         entry = libuboot_iterator(env.get(), entry)) {
      const char* name = libuboot_getname(entry);
      const char* value = libuboot_getvalue(entry);
      if (name) vars[name] = value ? value : "";
    }
    return vars;
  }

  std::string config_;
};

}  // namespace

std::unique_ptr<BootEnv> MakeUbootEnv(const std::string& fw_env_config) {
  return std::make_unique<UbootEnv>(fw_env_config);
}

}  // namespace osu

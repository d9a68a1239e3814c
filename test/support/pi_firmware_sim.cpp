#include "support/pi_firmware_sim.hpp"

#include <filesystem>
#include <map>
#include <sstream>

#include "support/support.hpp"

namespace osu::test {
namespace {

struct Parser {
  std::string boot;
  bool tryboot = false;
  std::map<std::string, std::string> settings;

  void Read(const std::string& name, int depth) {
    const std::string path = boot + "/" + name;
    if (depth > 8 || !std::filesystem::is_regular_file(path)) return;
    std::istringstream in(ReadFile(path));
    std::string line;
    bool on = true;
    while (std::getline(in, line)) {
      if (line.size() > 98) line.resize(98);
      while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
      if (line.empty() || line[0] == '#') continue;
      if (line[0] == '[') {
        const std::string f = line.substr(1, line.find(']') - 1);
        on = f == "all" || f == "pi5" || (f == "tryboot" && tryboot);
        continue;
      }
      if (!on) continue;
      if (line.compare(0, 8, "include ") == 0) {
        Read(line.substr(8), depth + 1);
      } else if (line.compare(0, 10, "initramfs ") == 0) {
        std::istringstream words(line.substr(10));
        std::string file;
        words >> file;
        settings["initramfs"] = file;
      } else if (auto eq = line.find('='); eq != std::string::npos) {
        settings[line.substr(0, eq)] = line.substr(eq + 1);
      }
    }
  }
  std::string Get(const std::string& key, const std::string& fallback = "") const {
    auto it = settings.find(key);
    return it == settings.end() ? fallback : it->second;
  }
};

}  // namespace

PiFirmwareBoot SimulatePiFirmware(const std::string& boot_dir, bool tryboot_flag) {
  Parser p{boot_dir, tryboot_flag, {}};
  p.Read(tryboot_flag ? "tryboot.txt" : "config.txt", 0);
  PiFirmwareBoot out;
  auto exists = [&](const std::string& rel) {
    return std::filesystem::is_regular_file(boot_dir + "/" + rel);
  };
  auto at = [&](const std::string& prefix, const std::string& name) {
    return name.rfind('/', 0) == 0 ? name.substr(1) : prefix + name;
  };
  std::string kernel = p.Get("kernel");
  if (kernel.empty()) kernel = exists(at(p.Get("os_prefix"), "kernel_2712.img")) ? "kernel_2712.img" : "kernel8.img";
  out.prefix = p.Get("os_prefix");
  if (!exists(at(out.prefix, kernel)) || !exists(at(out.prefix, kPi5DeviceTree))) out.prefix = "";
  out.kernel = at(out.prefix, kernel);
  out.dtb = at(out.prefix, kPi5DeviceTree);
  if (!exists(out.kernel)) {
    out.why = "no kernel '" + out.kernel + "'";
    return out;
  }
  if (const std::string initramfs = p.Get("initramfs"); !initramfs.empty()) {
    out.initrd = at(out.prefix, initramfs);
    if (!exists(out.initrd)) {
      out.why = "no initramfs '" + out.initrd + "'";
      return out;
    }
  }
  const std::string cmdline_file = at(out.prefix, p.Get("cmdline", "cmdline.txt"));
  if (exists(cmdline_file)) {
    std::string text = ReadFile(boot_dir + "/" + cmdline_file);
    out.cmdline = text.substr(0, text.find('\n'));
  }
  out.started = true;
  return out;
}

}  // namespace osu::test

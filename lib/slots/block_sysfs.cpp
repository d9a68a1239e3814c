#include "slots/block_sysfs.hpp"

#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <charconv>
#include <filesystem>
#include <fstream>

namespace osu {
namespace {

std::string SysPath(dev_t devno) {
  return "/sys/dev/block/" + std::to_string(major(devno)) + ":" + std::to_string(minor(devno));
}

std::optional<std::string> ReadLine(const std::string& path) {
  std::ifstream f(path);
  std::string line;
  if (!f || !std::getline(f, line)) return std::nullopt;
  return line;
}

std::optional<uint64_t> ParseNumber(const std::string& s) {
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end == s.data()) return std::nullopt;
  return v;
}

std::optional<dev_t> ParseDevno(const std::string& s) {  // "259:3"
  auto colon = s.find(':');
  if (colon == std::string::npos) return std::nullopt;
  auto maj = ParseNumber(s.substr(0, colon));
  auto min = ParseNumber(s.substr(colon + 1));
  if (!maj || !min) return std::nullopt;
  return makedev(static_cast<unsigned>(*maj), static_cast<unsigned>(*min));
}

}  // namespace

std::optional<uint64_t> ReadBlockAttribute(dev_t devno, const std::string& attribute) {
  auto line = ReadLine(SysPath(devno) + "/" + attribute);
  if (!line) return std::nullopt;
  return ParseNumber(*line);
}

std::optional<PartitionNode> FindPartitionNode(dev_t disk, int number) {
  namespace fs = std::filesystem;
  std::error_code ec;
  // The disk's directory has one subdirectory per partition the kernel knows, each with a
  // "partition" file holding its number: names differ by driver (sda2, loop0p2, mmcblk0p2).
  for (const auto& entry : fs::directory_iterator(SysPath(disk), ec)) {
    auto part = ReadLine(entry.path().string() + "/partition");
    if (!part || ParseNumber(*part) != static_cast<uint64_t>(number)) continue;
    auto dev = ReadLine(entry.path().string() + "/dev");
    auto devno = dev ? ParseDevno(*dev) : std::nullopt;
    if (!devno) return std::nullopt;
    std::string node = "/dev/" + entry.path().filename().string();
    struct stat st {};
    if (::stat(node.c_str(), &st) != 0 || !S_ISBLK(st.st_mode) || st.st_rdev != *devno) {
      return std::nullopt;
    }
    return PartitionNode{node, *devno};
  }
  return std::nullopt;
}

}  // namespace osu

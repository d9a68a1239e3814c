// The block device seam on a real loop device: a mounted slot is refused, the size comes
// from the kernel, and O_DIRECT writes with an unaligned tail land exactly.
#include <catch2/catch.hpp>
#include <random>
#include <string>

#include "device/block_device.hpp"
#include "install/stream_copy.hpp"
#include "support/support.hpp"

using osu::test::MustRun;
using osu::test::Run;
using osu::test::TempDir;

namespace {

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

class Loop {
 public:
  explicit Loop(const std::string& image)
      : device_(Trim(MustRun("losetup -f --show '" + image + "'"))) {}
  ~Loop() { Run("umount '" + device_ + "' 2>/dev/null; losetup -d '" + device_ + "'"); }
  Loop(const Loop&) = delete;
  Loop& operator=(const Loop&) = delete;
  const std::string& device() const { return device_; }

 private:
  std::string device_;
};

class VectorReader final : public osu::Reader {
 public:
  explicit VectorReader(const std::string& d) : d_(d) {}
  osu::Expected<size_t> Read(std::span<uint8_t> buf) override {
    size_t n = std::min({buf.size(), d_.size() - pos_, size_t{65537}});
    std::copy_n(d_.begin() + static_cast<std::ptrdiff_t>(pos_), n, buf.begin());
    pos_ += n;
    return n;
  }

 private:
  const std::string& d_;
  size_t pos_ = 0;
};

}  // namespace

TEST_CASE("A loop device slot: refused while mounted, written exactly once free") {
  osu::test::SkipUnlessRoot("block device test");
  osu::test::RequireTool("mkfs.ext4");
  TempDir dir;
  MustRun("truncate -s 24M '" + dir / "slot.img" + "' && mkfs.ext4 -q '" + dir / "slot.img" + "'");
  Loop loop(dir / "slot.img");
  MustRun("mkdir '" + dir / "mnt" + "' && mount '" + loop.device() + "' '" + dir / "mnt" + "'");

  auto busy = osu::OpenBlockDevice(loop.device(), {});
  REQUIRE_FALSE(busy);
  CHECK(busy.error().kind() == osu::ErrorKind::State);
  CHECK(busy.error().message() ==
        "'" + loop.device() + "' is in use (mounted or held by another program)");

  MustRun("umount '" + dir / "mnt" + "'");
  auto dev = osu::OpenBlockDevice(loop.device(), {});
  REQUIRE(dev);
  CHECK(std::to_string((*dev)->size()) ==
        Trim(MustRun("blockdev --getsize64 '" + loop.device() + "'")));
  // While we hold it, nobody mounts it under us.
  CHECK(Run("mount '" + loop.device() + "' '" + dir / "mnt" + "'").exit_code != 0);

  std::string image(5 * 1024 * 1024 + 333, '\0');
  std::mt19937 rng(11);
  for (auto& c : image) c = static_cast<char>(rng());
  osu::test::WriteFile(dir / "image", image);
  std::string sha = osu::test::Sha256OfFile(dir / "image");
  VectorReader reader(image);
  osu::CopyOptions options;
  options.expected_size = image.size();
  options.expected_sha256 = sha;
  options.chunk_size = 1 << 20;
  options.verify_readback = true;
  auto stats = osu::StreamToDevice(reader, **dev, options);
  INFO((stats ? "" : stats.error().message()));
  REQUIRE(stats);
  dev->reset();  // closes it, as apply does before anyone reads the slot
  MustRun("cmp -n " + std::to_string(image.size()) + " '" + dir / "image" + "' '" +
          loop.device() + "'");
}

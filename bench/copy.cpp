// osu-bench-copy: the pure data path (MakeDecoder + StreamToDevice) from a compressed image
// file onto a device, timed. For bench/apply-bench.sh.
#include <fcntl.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <vector>

#include "common/fd.hpp"
#include "compress/compression.hpp"
#include "device/block_device.hpp"
#include "install/stream_copy.hpp"
#include "io/stream.hpp"

namespace {

constexpr const char* kUsage =
    "usage: osu-bench-copy [--threads N] [--chunk BYTES] [--buffers N] [--skip-unchanged]\n"
    "                      [--verify] [--buffered] COMPRESSION INPUT DEVICE SIZE SHA256\n";

int Fail(const std::string& message) {
  std::fprintf(stderr, "osu-bench-copy: %s\n", message.c_str());
  return 1;
}

int Main(const std::vector<std::string>& args) {
  std::vector<std::string> positional;
  osu::CopyOptions copy;
  osu::BlockDeviceOptions dev_options;
  unsigned threads = 0;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    bool has_value = i + 1 < args.size();
    if (a == "--threads" && has_value) {
      threads = static_cast<unsigned>(std::stoul(args[++i]));
    } else if (a == "--chunk" && has_value) {
      copy.chunk_size = std::stoul(args[++i]);
    } else if (a == "--buffers" && has_value) {
      copy.buffers = static_cast<unsigned>(std::stoul(args[++i]));
    } else if (a == "--skip-unchanged") {
      copy.skip_unchanged = true;
    } else if (a == "--verify") {
      copy.verify_readback = true;
    } else if (a == "--buffered") {
      dev_options.direct = false;
    } else if (a.rfind("--", 0) == 0) {
      std::fputs(kUsage, stderr);
      return 1;
    } else {
      positional.push_back(a);
    }
  }
  if (positional.size() != 5) {
    std::fputs(kUsage, stderr);
    return 1;
  }
  auto compression = osu::ParseCompression(positional[0]);
  if (!compression) return Fail(compression.error().message());
  copy.expected_size = std::stoull(positional[3]);
  copy.expected_sha256 = positional[4];

  auto start = std::chrono::steady_clock::now();
  auto input = osu::Fd::Open(positional[1], O_RDONLY);
  if (!input) return Fail(input.error().message());
  auto compressed = osu::MakeFdReader(input->get(), false, "'" + positional[1] + "'");
  auto decoded = osu::MakeDecoder(*compression, *compressed, threads);
  if (!decoded) return Fail(decoded.error().message());
  auto device = osu::OpenBlockDevice(positional[2], dev_options);
  if (!device) return Fail(device.error().message());
  auto stats = osu::StreamToDevice(**decoded, **device, copy);
  if (!stats) return Fail(stats.error().message());
  double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("bytes %llu written %llu seconds %.3f MB/s %.1f sha256 %s\n",
              static_cast<unsigned long long>(stats->bytes),
              static_cast<unsigned long long>(stats->bytes_written), seconds,
              static_cast<double>(stats->bytes) / seconds / 1e6, stats->sha256.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return Main(std::vector<std::string>(argv + 1, argv + argc));
  } catch (const std::exception& e) {  // std::stoul on a bad number
    std::fputs(kUsage, stderr);
    return Fail(e.what());
  }
}

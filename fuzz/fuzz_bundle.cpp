// A bundle from any bytes: BundleReader::Open with the fuzz test key (the seed bundles are
// signed with it, so mutations after the signature get through), then OpenUnverified, each
// drained as `os-update --apply` reads it: boot files, the decoded image, Finish().
#include <cstddef>
#include <cstdint>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "bundle/bundle.hpp"
#include "bundle/checked_reader.hpp"
#include "bundle/content_rules.hpp"
#include "compress/compression.hpp"
#include "fuzz_check.hpp"
#include "fuzz_reader.hpp"

#ifndef OSU_FUZZ_DIR
#error "OSU_FUZZ_DIR must name the fuzz/ source directory"
#endif

namespace {

// Decoding stops here: a tiny xz or zstd stream can expand to gigabytes.
constexpr uint64_t kDecodeLimit = 8u << 20;

using osu::fuzz::BytesReader;
using osu::fuzz::Drain;

// Returns true when the whole bundle was read and every check passed.
bool Consume(osu::BundleReader& bundle) {
  const osu::Manifest& m = bundle.manifest();
  size_t boot_files = 0;
  for (;;) {
    auto member = bundle.NextBootFile();
    if (!member) return false;
    if (!*member) break;
    osu::fuzz::Check((*member)->entry->name == m.boot_files[boot_files].name,
                     "boot files out of manifest order");
    ++boot_files;
    if (!Drain(*(*member)->data, kDecodeLimit)) return false;
  }
  osu::fuzz::Check(boot_files == m.boot_files.size(), "a boot file was skipped");
  auto image = bundle.Image();
  if (!image) return false;
  auto decoder = osu::MakeImageDecoder(bundle, **image, 1);
  if (!decoder) return false;
  auto checked = osu::MakeCheckedReader(**decoder, m.image.size, m.image.sha256, "image");
  if (!Drain(*checked, kDecodeLimit)) return false;
  return static_cast<bool>(bundle.Finish());
}

const std::vector<std::string>& Keys() {
  static const std::vector<std::string> keys{OSU_FUZZ_DIR "/keys/fuzz-test.pub"};
  return keys;
}

}  // namespace

// A key that does not match the seeds would leave the verified path unfuzzed: check once that
// a committed seed bundle opens verified and reads through.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  std::ifstream in(OSU_FUZZ_DIR "/corpus/fuzz_bundle/signed-xz.osu", std::ios::binary);
  const std::string seed{std::istreambuf_iterator<char>(in), {}};
  BytesReader source(reinterpret_cast<const uint8_t*>(seed.data()), seed.size(), 1000);
  auto bundle = osu::BundleReader::Open(source, "signed-xz.osu", Keys());
  if (!bundle) osu::fuzz::Fail("self-test: seed bundle: " + bundle.error().message());
  osu::fuzz::Check(Consume(**bundle), "self-test: the seed bundle does not read through");
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // A cheap input-derived chunk size: mostly large reads, sometimes tiny ones.
  const size_t chunk = size % 7 == 0 ? 1 + size % 509 : 64u << 10;
  {
    BytesReader source(data, size, chunk);
    auto bundle = osu::BundleReader::Open(source, "fuzz.osu", Keys());
    if (bundle) {
      osu::fuzz::Check(!(*bundle)->key_used().empty(), "verified without a key");
      (void)osu::CheckBundleContent((*bundle)->manifest());  // as --apply does, next
      (void)Consume(**bundle);
    }
  }
  {
    BytesReader source(data, size, chunk);
    auto bundle = osu::BundleReader::OpenUnverified(source, "fuzz.osu");
    if (bundle) (void)Consume(**bundle);
  }
  return 0;
}

// A patch file from any bytes (a device fetches it from the server beside a bundle).
// 1. The header parsers alone (ParseFixed on the fixed fields, ParseEntries on the segment
//    table after them): a header that parses is written back byte for byte by
//    SerializeFixed/SerializeEntries, and its segments cover the target image.
// 2. OpenPatchedImage as a device calls it: a fixed 64 KiB base (memfd), the expectation and
//    the fuzz test key of the seed patches (made by `os-update-bundle delta`), the decoded
//    image drained. Mostly header rejections; a patch that opens must yield exactly the
//    target's bytes or an error, never other bytes.
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <fstream>
#include <iterator>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "crypto/sha256.hpp"
#include "delta/blocks.hpp"
#include "delta/patch.hpp"
#include "delta/patch_codec.hpp"
#include "delta/patch_format.hpp"
#include "fuzz_check.hpp"
#include "fuzz_reader.hpp"

#ifndef OSU_FUZZ_DIR
#error "OSU_FUZZ_DIR must name the fuzz/ source directory"
#endif

namespace {

using namespace osu;

// The base image the seed patches apply to; make_corpus.sh writes the same bytes
// (`yes 'osu patch base' | head -c 65536`, then `seq 1 12000` as a zstd -15 block), the
// self-test checks its sha256 against theirs.
std::string BaseImage() {
  std::string base;
  while (base.size() < 65536) base += "osu patch base\n";
  base.resize(65536);
  std::string lines;
  for (int i = 1; i <= 12000; ++i) lines += std::to_string(i) + "\n";
  auto compressor = delta::MakeFrameCompressor();
  if (!compressor) fuzz::Fail("self-test: zstd");
  std::vector<uint8_t> block(delta::MaxFrameSize(lines.size()));
  auto n = (*compressor)->Compress(
      std::span(reinterpret_cast<const uint8_t*>(lines.data()), lines.size()), 15, block);
  if (!n) fuzz::Fail("self-test: zstd");
  return base + std::string(reinterpret_cast<const char*>(block.data()), *n);
}

struct Fixture {
  PatchBase base;
  PatchExpectation expect;
};
Fixture* fixture = nullptr;

void CheckHeaderParsers(const std::string& bytes) {
  if (bytes.size() < delta::kFixedSize) return;
  const std::string fixed = bytes.substr(0, delta::kFixedSize);
  uint32_t count = 0;
  auto h = delta::ParseFixed(fixed, &count);
  if (!h) return;
  fuzz::Check(h->segments.empty(), "ParseFixed filled segments");
  if (h->format == delta::kFormat) {
    fuzz::Check(count == delta::SegmentCount(h->target_size, h->segment_size),
                "segment count does not cover the target");
  }
  const size_t entry_size = delta::EntrySize(*h);
  const std::string entries = bytes.substr(delta::kFixedSize, size_t{count} * entry_size);
  if (entries.size() != size_t{count} * entry_size) return;  // truncated table
  if (!delta::ParseEntries(entries, *h)) return;
  fuzz::Check(h->segments.size() == count, "ParseEntries parsed another count");
  uint64_t covered = 0;
  for (const auto& e : h->segments) {
    fuzz::Check(e.length > 0 && e.length <= delta::kMaxSegment && e.decoded_length > 0 &&
                    e.decoded_length <= h->segment_size,
                "a segment length out of range");
    covered += e.length;
  }
  fuzz::Check(covered == h->target_size, "segments do not add up to the target size");
  fuzz::Check(delta::SerializeFixed(*h) == fixed, "SerializeFixed changed the fixed fields");
  fuzz::Check(delta::SerializeEntries(*h) == entries, "SerializeEntries changed the table");
  // Format 2's block records: whatever parses describes its segment and the base.
  const size_t record_bytes = delta::RecordBytes(*h);
  const std::string records = bytes.substr(delta::kFixedSize + entries.size(), record_bytes);
  if (records.size() != record_bytes || !delta::ParseRecords(records, *h)) return;
  fuzz::Check(delta::SerializeRecords(*h) == records, "SerializeRecords changed the records");
  for (const auto& e : h->segments) {
    fuzz::Check(delta::DecodedSize(e.base_blocks) <= delta::kMaxBasePrefix,
                "decoded base blocks beyond the bound");
    for (const auto& b : e.base_blocks) {
      fuzz::Check(b.offset + b.size <= h->base_size, "a base block outside the base");
    }
    uint64_t end = 0, length = e.decoded_length;
    for (const auto& b : e.blocks) {
      fuzz::Check(b.offset >= end && uint64_t{b.offset} + b.content_size <= e.decoded_length,
                  "blocks overlap or leave the segment");
      end = uint64_t{b.offset} + b.content_size;
      length = length - b.content_size + b.size;
    }
    fuzz::Check(length == e.length, "blocks that do not make the segment's length");
  }
}

// Opens and drains `bytes` as a patch; true when the whole target image came out.
bool Apply(const std::string& bytes, size_t chunk, std::string* error) {
  auto patch = std::make_unique<fuzz::BytesReader>(reinterpret_cast<const uint8_t*>(bytes.data()),
                                                   bytes.size(), chunk);
  auto image = OpenPatchedImage(fixture->base, std::move(patch), fixture->expect, "fuzz.delta");
  if (!image) {
    *error = image.error().message();
    fuzz::Check(image.error().kind() == ErrorKind::Verification,
                "a bad patch that is not a Verification error: " + *error);
    return false;
  }
  Sha256 sha;
  uint64_t total = 0;
  std::vector<uint8_t> buf(1 << 16);
  for (;;) {
    auto n = (*image)->Read(buf);
    if (!n) {
      *error = n.error().message();
      return false;
    }
    if (*n == 0) break;
    total += *n;
    fuzz::Check(total <= fixture->expect.target_size, "more bytes than the target image");
    sha.Update(std::span<const uint8_t>(buf.data(), *n));
  }
  fuzz::Check(total == fixture->expect.target_size, "the image ended early without an error");
  fuzz::Check(sha.HexDigest() == fixture->expect.target_sha256,
              "a patch yielded bytes that are not the target image");
  return true;
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

}  // namespace

// The expectation comes from the seed's header (base and target), and the seed must apply
// (otherwise everything past the base check would go unfuzzed).
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  const std::string seed = ReadAll(OSU_FUZZ_DIR "/corpus/fuzz_patch_header/segments-64k.delta");
  uint32_t count = 0;
  auto h = delta::ParseFixed(seed.substr(0, delta::kFixedSize), &count);
  if (!h) fuzz::Fail("self-test: seed header: " + h.error().message());
  const std::string base = BaseImage();
  fuzz::Check(Sha256Hex(base) == h->base_sha256 && base.size() == h->base_size,
              "self-test: the seed patch is not for BaseImage()");
  const int fd = memfd_create("fuzz-base", 0);
  fuzz::Check(fd >= 0 && write(fd, base.data(), base.size()) == static_cast<ssize_t>(base.size()),
              "self-test: memfd");
  fixture = new Fixture{PatchBase{fd, 0, base.size(), "the base"},
                        PatchExpectation{h->base_sha256, h->base_size, h->target_sha256,
                                         h->target_size, {OSU_FUZZ_DIR "/keys/fuzz-test.pub"}}};
  std::string error;
  fuzz::Check(Apply(seed, 1 << 20, &error), "self-test: the seed patch does not apply: " + error);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  CheckHeaderParsers(bytes);
  std::string error;
  // A cheap input-derived chunk size: mostly large reads, sometimes tiny ones.
  (void)Apply(bytes, size % 7 == 0 ? 1 + size % 509 : 1 << 20, &error);
  return 0;
}

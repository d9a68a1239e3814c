// ParseChunkIndex on any bytes (the index member of a partial-fetch bundle: a device reads it
// from the server, and only then compares its sha256 with the signed manifest). An index that
// parses must parse again, to the same sizes, offsets and digests, once SerializeChunkIndex
// wrote it (the bytes may differ: the writer picks its own format version).
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "delta/chunk_index.hpp"
#include "fuzz_check.hpp"

namespace {

bool Same(const osu::ChunkIndex& a, const osu::ChunkIndex& b) {
  if (a.sizes.min != b.sizes.min || a.sizes.avg != b.sizes.avg || a.sizes.max != b.sizes.max ||
      a.image_size != b.image_size || a.window != b.window || a.refs != b.refs ||
      a.compressed_size != b.compressed_size ||
      a.chunks.size() != b.chunks.size())
    return false;
  for (size_t i = 0; i < a.chunks.size(); ++i) {
    const osu::ChunkEntry& x = a.chunks[i];
    const osu::ChunkEntry& y = b.chunks[i];
    if (x.offset != y.offset || x.compressed_offset != y.compressed_offset || x.size != y.size ||
        x.compressed_size != y.compressed_size || x.digest != y.digest ||
        x.ref_count != y.ref_count || x.refs != y.refs || x.last_use != y.last_use)
      return false;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  auto index = osu::ParseChunkIndex(bytes, "fuzz.index");
  if (!index) {
    osu::fuzz::Check(index.error().kind() == osu::ErrorKind::Verification,
                     "a malformed index that is not a Verification error");
    return 0;
  }
  // What the parser promises its callers (the chunk fetcher trusts these sums).
  uint64_t offset = 0, compressed = 0;
  for (const auto& c : index->chunks) {
    osu::fuzz::Check(c.offset == offset && c.compressed_offset == compressed,
                     "offsets are not the sums of the earlier sizes");
    osu::fuzz::Check(c.size > 0 && c.size <= index->sizes.max, "a chunk outside the size limits");
    offset += c.size;
    compressed += c.compressed_size;
  }
  osu::fuzz::Check(offset == index->image_size, "chunks do not add up to the image size");
  osu::fuzz::Check(compressed == index->compressed_size, "compressed sizes do not add up");
  // What a decoder trusts of the references: earlier chunks, within the memory bound.
  for (size_t i = 0; i < index->chunks.size(); ++i) {
    const osu::ChunkEntry& c = index->chunks[i];
    osu::fuzz::Check(c.ref_count <= index->refs, "more references than the header allows");
    for (uint32_t k = 0; k < c.ref_count; ++k)
      osu::fuzz::Check(c.refs[k] < i && index->chunks[c.refs[k]].last_use >= i,
                       "a reference to a chunk not held until then");
  }
  std::vector<osu::ChunkEntry> chunks = index->chunks;
  osu::fuzz::Check(osu::DeriveLastUses(chunks) <= osu::kMaxReferenceBytes,
                   "references hold more than the bound");

  const std::string serialized = osu::SerializeChunkIndex(*index);
  auto again = osu::ParseChunkIndex(serialized, "serialized");
  if (!again) osu::fuzz::Fail("serialized index does not parse: " + again.error().message());
  osu::fuzz::Check(Same(*index, *again), "index changed in a serialize/parse round trip");
  osu::fuzz::Check(osu::SerializeChunkIndex(*again) == serialized, "serialized twice, two forms");
  return 0;
}

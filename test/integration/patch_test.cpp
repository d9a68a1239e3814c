// Patches against a known base (lib/delta): round trips on real ext4 and squashfs images
// rebuilt from changed trees of real files, and every way a patch can be wrong refused
// without a wrong byte handed out.
#include <fcntl.h>

#include <catch2/catch.hpp>
#include <string>

#include "common/fd.hpp"
#include "common/text.hpp"
#include "delta/blocks.hpp"
#include "delta/patch.hpp"
#include "delta/patch_format.hpp"
#include "integration/block_images.hpp"
#include "integration/bundle_fixture.hpp"
#include "support/support.hpp"

namespace {

using osu::test::MustRun;
using osu::test::ReadFile;
using osu::test::RunBundle;
using osu::test::Sha256OfFile;
using osu::test::WriteFile;

// A tree of about `mib` MiB of real files from /usr (sorted, so the same every run) and the
// same tree with every 20th file replaced by a program's bytes (other content, a little longer)
// and a small directory added: the change between two releases, about 5% of the bytes.
void MakeTrees(const osu::test::TempDir& d, int mib) {
  WriteFile(d / "trees.sh", R"(set -eu  # no pipefail: awk stops reading at the budget
cd /
find usr/share usr/lib -type f -size -2M -printf '%s\t%p\n' 2>/dev/null | LC_ALL=C sort -t$'\t' -k2 |
  awk -F'\t' -v limit=$(($2 << 20)) '{ s += $1; if (s > limit) exit; print $2 }' > "$1/files.list"
mkdir -p "$1/old"
tar -cf - --no-recursion -T "$1/files.list" 2>/dev/null | tar -xf - -C "$1/old"
cp -a "$1/old" "$1/new"
cd "$1/new"
programs=(/usr/bin/*)
i=0
while IFS= read -r f; do
  i=$((i + 1))
  [ $((i % 20)) -eq 0 ] || continue
  head -c $(( $(stat -c %s "$f") + i % 1000 )) "${programs[$((i % ${#programs[@]}))]}" > "$f"
done < "$1/files.list"
mkdir -p usr/new
find /usr/bin -maxdepth 1 -type f -size -50k | LC_ALL=C sort | head -n 5 | xargs cp -t usr/new
)");
  MustRun("bash " + d / "trees.sh" + " " + d.path() + " " + std::to_string(mib));
}

void MakeImages(const osu::test::TempDir& d, const std::string& kind) {
  for (const char* tree : {"old", "new"}) {
    const std::string image = d / (std::string(tree) + "." + kind);
    if (kind == "ext4") {
      MustRun("E2FSPROGS_FAKE_TIME=1700000000 mkfs.ext4 -q -F -b 4096 "
              "-U 2a7c1a4e-0f5b-4d7e-9a41-6a3c5e8f0b11 "
              "-E hash_seed=7d0c6f27-4f0e-4a51-8d3e-3b2f9c1d5e60,root_owner=0:0 -d " +
              d / tree + " " + image + " 48M");
    } else {
      MustRun("mksquashfs " + d / tree + " " + image + " -comp zstd -noappend -quiet "
              "-mkfs-time 1700000000 -all-time 1700000000 -all-root > /dev/null");
    }
  }
}

std::string MakeBundle(osu::test::bundle::Fixture& f, const std::string& image,
                       const std::string& version) {
  const std::string out = image + ".osu";
  auto r = RunBundle({"create", "--image", image, "--compression", "zstd", "--compatible",
                      "eos-x86_64-kvm", "--version", version, "--key", f.key, "--output", out});
  INFO(r.err);
  REQUIRE(r.code == 0);
  return out;
}

uint64_t SizeOf(const std::string& path) { return std::stoull(MustRun("stat -c %s " + path)); }

osu::PatchExpectation Expect(const std::string& base, const std::string& target,
                             const std::string& pub) {
  osu::PatchExpectation e;
  e.base_sha256 = Sha256OfFile(base);
  e.base_size = SizeOf(base);
  e.target_sha256 = Sha256OfFile(target);
  e.target_size = SizeOf(target);
  e.keys = {pub};
  return e;
}

// A patch as a device reads it, counting the bytes taken from it.
class CountedFile final : public osu::Reader {
 public:
  CountedFile(const std::string& path, uint64_t* taken)
      : inner_(osu::MakeFdReader(osu::Fd::Open(path, O_RDONLY)->Release(), true, path)),
        taken_(taken) {}
  osu::Expected<size_t> Read(std::span<uint8_t> buf) override {
    auto n = inner_->Read(buf);
    if (n) *taken_ += *n;
    return n;
  }

 private:
  std::unique_ptr<osu::Reader> inner_;
  uint64_t* taken_;
};

struct Applied {
  bool opened = false;
  std::string bytes;  // what the reader handed out before its end or its error
  std::string error;
  osu::ErrorKind kind = osu::ErrorKind::Device;
  uint64_t patch_bytes_read = 0;
};

// The base is `base` from byte `offset` to its end (a slot inside a disk image when not 0).
Applied Apply(const std::string& base, const std::string& patch,
              const osu::PatchExpectation& expect, uint64_t offset = 0) {
  Applied a;
  auto base_fd = osu::Fd::Open(base, O_RDONLY);
  REQUIRE(base_fd.ok());
  const osu::PatchBase slot{base_fd->get(), offset, SizeOf(base) - offset, "slot B"};
  auto reader = osu::OpenPatchedImage(
      slot, std::make_unique<CountedFile>(patch, &a.patch_bytes_read), expect,
      osu::InQuotes(patch));
  if (!reader) {
    a.error = reader.error().message();
    a.kind = reader.error().kind();
    return a;
  }
  a.opened = true;
  std::vector<uint8_t> buf(1u << 20);
  for (;;) {
    auto n = (*reader)->Read(buf);
    if (!n) {
      a.error = n.error().message();
      a.kind = n.error().kind();
      return a;
    }
    if (*n == 0) return a;
    a.bytes.append(reinterpret_cast<const char*>(buf.data()), *n);
  }
}

// Every byte handed out is the new image's: a bad patch stops early, never lies.
void CheckOnlyTrueBytes(const Applied& a, const std::string& target) {
  const std::string truth = ReadFile(target);
  REQUIRE(a.bytes.size() < truth.size());
  CHECK(truth.compare(0, a.bytes.size(), a.bytes) == 0);
}

}  // namespace

TEST_CASE("patch: os-update-bundle delta turns a real ext4 or squashfs image into the next") {
  const std::string kind = GENERATE(std::string("ext4"), std::string("squashfs"));
  osu::test::RequireTool(kind == "ext4" ? "mkfs.ext4" : "mksquashfs");
  osu::test::bundle::Fixture f;
  osu::test::TempDir d;
  MakeTrees(d, 24);
  MakeImages(d, kind);
  const std::string old_image = d / ("old." + kind), new_image = d / ("new." + kind);
  const std::string old_bundle = MakeBundle(f, old_image, "1.0.0");
  const std::string new_bundle = MakeBundle(f, new_image, "2.0.0");

  auto r = RunBundle({"delta", "--from", old_bundle, "--to", new_bundle, "--key", f.key,
                      "--segment-size", std::to_string(4u << 20)});
  INFO(r.err);
  REQUIRE(r.code == 0);
  // Named for the base it needs, beside the bundle: where a device looks.
  const std::string patch = new_bundle + ".delta-" + Sha256OfFile(old_image).substr(0, 16);
  REQUIRE(osu::test::FileExists(patch));
  CHECK(r.out.find(patch) != std::string::npos);
  CHECK_FALSE(osu::test::FileExists(patch + ".tmp"));
  // Far smaller than the full bundle (bench/patch.sh measures how much).
  const uint64_t patch_size = SizeOf(patch), bundle_size = SizeOf(new_bundle);
  INFO(kind << ": patch " << patch_size << " bytes, bundle " << bundle_size);
  // (A third: the format-4 bundle of the small squashfs here is 5.8 MB against the patch's 1.6.)
  CHECK(patch_size * 3 < bundle_size);

  Applied a = Apply(old_image, patch, Expect(old_image, new_image, f.pub));
  INFO(a.error);
  REQUIRE(a.opened);
  REQUIRE(a.error.empty());
  WriteFile(d / "out.img", a.bytes);
  MustRun("cmp " + d / "out.img" + " " + new_image);  // cmp: the oracle
  CHECK(a.patch_bytes_read == patch_size);
}

// A 2 MiB base of random bytes; a target with spans replaced all along it and 300 KB
// appended; the patch between them in small segments, so that there are many (18).
struct SmallPatch {
  osu::test::bundle::Fixture f;
  osu::test::TempDir d;
  std::string base = d / "base.img", target = d / "target.img", patch = d / "p.delta";
  osu::PatchExpectation good;
  std::string full;  // the patch's bytes
  static constexpr uint32_t kSegment = 128u << 10;

  SmallPatch() {
    std::string bytes = osu::test::bundle::RandomBytes(2u << 20, 11);
    WriteFile(base, bytes);
    for (size_t at = 0; at < bytes.size(); at += 300000) {
      bytes.replace(at, 2000, osu::test::bundle::RandomBytes(2000, static_cast<unsigned>(at)));
    }
    WriteFile(target, bytes + osu::test::bundle::RandomBytes(300000, 12));
    osu::PatchOptions options;
    options.segment_size = kSegment;
    auto made = osu::CreatePatch(base, target, f.key, patch, options);
    INFO((made ? "" : made.error().message()));
    REQUIRE(made.ok());
    good = Expect(base, target, f.pub);
    full = ReadFile(patch);
    REQUIRE(Apply(base, patch, good).bytes == ReadFile(target));
  }
};

TEST_CASE("patch: for another base, another target or by another key: refused at the header") {
  SmallPatch s;
  auto& [f, d, base, target, patch, good, full] = s;
  const std::string other = d / "other.img";
  WriteFile(other, osu::test::bundle::RandomBytes(2u << 20, 10));

  SECTION("the device holds another base") {
    Applied a = Apply(other, patch, Expect(other, target, f.pub));
    CHECK_FALSE(a.opened);
    CHECK(a.kind == osu::ErrorKind::Verification);
    CHECK(a.error.find("patch is for base image " + good.base_sha256.substr(0, 16)) !=
          std::string::npos);
    CHECK(a.error.find(patch) != std::string::npos);
    CHECK(a.patch_bytes_read < 1024);  // the fixed header only
  }
  SECTION("the bundle's image is another") {
    osu::PatchExpectation e = good;
    e.target_sha256 = Sha256OfFile(other);
    Applied a = Apply(base, patch, e);
    CHECK_FALSE(a.opened);
    CHECK(a.error.find("patch makes image") != std::string::npos);
    CHECK(a.patch_bytes_read < 1024);
  }
  SECTION("signed by a key the device does not trust") {
    osu::PatchExpectation e = good;
    e.keys = {f.other_pub};
    Applied a = Apply(base, patch, e);
    CHECK_FALSE(a.opened);
    CHECK(a.kind == osu::ErrorKind::Verification);
    CHECK(a.error.find("patch signature") != std::string::npos);
  }
  SECTION("a segment hash in the header altered") {
    std::string p = ReadFile(patch);
    const size_t first_entry_hash = 172 + 4;
    p[first_entry_hash] = p[first_entry_hash] == 'a' ? 'b' : 'a';
    WriteFile(patch, p);
    Applied a = Apply(base, patch, good);
    CHECK_FALSE(a.opened);
    CHECK(a.error.find("patch signature") != std::string::npos);
  }
  SECTION("a base file shorter than the image") {
    WriteFile(d / "short.img", ReadFile(base).substr(0, 1u << 20));
    Applied a = Apply(d / "short.img", patch, good);
    CHECK_FALSE(a.opened);
    CHECK(a.error.find("slot B is 1048576 bytes, smaller than the base image's 2097152") !=
          std::string::npos);
  }
}

TEST_CASE("patch: the base slot at an offset inside a disk (not page-aligned), as fake devices keep it") {
  SmallPatch s;
  auto& [f, d, base, target, patch, good, full] = s;
  const std::string disk = d / "disk.img";
  const uint64_t offset = (1u << 20) + 512;  // a partition starting at a sector, not a page
  WriteFile(disk, osu::test::bundle::RandomBytes(offset, 3) + ReadFile(base) +
                      osu::test::bundle::RandomBytes(4096, 4));
  Applied a = Apply(disk, patch, good, offset);
  INFO(a.error);
  REQUIRE(a.error.empty());
  CHECK(a.bytes == ReadFile(target));
  // Another offset is another base: refused at the first segment, no wrong byte.
  Applied wrong = Apply(disk, patch, good, offset - 512);
  CHECK(wrong.kind == osu::ErrorKind::Verification);
  CHECK(wrong.error.find("segment 0") != std::string::npos);
  CheckOnlyTrueBytes(wrong, target);
}

TEST_CASE("patch: truncated, tampered, with trailing bytes, or on a changed base: an error, no wrong byte") {
  SmallPatch s;
  auto& [f, d, base, target, patch, good, full] = s;
  const size_t table_end = 172 + 68 * ((good.target_size + s.kSegment - 1) / s.kSegment);

  SECTION("truncated anywhere") {
    // In the header, its table, its signature, a frame, before the last frame, 1 byte short.
    for (size_t cut : {size_t{100}, size_t{200}, table_end + 10, full.size() / 2,
                       full.size() - 40, full.size() - 1}) {
      INFO("cut at " << cut << " of " << full.size());
      WriteFile(patch, full.substr(0, cut));
      Applied a = Apply(base, patch, good);
      CHECK(a.kind == osu::ErrorKind::Verification);
      CHECK(a.error.find("truncated") != std::string::npos);
      if (a.opened) CheckOnlyTrueBytes(a, target);
    }
  }
  SECTION("a byte of a frame altered") {
    for (size_t at : {full.size() / 2, full.size() - 10}) {
      std::string p = full;
      p[at] = static_cast<char>(p[at] ^ 0x40);
      WriteFile(patch, p);
      Applied a = Apply(base, patch, good);
      INFO(a.error);
      REQUIRE(a.opened);
      CHECK(a.kind == osu::ErrorKind::Verification);
      CHECK(a.error.find("segment ") != std::string::npos);
      CheckOnlyTrueBytes(a, target);
    }
  }
  SECTION("trailing bytes") {
    WriteFile(patch, full + "x");
    Applied a = Apply(base, patch, good);
    CHECK(a.error.find("trailing bytes") != std::string::npos);
  }
  SECTION("the base slot changed since its record was written") {
    std::string changed = ReadFile(base);
    changed[1000000] = static_cast<char>(changed[1000000] ^ 1);
    WriteFile(base, changed);
    Applied a = Apply(base, patch, good);
    REQUIRE(a.opened);
    CHECK(a.error.find("sha256 mismatch") != std::string::npos);
    CheckOnlyTrueBytes(a, target);
  }
}

TEST_CASE("patch: a header whose image size is near 2^64 needs its segments (no wrap to 0)") {
  // Caught by fuzz_patch_header's coverage property: regressions/fuzz_patch_header/.
  osu::delta::PatchHeader h;
  h.segment_size = osu::delta::kMinSegment;
  h.base_size = 1;
  h.target_size = UINT64_MAX;
  h.base_sha256 = h.target_sha256 = std::string(64, 'a');
  CHECK(osu::delta::SegmentCount(h.target_size, h.segment_size) == (uint64_t{1} << 48));
  uint32_t count = 1;
  auto parsed = osu::delta::ParseFixed(osu::delta::SerializeFixed(h), &count);  // 0 segments
  REQUIRE_FALSE(parsed);
  CHECK(parsed.error().message().find("0 segments do not cover an image of") != std::string::npos);
}

TEST_CASE("patch: os-update-bundle delta refuses bundles for other devices, and a missing key") {
  osu::test::bundle::Fixture f;
  const std::string old_bundle = f.Create("old.bundle", "zstd");
  auto args = f.CreateArgs(f.dir / "other.bundle", "zstd");
  *(std::find(args.begin(), args.end(), "--compatible") + 1) = "rpi4";
  args.insert(args.end(), {"--key", f.key});
  REQUIRE(RunBundle(args).code == 0);

  auto r = RunBundle({"delta", "--from", old_bundle, "--to", f.dir / "other.bundle", "--key",
                      f.key});
  osu::test::bundle::RequireRefused(r, "no device moves from one to the other",
                                    osu::cli::kExitUsage);
  r = RunBundle({"delta", "--from", old_bundle, "--to", old_bundle, "--key", f.dir / "none.pem"});
  osu::test::bundle::RequireRefused(r, "none.pem", osu::cli::kExitUsage);
  CHECK(MustRun("ls " + f.dir.path()).find("delta") == std::string::npos);
}

namespace {

using osu::test::blocks::Parse;
using osu::test::blocks::ParsedPatch;
using osu::test::blocks::Signed;

struct BlockImages {
  osu::test::bundle::Fixture f;
  osu::test::TempDir d;
  std::string base = d / "base.sqfs", target = d / "target.sqfs";
  uint64_t new_block = 0;  // compressed bytes of the new file's block: in any patch

  BlockImages() {
    const auto pair = osu::test::blocks::MakePair();
    WriteFile(base, pair.base);
    WriteFile(target, pair.target);
    new_block = pair.new_block;
  }

  std::string Patch(bool use_blocks, const std::string& name, double recompress_share = 1.0) {
    osu::PatchOptions options;
    options.segment_size = 1u << 20;
    options.blocks = use_blocks;
    options.recompress_share = recompress_share;
    const std::string out = d / name;
    auto made = osu::CreatePatch(base, target, f.key, out, options);
    INFO((made ? "" : made.error().message()));
    REQUIRE(made.ok());
    return out;
  }
};

}  // namespace

TEST_CASE("patch: zstd blocks that changed are carried uncompressed and compressed again (format 2)") {
  BlockImages s;
  const std::string blocks = s.Patch(true, "blocks.delta"), bytes = s.Patch(false, "bytes.delta");
  const ParsedPatch p = Parse(ReadFile(blocks));
  CHECK(p.h.format == osu::delta::kFormatBlocks);
  CHECK(Parse(ReadFile(bytes)).h.format == osu::delta::kFormat);
  size_t recompressed = 0, base_blocks = 0;
  for (const auto& e : p.h.segments) {
    recompressed += e.blocks.size();
    base_blocks += e.base_blocks.size();
    for (const auto& b : e.blocks) CHECK(b.level == 12);  // found, not assumed
  }
  // The three changed blocks; the new one stays compressed (nothing in the base is like it).
  CHECK(recompressed == 3);
  CHECK(base_blocks >= 3);   // the changed blocks' old versions, to copy from
  // The changed blocks' old content is reused: beside the new block, which both carry, a
  // fraction of the patch made of bytes.
  const uint64_t with = SizeOf(blocks), without = SizeOf(bytes);
  INFO("format 2: " << with << " bytes, format 1: " << without << ", new block " << s.new_block);
  REQUIRE(without > s.new_block);
  CHECK((with - s.new_block) * 4 < without - s.new_block);

  Applied a = Apply(s.base, blocks, Expect(s.base, s.target, s.f.pub));
  INFO(a.error);
  REQUIRE(a.error.empty());
  CHECK(a.bytes == ReadFile(s.target));
  // In a disk image at an offset that is not page-aligned (the decoded base blocks sit right
  // before the base in memory: its first page is then written copy-on-write, not the disk).
  const std::string disk = s.d / "disk.img";
  const uint64_t offset = (1u << 20) + 512;
  WriteFile(disk, osu::test::bundle::RandomBytes(offset, 3) + ReadFile(s.base));
  const std::string before = Sha256OfFile(disk);
  a = Apply(disk, blocks, Expect(s.base, s.target, s.f.pub), offset);
  REQUIRE(a.error.empty());
  CHECK(a.bytes == ReadFile(s.target));
  CHECK(Sha256OfFile(disk) == before);
}

TEST_CASE("patch: --recompress caps the block content the device compresses again") {
  BlockImages s;
  auto recompressed = [](const std::string& patch) {
    uint64_t n = 0;
    for (const auto& e : Parse(ReadFile(patch)).h.segments)
      for (const auto& b : e.blocks) n += b.content_size;
    return n;
  };
  const std::string all = s.Patch(true, "all.delta");
  const uint64_t every = recompressed(all);
  REQUIRE(every > 0);
  for (double share : {0.7, 0.4, 0.0}) {
    const std::string name = "share-" + std::to_string(share) + ".delta";
    const std::string patch = s.Patch(true, name, share);
    INFO("share " << share << ": " << recompressed(patch) << " of " << every << " bytes");
    CHECK(static_cast<double>(recompressed(patch)) <= share * static_cast<double>(every));
    CHECK(recompressed(patch) < every);
    CHECK(SizeOf(patch) > SizeOf(all));  // what the device is spared costs bytes
    // Nothing left to compress again: format 1, which every device reads.
    CHECK((Parse(ReadFile(patch)).h.format == osu::delta::kFormat) == (share == 0.0));
    Applied a = Apply(s.base, patch, Expect(s.base, s.target, s.f.pub));
    INFO(a.error);
    REQUIRE(a.error.empty());
    CHECK(a.bytes == ReadFile(s.target));
  }
}

TEST_CASE("patch: format 2 from a hostile builder or on another device: an error, no wrong byte") {
  BlockImages s;
  const std::string patch = s.Patch(true, "blocks.delta");
  const osu::PatchExpectation good = Expect(s.base, s.target, s.f.pub);
  ParsedPatch p = Parse(ReadFile(patch));
  auto first_with_blocks = [&]() -> osu::delta::SegmentEntry& {
    return osu::test::blocks::WithBlocks(p);
  };

  SECTION("a device whose zstd makes other bytes at that level") {
    first_with_blocks().blocks.front().level = 3;  // what another zstd version amounts to
    WriteFile(patch, Signed(p, s.f.key));
    Applied a = Apply(s.base, patch, good);
    REQUIRE(a.opened);
    CHECK(a.kind == osu::ErrorKind::Verification);
    CHECK(a.error.find("compresses otherwise than the builder's") != std::string::npos);
    CheckOnlyTrueBytes(a, s.target);
  }
  SECTION("a base block that is not a block of the base (another offset)") {
    first_with_blocks().base_blocks.front().offset += 1;
    WriteFile(patch, Signed(p, s.f.key));
    Applied a = Apply(s.base, patch, good);
    REQUIRE(a.opened);
    CHECK(a.kind == osu::ErrorKind::Verification);
    CHECK(a.error.find("base block at byte") != std::string::npos);
    CheckOnlyTrueBytes(a, s.target);
  }
  SECTION("records that do not describe the segment: refused at the header") {
    auto& e = first_with_blocks();
    SECTION("a block past the segment's end") { e.blocks.back().offset = e.decoded_length; }
    SECTION("blocks that overlap") {
      if (e.blocks.size() < 2) e.blocks.push_back(e.blocks.front());
      e.blocks[1].offset = e.blocks[0].offset;
    }
    SECTION("a level zstd does not have") { e.blocks.front().level = 99; }
    SECTION("a base block past the base's end") { e.base_blocks.front().offset = good.base_size; }
    SECTION("more decoded base blocks than a device holds (16 MiB)") {
      e.base_blocks.front().content_size = osu::delta::kMaxBlock;
      while (osu::delta::DecodedSize(e.base_blocks) <= osu::delta::kMaxBasePrefix) {
        e.base_blocks.push_back(e.base_blocks.front());
      }
    }
    SECTION("sizes that do not add up to the segment") { e.blocks.front().size += 1; }
    WriteFile(patch, Signed(p, s.f.key));
    Applied a = Apply(s.base, patch, good);
    CHECK_FALSE(a.opened);
    CHECK(a.kind == osu::ErrorKind::Verification);
    CHECK(a.error.find("patch segment") != std::string::npos);
  }
  SECTION("the base slot changed inside a block the patch decodes") {
    std::string base = ReadFile(s.base);
    const auto& b = first_with_blocks().base_blocks.front();
    base[b.offset + b.size / 2] = static_cast<char>(base[b.offset + b.size / 2] ^ 0x10);
    WriteFile(s.base, base);
    Applied a = Apply(s.base, patch, good);
    REQUIRE(a.opened);
    CHECK(a.kind == osu::ErrorKind::Verification);
    CheckOnlyTrueBytes(a, s.target);
  }
  SECTION("truncated in its block records") {
    const std::string full = ReadFile(patch);
    const size_t records_at =
        osu::delta::kFixedSize + p.h.segments.size() * osu::delta::kEntrySize2;
    WriteFile(patch, full.substr(0, records_at + 20));
    Applied a = Apply(s.base, patch, good);
    CHECK_FALSE(a.opened);
    CHECK(a.error.find("truncated in its block records") != std::string::npos);
  }
}

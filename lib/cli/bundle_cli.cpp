// os-update-bundle: the build-side command (create, inspect, verify and sign bundles).
#include <CLI/CLI.hpp>

#include <fcntl.h>

#include <istream>
#include <optional>
#include <ostream>

#include "bundle/bundle.hpp"
#include "bundle/checked_reader.hpp"
#include "bundle/content_rules.hpp"
#include "cli/bundle_tuf.hpp"
#include "cli/cli.hpp"
#include "common/fd.hpp"
#include "common/json.hpp"
#include "common/text.hpp"
#include "crypto/signature.hpp"
#include "delta/patch.hpp"
#include "bootpart/boot_partition.hpp"
#include "bootpart/factory_record.hpp"

namespace osu::cli {
namespace {

constexpr const char* kProgram = "os-update-bundle";

class IstreamReader final : public Reader {
 public:
  explicit IstreamReader(std::istream& in) : in_(in) {}
  Expected<size_t> Read(std::span<uint8_t> buf) override {
    in_.read(reinterpret_cast<char*>(buf.data()), static_cast<std::streamsize>(buf.size()));
    if (in_.bad()) return SourceError("Failed to read the bundle from stdin");
    return static_cast<size_t>(in_.gcount());
  }

 private:
  std::istream& in_;
};

// FILE or "-" (stdin). A bundle that is not there is a source error, as on the device.
Expected<std::unique_ptr<Reader>> OpenBundle(const std::string& path, const Streams& streams) {
  if (path == "-") return std::unique_ptr<Reader>(std::make_unique<IstreamReader>(streams.in));
  auto fd = Fd::Open(path, O_RDONLY);
  if (!fd) return SourceError(fd.error().message());
  return MakeFdReader(fd->Release(), true, "'" + path + "'");
}

// Names the image in errors of its decoder ("corrupt xz stream: ...") but leaves errors
// that came from below (the tar reader, the source) as they are: they name themselves.
class ImageErrorContext final : public Reader {
 public:
  class Below final : public Reader {
   public:
    explicit Below(Reader& inner) : inner_(inner) {}
    Expected<size_t> Read(std::span<uint8_t> buf) override {
      auto n = inner_.Read(buf);
      if (!n) failed = true;
      return n;
    }
    bool failed = false;

   private:
    Reader& inner_;
  };
  ImageErrorContext(Reader& decoded, const Below& below, std::string what)
      : decoded_(decoded), below_(below), what_(std::move(what)) {}
  Expected<size_t> Read(std::span<uint8_t> buf) override {
    auto n = decoded_.Read(buf);
    if (!n && !below_.failed) return n.error().Context(what_);
    return n;
  }

 private:
  Reader& decoded_;
  const Below& below_;
  std::string what_;
};

std::string Where(const std::string& path) { return path == "-" ? "stdin" : path; }

struct CreateArgs {
  CreateOptions options;
  std::string compression = "zstd";
  bool unsigned_ = false;
  std::string min_version;
};

Result RunCreate(CreateArgs& a) {
  if (a.options.private_key.empty() == !a.unsigned_) {
    return UsageError("create: give either --key PRIVATE.pem or --unsigned");
  }
  auto c = ParseCompression(a.compression);
  if (!c) return UsageError(c.error().message());
  a.options.compression = *c;
  if (!a.min_version.empty()) a.options.min_version = a.min_version;
  return CreateBundle(a.options);
}

// Shows the manifest, every field escaped; then, if a device would refuse the content, says
// why (the error, exit 2) after showing it.
Result RunInfo(const std::string& file, bool json, const Streams& s) {
  auto source = OpenBundle(file, s);
  if (!source) return source.error();
  auto b = BundleReader::OpenUnverified(**source, Where(file));
  if (!b) return b.error();
  const Manifest& m = (*b)->manifest();
  const bool is_signed = !(*b)->signature().empty();
  const Result content = CheckBundleContent(m);
  if (json) {
    auto entry = [](const FileEntry& e) {
      return Json::MakeObject().Set("name", e.name).Set("size", e.size).Set("sha256", e.sha256);
    };
    Json boot = Json::MakeArray();
    for (const auto& f : m.boot_files) boot.Push(entry(f));
    Json members = Json::MakeArray();
    members.Push(kManifestMember).Push(kSignatureMember);
    if (m.index) members.Push(m.index->name);
    if (m.dictionary) members.Push(m.dictionary->name);
    for (const auto& f : m.boot_files) members.Push(f.name);
    members.Push(m.image.name);
    Json o = Json::MakeObject();
    o.Set("bundle", Where(file)).Set("format", m.format).Set("compatible", m.compatible);
    o.Set("version", m.version);
    if (m.min_version) o.Set("min_version", *m.min_version);
    o.Set("cmdline", m.cmdline);
    o.Set("image", entry(m.image).Set("compression", CompressionName(m.compression)));
    o.Set("boot_files", std::move(boot)).Set("members", std::move(members));
    o.Set("signed", is_signed);
    if (is_signed) o.Set("signature_size", static_cast<uint64_t>((*b)->signature().size()));
    if (!content) o.Set("refused", content.error().message());
    s.out << o.Dump() << "\n";
    return content;
  }
  s.out << "bundle:      " << Printable(Where(file)) << "\n"
        << "format:      " << m.format << "\n"
        << "compatible:  " << Printable(m.compatible) << "\n"
        << "version:     " << Printable(m.version) << "\n"
        << "min_version: " << Printable(m.min_version.value_or("(none)")) << "\n"
        << "cmdline:     " << Printable(m.cmdline) << "\n"
        << "signature:   "
        << (is_signed ? "present (" + std::to_string((*b)->signature().size()) +
                            " bytes; check it with 'verify --key')"
                      : std::string("absent (unsigned)"))
        << "\n"
        << "members:\n"
        << "  " << kManifestMember << "\n"
        << "  " << kSignatureMember << "\n";
  for (const auto& f : m.boot_files) {
    s.out << "  " << Printable(f.name) << "  boot file, " << f.size << " bytes, sha256 "
          << f.sha256 << "\n";
  }
  s.out << "  " << Printable(m.image.name) << "  image, " << CompressionName(m.compression)
        << ", " << m.image.size << " bytes uncompressed, sha256 " << m.image.sha256 << "\n";
  return content;
}

// Everything the device would check, without a device: signature, every boot file, the
// decoded image's size and sha256, nothing after the image.
Result RunVerify(const std::string& file, const std::vector<std::string>& keys,
                 const Streams& s) {
  auto source = OpenBundle(file, s);
  if (!source) return source.error();
  auto b = BundleReader::Open(**source, Where(file), keys);
  if (!b) return b.error();
  if (auto r = CheckBundleContent((*b)->manifest()); !r)
    return r.error().Context(InQuotes(Where(file)));
  for (;;) {
    auto member = (*b)->NextBootFile();
    if (!member) return member.error();
    if (!*member) break;
    if (auto r = Drain(*(*member)->data); !r) return r;
  }
  auto image = (*b)->Image();
  if (!image) return image.error();
  const Manifest& m = (*b)->manifest();
  const std::string what = InQuotes(Where(file)) + ": image " + InQuotes(m.image.name);
  ImageErrorContext::Below raw(**image);
  auto decoder = MakeImageDecoder(**b, raw, 0);
  if (!decoder) return decoder.error().Context(what);
  ImageErrorContext decoded(**decoder, raw, what);
  auto checked = MakeCheckedReader(decoded, m.image.size, m.image.sha256, what);
  if (auto r = Drain(*checked); !r) return r;
  if (auto r = (*b)->Finish(); !r) return r;
  s.out << InQuotes(Where(file)) << " is a valid bundle: " << m.compatible << " version "
        << m.version << ", signed with '" << (*b)->key_used() << "'\n";
  return {};
}

Result RunManifest(const std::string& file, const Streams& s) {
  auto source = OpenBundle(file, s);
  if (!source) return source.error();
  auto b = BundleReader::OpenUnverified(**source, Where(file));
  if (!b) return b.error();
  s.out << (*b)->manifest_bytes();
  s.out.flush();
  return {};
}

Result RunSign(const std::string& file, const std::string& key, const std::string& sig_file,
               std::string output, const Streams& s) {
  if (key.empty() == sig_file.empty()) {
    return UsageError("sign: give either --key PRIVATE.pem or --signature SIG");
  }
  if (output.empty()) output = file;
  std::string signature;
  if (!key.empty()) {
    auto source = OpenBundle(file, s);
    if (!source) return source.error();
    auto b = BundleReader::OpenUnverified(**source, Where(file));
    if (!b) return b.error();
    auto sig = Sign((*b)->manifest_bytes(), key);
    if (!sig) return sig.error();
    signature = std::move(sig).value();
  } else {
    auto sig = ReadFile(sig_file, ErrorKind::Usage);
    if (!sig) return sig.error();
    signature = std::move(sig).value();
  }
  return AttachSignature(file, signature, output);
}

struct DeltaArgs {
  std::string from, to, key, output;
  PatchOptions options;
};

Result RunDelta(const DeltaArgs& a, const Streams& s) {
  auto written = CreateBundlePatch(a.from, a.to, a.key, a.output, a.options);
  if (!written) return written.error();
  s.out << InQuotes(*written) << ": patch from " << InQuotes(a.from) << " to " << InQuotes(a.to)
        << "\n";
  return {};
}

struct RecordArgs {
  FactoryRecordRequest request;
  std::string slot = "A";
  uint64_t size = 0;
};

Result RunRecord(RecordArgs& a, const Streams& s) {
  auto slot = ParseSlotLetter(a.slot);
  if (!slot) return UsageError("record: --slot must be A or B, not '" + a.slot + "'");
  a.request.slot = *slot;
  if (a.request.partition.empty()) {
    const SlotLabels labels;
    a.request.partition = *slot == SlotId::A ? labels.a : labels.b;
  }
  if (a.size) a.request.size = a.size;
  auto record = WriteFactoryRecord(a.request);
  if (!record) return record.error();
  s.out << BootPartition(a.request.boot_path).SlotDirectory(*slot) << "/record.yml: slot " << SlotName(*slot)
        << " verified, version " << record->version << ", " << record->size
        << " bytes, sha256 " << record->sha256 << ", " << record->boot_files.size()
        << " boot files; chunk list chunks.idx beside it\n";
  return {};
}

constexpr const char* kFooter = R"(Examples:
  os-update-bundle keygen --private signing.pem --public signing.pub.pem
  os-update-bundle create --image rootfs.img --compression xz --boot-file vmlinuz \
      --boot-file initrd.img --cmdline "console=ttyS0 quiet" --compatible eos-x86_64-kvm \
      --version 2.0.0 --key signing.pem --output update-2.0.0.bundle
  os-update-bundle info update-2.0.0.bundle
  os-update-bundle verify update-2.0.0.bundle --key signing.pub.pem
  os-update-bundle delta --from update-1.0.0.bundle --to update-2.0.0.bundle --key signing.pem
  os-update-bundle record --disk image.raw --slot A --boot-path esp --version 1.0.0 \
      --compatible eos-x86_64-kvm

Signing outside this tool (HSM, CI): create --unsigned, then
  os-update-bundle manifest b.bundle > manifest.yaml
  openssl pkeyutl -sign -rawin -inkey signing.pem -in manifest.yaml -out manifest.sig
  os-update-bundle sign b.bundle --signature manifest.sig --output b.signed.bundle

Exit codes: 0 ok, 1 usage, 2 verification failed, 3 source unreadable, 5 I/O error.)";

}  // namespace

int BundleMain(const std::vector<std::string>& args, const Streams& streams) {
  CLI::App app{"Create, sign, inspect and verify os-update bundles.", kProgram};
  app.require_subcommand(1);
  app.footer(kFooter);
  app.failure_message([](const CLI::App*, const CLI::Error& e) {
    return std::string(kProgram) + ": " + e.what() + " (see --help)\n";
  });

  std::function<Result()> action;

  CreateArgs create;
  auto* c = app.add_subcommand("create", "Build a bundle from a root image and boot files.");
  c->footer(
      "Example: os-update-bundle create --image rootfs.img --boot-file vmlinuz "
      "--boot-file initrd.img --cmdline 'console=ttyS0' --compatible eos-x86_64-kvm "
      "--version 2.0.0 --key signing.pem --output update.bundle");
  c->add_option("--image", create.options.image, "Uncompressed root file system image")
      ->required();
  c->add_option("--compression", create.compression, "Image compression")
      ->check(CLI::IsMember({"xz", "zstd", "gzip", "none"}))
      ->capture_default_str();
  c->add_option("--boot-file", create.options.boot_files,
                "Kernel, initrd, device tree, ... (repeatable; stored under its base name)");
  c->add_option("--cmdline", create.options.cmdline, "Kernel command line for the new slot");
  c->add_option("--compatible", create.options.compatible,
                "Device class that may install it, e.g. eos-x86_64-kvm")
      ->required();
  c->add_option("--version", create.options.version, "Version of this image, e.g. 2.0.0")
      ->required();
  c->add_option("--min-version", create.min_version,
                "Only devices already running at least this version may install it");
  auto* key_opt = c->add_option("--key", create.options.private_key, "PEM private key to sign with");
  c->add_flag("--unsigned", create.unsigned_, "Leave unsigned (sign later with 'sign')")
      ->excludes(key_opt);
  c->add_option("--output", create.options.output, "Bundle file to write")->required();
  c->add_option("--threads", create.options.encode.threads, "Compression threads (0 = all CPUs)");
  c->add_option("--level", create.options.encode.level, "Compression level (codec default)");
  c->add_flag("!--no-chunks", create.options.chunks,
              "One zstd stream, no chunk index: devices always download the whole bundle "
              "(chunks and index are made only with zstd)");
  c->add_option("--chunk-size", create.options.chunk_avg,
                "Average chunk size in bytes, a power of two (default 16384; min/max a quarter "
                "and four times it)");
  c->add_option("--dictionary-size", create.options.dictionary_size,
                "With chunks: a zstd dictionary of at most this many bytes, trained from the "
                "image, for every chunk (0 = none)")
      ->capture_default_str();
  c->add_option("--chunk-window", create.options.chunk_window,
                "With chunks: bytes of the image before a chunk that its frame may refer to "
                "(format 4: 115% of an xz bundle on a 1 GiB ext4, not 150%; level 9 unless "
                "--level). "
                "0 = independent frames (format 2) for devices whose os-update reads formats "
                "1-3 only; needed for --dictionary-size. At most 8388608")
      ->capture_default_str();
  c->add_option("--chunk-refs", create.options.chunk_refs,
                "With a chunk window: earlier chunks (found by content) that a frame may refer "
                "to besides the window, 0-2, default 2 (format 5: 10% smaller on a 1 GiB "
                "ext4); 0 = format 4 for devices whose os-update reads formats 1-4 only");
  c->callback([&] { action = [&] { return RunCreate(create); }; });

  std::string file;
  bool json = false;
  auto* info = app.add_subcommand("info", "Show a bundle's manifest and members (no key needed).");
  info->footer("Example: os-update-bundle info update.bundle --json");
  info->add_option("FILE", file, "Bundle file, or - for stdin")->required();
  info->add_flag("--json", json, "One JSON object");
  info->callback([&] { action = [&] { return RunInfo(file, json, streams); }; });

  std::vector<std::string> keys;
  auto* verify = app.add_subcommand(
      "verify", "Check the signature and every member, as a device would (exit 2 if invalid).");
  verify->footer("Example: os-update-bundle verify update.bundle --key signing.pub.pem");
  verify->add_option("FILE", file, "Bundle file, or - for stdin")->required();
  verify->add_option("--key", keys, "PEM public key (repeatable: any one may match)")->required();
  verify->callback([&] { action = [&] { return RunVerify(file, keys, streams); }; });

  auto* manifest = app.add_subcommand(
      "manifest", "Print the exact manifest bytes, to sign them with another tool.");
  manifest->footer("Example: os-update-bundle manifest update.bundle > manifest.yaml");
  manifest->add_option("FILE", file, "Bundle file, or - for stdin")->required();
  manifest->callback([&] { action = [&] { return RunManifest(file, streams); }; });

  std::string sign_key, sig_file, output;
  auto* sign = app.add_subcommand("sign", "Sign a bundle with a key, or attach a signature.");
  sign->footer(
      "Examples: os-update-bundle sign update.bundle --key signing.pem\n"
      "          os-update-bundle sign update.bundle --signature manifest.sig --output "
      "signed.bundle");
  sign->add_option("FILE", file, "Bundle file")->required();
  auto* sk = sign->add_option("--key", sign_key, "PEM private key to sign with");
  sign->add_option("--signature", sig_file, "Detached signature of the manifest (raw bytes)")
      ->excludes(sk);
  sign->add_option("--output", output, "Signed bundle to write (default: replace FILE)");
  sign->callback([&] {
    action = [&] { return RunSign(file, sign_key, sig_file, output, streams); };
  });

  DeltaArgs delta;
  auto* del = app.add_subcommand(
      "delta", "Write a patch turning OLD's image into NEW's, for devices that hold OLD.");
  del->footer(
      "Example: os-update-bundle delta --from update-1.0.0.bundle --to update-2.0.0.bundle "
      "--key signing.pem\n"
      "writes update-2.0.0.bundle.delta-<first 16 hex of 1.0.0's image sha256> beside NEW, "
      "where devices look for it.");
  del->add_option("--from", delta.from, "Bundle the devices hold (OLD)")->required();
  del->add_option("--to", delta.to, "Bundle to update to (NEW)")->required();
  del->add_option("--key", delta.key, "PEM private key to sign the patch with")->required();
  del->add_option("--output", delta.output, "Patch file (default: beside NEW, named for OLD)");
  del->add_option("--level", delta.options.level, "zstd level")->capture_default_str();
  del->add_option("--threads", delta.options.threads, "Compression threads (0 = all CPUs)");
  del->add_option("--segment-size", delta.options.segment_size,
                  "Bytes of the new image per frame: a device holds one (64 KiB-32 MiB)")
      ->capture_default_str();
  bool no_blocks = false;
  del->add_flag("--no-blocks", no_blocks,
                "Patch the image's zstd blocks (squashfs) as bytes, not by their content: "
                "patch format 1, which os-update before 2026-12 reads (larger for squashfs)");
  unsigned recompress = 75;
  del->add_option("--recompress", recompress,
                  "Format 2: at most this percentage of the changed zstd blocks' content is "
                  "compressed again by the device (its CPU); the blocks cheapest to carry "
                  "compressed go as they are (more bytes). 100: fewest bytes; 0: format 1")
      ->check(CLI::Range(0u, 100u))
      ->capture_default_str();
  del->callback([&] {
    delta.options.blocks = !no_blocks;
    delta.options.recompress_share = recompress / 100.0;
    action = [&] { return RunDelta(delta, streams); };
  });

  RecordArgs record;
  auto* rec = app.add_subcommand(
      "record", "Write the factory record of the slot an image build filled, as an install does.");
  rec->footer(
      "Example (KIWI: slot A, its boot files copied out of the ESP to esp/osu/A/):\n"
      "  os-update-bundle record --disk image.raw --slot A --boot-path esp --version 1.0.0 \\\n"
      "      --compatible eos-x86_64-kvm --cmdline 'console=ttyS0 ro'\n"
      "Then copy esp/osu/A/chunks.idx (the slot's chunk list: the first partial fetch need not\n"
      "read the slot) and esp/osu/A/record.yml back onto the boot partition.");
  rec->add_option("--disk", record.request.disk, "The built disk image (or disk device)")
      ->required();
  rec->add_option("--slot", record.slot, "A or B")->capture_default_str();
  rec->add_option("--partition", record.request.partition,
                  "PARTLABEL of the slot (default: p.lxreadonly for A, p.lxrootclone1 for B)");
  rec->add_option("--boot-path", record.request.boot_path,
                  "Directory holding the boot partition's osu/<SLOT>/ with the slot's boot files; "
                  "the record is written there")
      ->required();
  rec->add_option("--version", record.request.version, "Version of the image in the slot")
      ->required();
  rec->add_option("--compatible", record.request.compatible,
                  "Device class, as in its /etc/os-update.yml")
      ->required();
  rec->add_option("--cmdline", record.request.cmdline, "The slot's kernel command line");
  rec->add_option("--size", record.size,
                  "Image bytes (default: the squashfs or ext2/3/4 size in the slot)");
  rec->callback([&] { action = [&] { return RunRecord(record, streams); }; });

  std::string priv, pub;
  auto* keygen = app.add_subcommand("keygen", "Make a new ed25519 signing key pair (PEM).");
  keygen->footer("Example: os-update-bundle keygen --private signing.pem --public signing.pub.pem");
  keygen->add_option("--private", priv, "Private key to write (kept by the builder)")->required();
  keygen->add_option("--public", pub, "Public key to write (installed on devices)")->required();
  keygen->callback([&] { action = [&] { return GenerateKeyPair(priv, pub); }; });

  TufArgs tuf_args;
  AddTufCommands(app, tuf_args, action, streams);

  std::vector<const char*> argv;
  for (const auto& a : args) argv.push_back(a.c_str());
  if (argv.empty()) argv.push_back(kProgram);
  try {
    app.parse(static_cast<int>(argv.size()), argv.data());
  } catch (const CLI::ParseError& e) {
    return app.exit(e, streams.out, streams.err) == 0 ? kExitOk : kExitUsage;
  }
  Result r = action ? action() : Result(UsageError("no subcommand"));
  if (!r) {
    // Escaped again as a whole (a no-op on text escaped where it entered): one line, always.
    streams.err << kProgram << ": " << Printable(r.error().message()) << "\n";
    return ExitCode(r.error());
  }
  return kExitOk;
}

}  // namespace osu::cli

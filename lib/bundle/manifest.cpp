// The manifest is YAML, written by SerializeManifest in exactly this layout (keys in this
// order, strings double-quoted, min_version only when set) so that the signed bytes are
// deterministic for the same inputs:
//
//   format: 1
//   compatible: "eos-x86_64-kvm"
//   version: "2.0.0"
//   min_version: "1.0.0"
//   cmdline: "console=ttyS0 quiet"
//   image: {name: "rootfs.img.xz", compression: xz, size: 1073741824, sha256: "<64 hex>"}
//   boot_files:
//     - {name: "vmlinuz", size: 123, sha256: "<64 hex>"}
//   index: {name: "rootfs.img.zst.index", size: 4096, sha256: "<64 hex>"}   (format 2 to 4)
//   dictionary: {name: "rootfs.img.zst.dict", size: 1048576, sha256: "<64 hex>"}   (format 3)
//
// ParseManifest accepts any YAML with these keys (block or flow style), and nothing else:
// the manifest is signed data, so an unknown or duplicated key is an error, not ignored.
#include "bundle/manifest.hpp"

#include "common/text.hpp"

#include <yaml-cpp/yaml.h>

#include <charconv>
#include <cstdio>
#include <set>

namespace osu {
namespace {

Error Bad(const std::string& what) { return VerificationError("manifest: " + what); }

// Rejects keys we do not know and keys given twice (yaml-cpp keeps the first silently).
Result CheckKeys(const YAML::Node& map, const std::string& where,
                 const std::set<std::string>& known) {
  std::set<std::string> seen;
  for (const auto& kv : map) {
    if (!kv.first.IsScalar()) return Bad(where + " has a key that is not a string");
    const std::string key = kv.first.Scalar();
    const std::string path = where.empty() ? key : where + "." + key;
    if (!known.count(key)) return Bad("unknown key " + InQuotes(path));
    if (!seen.insert(key).second) return Bad("duplicate key " + InQuotes(path));
  }
  return {};
}

Expected<YAML::Node> Required(const YAML::Node& map, const std::string& key,
                              const std::string& path) {
  YAML::Node n = map[key];
  if (!n.IsDefined() || n.IsNull()) return Bad("missing required key '" + path + "'");
  return n;
}

Expected<std::string> String(const YAML::Node& map, const std::string& key,
                             const std::string& path) {
  auto n = Required(map, key, path);
  if (!n) return n.error();
  if (!n->IsScalar()) return Bad(path + " is not a string");
  return n->Scalar();
}

Expected<uint64_t> Unsigned(const YAML::Node& map, const std::string& key,
                            const std::string& path) {
  auto s = String(map, key, path);
  if (!s) return s.error();
  uint64_t v = 0;
  const char* end = s->data() + s->size();
  auto [p, ec] = std::from_chars(s->data(), end, v);
  if (s->empty() || ec != std::errc() || p != end) {
    return Bad(path + " is not an unsigned integer: " + InQuotes(*s));
  }
  return v;
}

Expected<std::string> HexDigest(const YAML::Node& map, const std::string& key,
                                const std::string& path) {
  auto s = String(map, key, path);
  if (!s) return s.error();
  if (s->size() != 64) return Bad(path + " is not 64 hex digits");
  for (char& c : *s) {
    if (c >= 'A' && c <= 'F') c = static_cast<char>(c - 'A' + 'a');
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
      return Bad(path + " is not 64 hex digits");
    }
  }
  return s;
}

Expected<FileEntry> Entry(const YAML::Node& node, const std::string& path, bool with_compression) {
  if (!node.IsMap()) return Bad(path + " is not a mapping");
  std::set<std::string> known{"name", "size", "sha256"};
  if (with_compression) known.insert("compression");
  if (auto r = CheckKeys(node, path, known); !r) return r.error();
  FileEntry e;
  auto name = String(node, "name", path + ".name");
  if (!name) return name.error();
  e.name = *name;
  auto size = Unsigned(node, "size", path + ".size");
  if (!size) return size.error();
  e.size = *size;
  auto sha = HexDigest(node, "sha256", path + ".sha256");
  if (!sha) return sha.error();
  e.sha256 = *sha;
  return e;
}

// A YAML double-quoted scalar: escapes quotes, backslashes and control characters, so that
// any string round-trips byte for byte.
std::string Quote(const std::string& s) {
  std::string out = "\"";
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

std::string EntryLine(const FileEntry& e, const std::string& compression) {
  std::string s = "{name: " + Quote(e.name);
  if (!compression.empty()) s += ", compression: " + compression;
  return s + ", size: " + std::to_string(e.size) + ", sha256: " + Quote(e.sha256) + "}";
}

Expected<Manifest> Parse(const YAML::Node& root) {
  if (!root.IsMap()) return Bad("not a YAML mapping");
  if (auto r = CheckKeys(root, "", {"format", "compatible", "version", "min_version", "cmdline",
                                    "image", "boot_files", "index", "dictionary"});
      !r) {
    return r.error();
  }
  Manifest m;
  auto format = Unsigned(root, "format", "format");
  if (!format) return format.error();
  if (*format < static_cast<uint64_t>(kManifestFormat) ||
      *format > static_cast<uint64_t>(kManifestFormatRefs)) {
    return Bad("unsupported format " + std::to_string(*format) + " (this os-update reads formats " +
               std::to_string(kManifestFormat) + " to " +
               std::to_string(kManifestFormatRefs) + ")");
  }
  m.format = static_cast<int>(*format);
  m.windowed = m.format == kManifestFormatWindow || m.format == kManifestFormatRefs;
  m.referenced = m.format == kManifestFormatRefs;

  auto compatible = String(root, "compatible", "compatible");
  if (!compatible) return compatible.error();
  m.compatible = *compatible;

  auto version = String(root, "version", "version");
  if (!version) return version.error();
  m.version = *version;

  // An explicit null ("min_version: ~") means the same as a missing key.
  if (YAML::Node n = root["min_version"]; n.IsDefined() && !n.IsNull()) {
    auto min = String(root, "min_version", "min_version");
    if (!min) return min.error();
    m.min_version = *min;
  }

  auto cmdline = String(root, "cmdline", "cmdline");
  if (!cmdline) return cmdline.error();
  m.cmdline = *cmdline;

  auto image_node = Required(root, "image", "image");
  if (!image_node) return image_node.error();
  auto image = Entry(*image_node, "image", true);
  if (!image) return image.error();
  m.image = *image;
  auto compression_name = String(*image_node, "compression", "image.compression");
  if (!compression_name) return compression_name.error();
  auto compression = ParseCompression(*compression_name);
  if (!compression) return Bad("image.compression: " + compression.error().message());
  m.compression = *compression;

  auto boot = Required(root, "boot_files", "boot_files");
  if (!boot) return boot.error();
  if (!boot->IsSequence()) return Bad("boot_files is not a list");
  for (size_t i = 0; i < boot->size(); ++i) {
    const std::string path = "boot_files[" + std::to_string(i) + "]";
    auto entry = Entry((*boot)[i], path, false);
    if (!entry) return entry.error();
    m.boot_files.push_back(*entry);
  }

  const bool has_index = root["index"].IsDefined() && !root["index"].IsNull();
  if (has_index != (m.format >= kManifestFormatIndexed))
    return Bad(has_index ? "index needs format 2 to 5" : "formats 2 to 5 need an index");
  const bool has_dictionary = root["dictionary"].IsDefined() && !root["dictionary"].IsNull();
  if (has_dictionary != (m.format == kManifestFormatDictionary))
    return Bad(has_dictionary ? "dictionary needs format 3" : "format 3 needs a dictionary");
  if (has_dictionary) {
    auto dictionary = Entry(root["dictionary"], "dictionary", false);
    if (!dictionary) return dictionary.error();
    m.dictionary = *dictionary;
  }
  if (has_index) {
    auto index = Entry(root["index"], "index", false);
    if (!index) return index.error();
    if (m.compression != Compression::Zstd) return Bad("an index needs image.compression zstd");
    m.index = *index;
  }
  return m;
}

}  // namespace

Expected<Manifest> ParseManifest(const std::string& yaml) {
  try {
    return Parse(YAML::Load(yaml));
  } catch (const YAML::Exception& e) {
    return Bad(Printable(e.what()));
  }
}

std::string SerializeManifest(const Manifest& m) {
  std::string s;
  const int format = m.dictionary ? kManifestFormatDictionary
                     : m.referenced ? kManifestFormatRefs
                     : m.windowed   ? kManifestFormatWindow
                     : m.index      ? kManifestFormatIndexed
                                    : kManifestFormat;
  s += "format: " + std::to_string(format) + "\n";
  s += "compatible: " + Quote(m.compatible) + "\n";
  s += "version: " + Quote(m.version) + "\n";
  if (m.min_version) s += "min_version: " + Quote(*m.min_version) + "\n";
  s += "cmdline: " + Quote(m.cmdline) + "\n";
  s += "image: " + EntryLine(m.image, CompressionName(m.compression)) + "\n";
  if (m.boot_files.empty()) {
    s += "boot_files: []\n";
  } else {
    s += "boot_files:\n";
    for (const auto& f : m.boot_files) s += "  - " + EntryLine(f, "") + "\n";
  }
  if (m.index) s += "index: " + EntryLine(*m.index, "") + "\n";
  if (m.dictionary) s += "dictionary: " + EntryLine(*m.dictionary, "") + "\n";
  return s;
}

}  // namespace osu

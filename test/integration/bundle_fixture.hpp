// Shared by the bundle tests: real keys from openssl, a small root image and boot files, a
// way to forge bundles signed with the real key, and a source that fails like a network.
#pragma once

#include <fcntl.h>

#include <catch2/catch.hpp>
#include <algorithm>
#include <cstring>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "bundle/bundle.hpp"
#include "cli/cli.hpp"
#include "crypto/signature.hpp"
#include "support/support.hpp"

namespace osu::test::bundle {

inline std::string RandomBytes(size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng() % 7 == 0 ? 0 : rng());  // compresses a little
  return s;
}

// Keys from openssl itself, and a root image with two boot files.
struct Fixture {
  osu::test::TempDir dir;
  std::string key = dir / "signing.pem", pub = dir / "signing.pub.pem";
  std::string other_pub = dir / "other.pub.pem";
  std::string rootfs = dir / "rootfs.img", vmlinuz = dir / "vmlinuz", initrd = dir / "initrd.img";

  Fixture() {
    osu::test::RequireTool("openssl");
    MustRun("openssl genpkey -algorithm ed25519 -out " + key);
    MustRun("openssl pkey -in " + key + " -pubout -out " + pub);
    MustRun("openssl genpkey -algorithm ed25519 -out " + dir / "other.pem");
    MustRun("openssl pkey -in " + dir / "other.pem" + " -pubout -out " + other_pub);
    WriteFile(rootfs, RandomBytes(3u << 20, 1));
    WriteFile(vmlinuz, RandomBytes(70000, 2));
    WriteFile(initrd, RandomBytes(1234, 3));
  }

  std::vector<std::string> CreateArgs(const std::string& out, const std::string& compression) {
    return {"create", "--image", rootfs, "--compression", compression, "--boot-file", vmlinuz,
            "--boot-file", initrd, "--cmdline", "console=ttyS0 quiet", "--compatible",
            "eos-x86_64-kvm", "--version", "2.0.0", "--min-version", "1.0.0", "--output", out};
  }
  std::string Create(const std::string& name, const std::string& compression = "xz",
                     const std::vector<std::string>& extra = {}) {
    auto args = CreateArgs(dir / name, compression);
    args.insert(args.end(), {"--key", key});
    args.insert(args.end(), extra.begin(), extra.end());
    auto r = RunBundle(args);
    INFO(r.err);
    REQUIRE(r.code == 0);
    return dir / name;
  }
};

// os-update-bundle verify: exit code and its one stderr line.
inline osu::test::MainResult Verify(const std::string& bundle, const std::string& pub) {
  return RunBundle({"verify", bundle, "--key", pub});
}

inline void RequireRefused(const osu::test::MainResult& r, const std::string& message_part,
                    int code = osu::cli::kExitVerification) {
  INFO("stderr: " << r.err);
  CHECK(r.code == code);
  CHECK(r.err.rfind("os-update-bundle: ", 0) == 0);
  CHECK(r.err.find(message_part) != std::string::npos);
  CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
}

inline std::string ManifestOf(const std::string& bundle) {
  return MustRun("tar -xOf " + bundle + " manifest.yaml");
}

// A bundle written member by member, the manifest signed with a real key: what an attacker
// with the key, or a buggy build script, could produce.
inline void Forge(const std::string& path, const std::string& manifest, const std::string& key,
           const std::vector<std::pair<std::string, std::string>>& members) {
  auto w = osu::BundleWriter::Create(path);
  REQUIRE(w.ok());
  auto sig = osu::Sign(manifest, key);
  REQUIRE(sig.ok());
  REQUIRE((*w)->AddBytes("manifest.yaml", manifest).ok());
  REQUIRE((*w)->AddBytes("manifest.sig", *sig).ok());
  for (const auto& [name, data] : members) REQUIRE((*w)->AddBytes(name, data).ok());
  REQUIRE((*w)->Close().ok());
}

inline std::string Replace(std::string s, const std::string& from, const std::string& to) {
  auto pos = s.find(from);
  REQUIRE(pos != std::string::npos);
  return s.replace(pos, from.size(), to);
}

// A source that fails like a dropped connection after `limit` bytes.
class FailingReader final : public osu::Reader {
 public:
  FailingReader(std::string data, size_t limit) : data_(std::move(data)), limit_(limit) {}
  osu::Expected<size_t> Read(std::span<uint8_t> buf) override {
    if (pos_ >= limit_) return osu::SourceError("Connection reset while reading 'http://x/b'");
    size_t n = std::min({buf.size(), limit_ - pos_, data_.size() - pos_});
    std::memcpy(buf.data(), data_.data() + pos_, n);
    pos_ += n;
    return n;
  }

 private:
  std::string data_;
  size_t limit_, pos_ = 0;
};

inline std::string ReadAll(osu::Reader& r) {
  std::string out;
  std::vector<uint8_t> buf(100000);
  for (;;) {
    auto n = r.Read(buf);
    REQUIRE(n.ok());
    if (*n == 0) return out;
    out.append(reinterpret_cast<const char*>(buf.data()), *n);
  }
}

}  // namespace osu::test::bundle

// Sources as a user meets them: paths, file://, stdin, and http(s) against a real nginx,
// including connections cut mid-transfer (reset or closed, with and without a length, chunked)
// that must be resumed, or started over, without ever joining two versions of a file.
#include "source/source.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "support/fault_proxy.hpp"
#include "support/nginx.hpp"
#include "support/support.hpp"

namespace osu {
namespace {

using test::FaultProxy;
using test::FaultProxyOptions;
using test::Framing;
using test::TempDir;

Expected<std::string> ReadAll(const std::string& uri, const SourceOptions& options = {}) {
  auto reader = OpenSource(uri, options);
  if (!reader) return reader.error();
  std::string out;
  std::vector<uint8_t> buf(100003);  // odd size: reads do not line up with curl's chunks
  for (;;) {
    auto n = (*reader)->Read(buf);
    if (!n) return n.error();
    if (*n == 0) return out;
    out.append(reinterpret_cast<const char*>(buf.data()), *n);
  }
}

void MakeRandomFile(const std::string& path, size_t bytes) {
  test::MustRun("head -c " + std::to_string(bytes) + " /dev/urandom > '" + path + "'");
}

// Last modified long ago: its ETag and Last-Modified are strong validators (60 s before Date).
void MakeSettledFile(const std::string& path, size_t bytes) {
  MakeRandomFile(path, bytes);
  test::MustRun("touch -d @1577836800 '" + path + "'");  // 2020-01-01 00:00:00 UTC
}

// Replaces `path` with other bytes of the same size and the same mtime: nginx's ETag
// (mtime in seconds, size) and Last-Modified stay the same. For the proxy's on_cut.
void ReplaceKeepingValidators(const std::string& path) {
  test::Run("f='" + path + "' && head -c $(stat -c %s \"$f\") /dev/urandom > \"$f.new\" && "
            "touch -r \"$f\" \"$f.new\" && mv \"$f.new\" \"$f\"");
}

// Reads the first `bytes` of a source and stops, as --check does.
Expected<std::string> ReadPrefix(const std::string& uri, const SourceOptions& options, size_t bytes) {
  auto reader = OpenSource(uri, options);
  if (!reader) return reader.error();
  std::string out;
  std::vector<uint8_t> buf(4096);
  while (out.size() < bytes) {
    auto n = (*reader)->Read(std::span<uint8_t>(buf.data(), std::min(buf.size(), bytes - out.size())));
    if (!n) return n.error();
    if (*n == 0) break;
    out.append(reinterpret_cast<const char*>(buf.data()), *n);
  }
  return out;
}


// Hashes what the source delivered and the original with sha256sum, the oracle.
void RequireSameFile(const std::string& original, const std::string& data) {
  TempDir tmp;
  test::WriteFile(tmp / "got", data);
  REQUIRE(test::Sha256OfFile(tmp / "got") == test::Sha256OfFile(original));
}

SourceOptions LocalOptions(std::vector<std::string>* log = nullptr) {
  ::setenv("no_proxy", "127.0.0.1,localhost", 1);  // the tests talk to 127.0.0.1 only
  SourceOptions o;
  o.connect_timeout_s = 5;
  o.low_speed_time_s = 10;
  if (log) o.log = [log](const std::string& e) { log->push_back(e); };
  return o;
}

std::string Joined(const std::vector<std::string>& lines) {
  std::string s;
  for (const auto& l : lines) s += l + "\n";
  return s;
}

}  // namespace

TEST_CASE("A path or a file:// URL reads the file", "[source]") {
  TempDir dir;
  test::WriteFile(dir / "my bundle.osu", "bundle bytes");
  for (const std::string& uri : {dir / "my bundle.osu", "file://" + (dir / "my bundle.osu"),
                                 "file://" + dir.path() + "/my%20bundle.osu",
                                 "file://localhost" + (dir / "my bundle.osu")}) {
    INFO(uri);
    auto data = ReadAll(uri);
    REQUIRE(data.ok());
    CHECK(*data == "bundle bytes");
  }
  CHECK(DescribeSource("file://" + (dir / "x.osu")) == dir / "x.osu");
  CHECK(DescribeSource(dir / "x.osu") == dir / "x.osu");
}

TEST_CASE("A missing bundle is a Source error naming the path", "[source]") {
  TempDir dir;
  for (const std::string& uri : {dir / "nope.osu", "file://" + (dir / "nope.osu")}) {
    auto r = OpenSource(uri, {});
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().kind() == ErrorKind::Source);
    CHECK(r.error().message() == "bundle '" + (dir / "nope.osu") + "' not found: No such file or directory");
  }
}

TEST_CASE("A directory is not a bundle", "[source]") {
  TempDir dir;
  auto r = OpenSource(dir.path(), {});
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().kind() == ErrorKind::Source);
  CHECK(r.error().message() == "bundle '" + dir.path() + "' is a directory");
}

TEST_CASE("Standard input: '-' and fd readers over a pipe", "[source]") {
  CHECK(DescribeSource("-") == "standard input");
  auto stdin_reader = OpenSource("-", {});
  REQUIRE(stdin_reader.ok());  // not read: the test's stdin is not ours

  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  std::string sent(200000, 'x');
  for (size_t i = 0; i < sent.size(); ++i) sent[i] = static_cast<char>('a' + i % 26);
  std::thread writer([&] {
    size_t off = 0;
    while (off < sent.size()) {
      ssize_t n = ::write(fds[1], sent.data() + off, sent.size() - off);
      if (n <= 0) break;
      off += static_cast<size_t>(n);
    }
    ::close(fds[1]);
  });
  auto reader = MakeFdReader(fds[0], true, "standard input");
  std::string got;
  std::vector<uint8_t> buf(4096);
  for (;;) {
    auto n = reader->Read(buf);
    REQUIRE(n.ok());
    if (*n == 0) break;
    got.append(reinterpret_cast<const char*>(buf.data()), *n);
  }
  writer.join();
  CHECK(got == sent);
}

TEST_CASE("Unknown and unsupported schemes are usage errors", "[source]") {
  auto ftp = OpenSource("ftp://example.org/x.osu", {});
  REQUIRE_FALSE(ftp.ok());
  CHECK(ftp.error().kind() == ErrorKind::Usage);
  CHECK_THAT(ftp.error().message(), Catch::Contains("'ftp://'"));

  for (const char* bad : {"ssh://updates@example.org", "ssh://updates@example.org/",
                          "ssh://-oProxyCommand=x/a.raw.dev", "ssh://u@h:22x/a.raw.dev"}) {
    INFO(bad);
    auto ssh = OpenSource(bad, {});
    REQUIRE_FALSE(ssh.ok());
    CHECK(ssh.error().kind() == ErrorKind::Usage);
    CHECK_THAT(ssh.error().message(), Catch::Contains("ssh://[user@]host[:port]/NAME"));
  }
}

TEST_CASE("DescribeSource never shows credentials", "[source]") {
  CHECK(DescribeSource("https://fleet:s3cret@updates.example.org:8443/a.osu?x=1") ==
        "https://updates.example.org:8443/a.osu?x=1");
  CHECK(DescribeSource("http://user@10.0.0.1/a.osu") == "http://10.0.0.1/a.osu");
  CHECK(DescribeSource("http://10.0.0.1/a@b.osu") == "http://10.0.0.1/a@b.osu");
}

TEST_CASE("http: a download equals the file, also through a redirect", "[source][http]") {
  test::NginxServer nginx({.server_extra = "location = /old.osu { return 302 /bundle.osu; }"});
  // More than the 4 MiB the source buffers: the transfer must pause and resume.
  MakeRandomFile(nginx.root() + "/bundle.osu", 10 * 1024 * 1024 + 17);
  for (const char* path : {"/bundle.osu", "/old.osu"}) {
    INFO(path);
    auto data = ReadAll(nginx.Url(path), LocalOptions());
    REQUIRE(data.ok());
    RequireSameFile(nginx.root() + "/bundle.osu", *data);
  }
}

TEST_CASE("http: 404 and 500 are Source errors with the status", "[source][http]") {
  test::NginxServer nginx({.server_extra = "location = /broken.osu { return 500; }"});
  std::string url404 = nginx.Url("/missing.osu");
  auto missing = ReadAll(url404, LocalOptions());
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.error().kind() == ErrorKind::Source);
  CHECK(missing.error().message() == "HTTP 404 Not Found from '" + url404 + "'");

  std::vector<std::string> log;
  auto options = LocalOptions(&log);
  options.retries = 1;
  auto broken = ReadAll(nginx.Url("/broken.osu"), options);
  REQUIRE_FALSE(broken.ok());
  CHECK(broken.error().kind() == ErrorKind::Source);
  CHECK_THAT(broken.error().message(), Catch::Contains("HTTP 500"));
  INFO(Joined(log));
  REQUIRE(log.size() == 1);  // a 5xx is retried
  CHECK_THAT(log[0], Catch::StartsWith("retry 1/1 at byte 0: HTTP 500"));
}

TEST_CASE("https: verified with the given CA, refused without it", "[source][http]") {
  test::NginxServer nginx({.tls = true});
  MakeRandomFile(nginx.root() + "/bundle.osu", 300000);

  auto options = LocalOptions();
  options.ca_file = nginx.ca_file();
  auto good = ReadAll(nginx.Url("/bundle.osu"), options);
  REQUIRE(good.ok());
  RequireSameFile(nginx.root() + "/bundle.osu", *good);

  auto untrusted = ReadAll(nginx.Url("/bundle.osu"), LocalOptions());
  REQUIRE_FALSE(untrusted.ok());
  CHECK(untrusted.error().kind() == ErrorKind::Source);
  CHECK_THAT(untrusted.error().message(), Catch::Contains("certificate"));
}

TEST_CASE("http: read_window asks for a prefix, and for more only if the caller reads on",
          "[source][http]") {
  test::NginxServer nginx;
  const std::string file = nginx.root() + "/bundle.osu";
  MakeSettledFile(file, 3 * 1024 * 1024);
  auto options = LocalOptions();
  options.read_window = 65536;
  auto prefix = ReadPrefix(nginx.Url("/bundle.osu"), options, 65536);
  REQUIRE(prefix.ok());
  CHECK(*prefix == test::ReadFile(file).substr(0, 65536));
  // nginx's own count of body bytes sent is the oracle.
  CHECK(nginx.AccessLog() == "GET /bundle.osu 206 65536 range=bytes=0-65535 if_range=-\n");

  // Read on (a manifest larger than the window): growing ranges, each on the file's ETag.
  auto all = ReadAll(nginx.Url("/bundle.osu"), options);
  REQUIRE(all.ok());
  RequireSameFile(file, *all);
  const std::string log = nginx.AccessLog();
  INFO(log);
  CHECK_THAT(log, Catch::Contains("GET /bundle.osu 206 196608 range=bytes=65536-262143 if_range=\\x22"));
  CHECK_THAT(log, Catch::Contains("range=bytes=1048576-4194303 if_range=\\x22"));
}

TEST_CASE("http: read_window without a validator reads on from byte 0, checking the prefix",
          "[source][http]") {
  test::NginxServer nginx;
  const std::string file = nginx.root() + "/bundle.osu";
  MakeRandomFile(file, 300000);  // just written: nginx's ETag is not to be trusted yet
  auto options = LocalOptions();
  options.read_window = 65536;
  auto all = ReadAll(nginx.Url("/bundle.osu"), options);
  REQUIRE(all.ok());
  RequireSameFile(file, *all);
  const std::string log = nginx.AccessLog();
  INFO(log);
  CHECK_THAT(log, Catch::Contains("GET /bundle.osu 206 262144 range=bytes=0-262143 if_range=-"));
  CHECK_THAT(log, Catch::Contains("GET /bundle.osu 206 300000 range=bytes=0-1048575 if_range=-"));
}

TEST_CASE("http: a cut connection is resumed with Range and If-Range", "[source][http]") {
  test::NginxServer nginx;
  std::string file = nginx.root() + "/bundle.osu";
  MakeSettledFile(file, 3 * 1024 * 1024 + 5);
  FaultProxy proxy(nginx.port(), 1024 * 1024);

  std::vector<std::string> log;
  auto data = ReadAll(proxy.Url("/bundle.osu"), LocalOptions(&log));
  INFO(Joined(log) << nginx.AccessLog());
  REQUIRE(data.ok());
  RequireSameFile(file, *data);
  REQUIRE(log.size() == 1);
  CHECK_THAT(log[0], Catch::StartsWith("retry 1/3 at byte "));
  CHECK(proxy.connections() == 2);
  // The second request asked for the rest only, conditional on the same file.
  CHECK_THAT(nginx.AccessLog(), Catch::Matches("(.|\n)*GET /bundle.osu 206 [0-9]+ range=bytes=[1-9][0-9]*- "
                                               "if_range=\\\\x22[0-9a-f]+-[0-9a-f]+\\\\x22\n"));
}

TEST_CASE("http: a server that ignores Range is resumed by skipping the same file", "[source][http]") {
  test::NginxServer nginx({.server_extra = "max_ranges 0;"});  // nginx answers 200 to every Range
  std::string file = nginx.root() + "/bundle.osu";
  MakeSettledFile(file, 3 * 1024 * 1024);
  FaultProxy proxy(nginx.port(), 1024 * 1024);

  std::vector<std::string> log;
  auto data = ReadAll(proxy.Url("/bundle.osu"), LocalOptions(&log));
  INFO(Joined(log) << nginx.AccessLog());
  REQUIRE(data.ok());
  RequireSameFile(file, *data);
  REQUIRE(log.size() == 2);
  CHECK_THAT(log[0], Catch::StartsWith("retry 1/3 at byte "));
  CHECK_THAT(log[1], Catch::Contains("ignored the Range request; skipping"));

  // read_window answered with the whole file: the source stops the transfer at the window.
  auto options = LocalOptions();
  options.read_window = 100000;
  auto prefix = ReadPrefix(nginx.Url("/bundle.osu"), options, 100000);
  REQUIRE(prefix.ok());
  CHECK(*prefix == test::ReadFile(file).substr(0, 100000));
  CHECK_THAT(nginx.AccessLog(), Catch::Contains("GET /bundle.osu 200 "));
}

TEST_CASE("http: a file replaced during the download fails, never mixes two files", "[source][http]") {
  test::NginxServer nginx;
  std::string file = nginx.root() + "/bundle.osu";
  MakeRandomFile(file, 2 * 1024 * 1024);
  // Replaced (new size and mtime, so a new ETag) while the first connection is cut.
  // Runs on the proxy thread: test::Run, not Catch assertions.
  FaultProxy proxy(nginx.port(), 512 * 1024, [&] {
    test::Run("head -c 2097153 /dev/urandom > '" + file + ".new' && touch -d 2001-01-01 '" + file +
              ".new' && mv '" + file + ".new' '" + file + "'");
  });
  std::string url = proxy.Url("/bundle.osu");
  SourceHistory history;
  auto options = LocalOptions();
  options.history = &history;
  auto data = ReadAll(url, options);
  REQUIRE_FALSE(data.ok());
  CHECK(data.error().kind() == ErrorKind::Source);
  CHECK(data.error().message() == "'" + url + "' changed on the server during the download");
  CHECK(history.changed);  // the caller may download it once more from byte 0
}

TEST_CASE("http: an ETag younger than a minute is not resumed on: replaced in the same second, "
          "the download starts over and never joins two files",
          "[source][http]") {
  test::NginxServer nginx;
  std::string file = nginx.root() + "/bundle.osu";
  MakeRandomFile(file, 2 * 1024 * 1024);  // mtime now: nginx's ETag is "<mtime>-<size>"
  std::string etag_before = test::MustRun("stat -c %Y-%s '" + file + "'");
  FaultProxy proxy(nginx.port(), 512 * 1024, [&] { ReplaceKeepingValidators(file); });
  std::vector<std::string> log;
  SourceHistory history;
  auto options = LocalOptions(&log);
  options.history = &history;
  auto data = ReadAll(proxy.Url("/bundle.osu"), options);
  INFO(Joined(log) << nginx.AccessLog());
  REQUIRE(test::MustRun("stat -c %Y-%s '" + file + "'") == etag_before);  // the same ETag
  REQUIRE_FALSE(data.ok());
  CHECK(data.error().message() == "'" + proxy.Url("/bundle.osu") + "' changed on the server during the download");
  CHECK(history.changed);
  CHECK_FALSE(history.joined);
  CHECK_THAT(Joined(log), Catch::Contains("starting over from byte 0"));
  // The second request was not a Range on the (same-looking) ETag.
  CHECK(test::CountOf(nginx.AccessLog(), "GET /bundle.osu 200 ") == 2);
  CHECK(test::CountOf(nginx.AccessLog(), "if_range=-") == 2);
}

TEST_CASE("http: without ETag and Last-Modified a cut download starts over and checks the prefix",
          "[source][http]") {
  test::NginxServer nginx;
  std::string file = nginx.root() + "/bundle.osu";
  MakeSettledFile(file, 3 * 1024 * 1024);
  FaultProxyOptions faults;
  faults.cut_after = 1024 * 1024;
  faults.drop_headers = {"ETag", "Last-Modified"};
  SECTION("the same file: completes") {
    FaultProxy proxy(nginx.port(), faults);
    std::vector<std::string> log;
    auto data = ReadAll(proxy.Url("/bundle.osu"), LocalOptions(&log));
    INFO(Joined(log) << nginx.AccessLog());
    REQUIRE(data.ok());
    RequireSameFile(file, *data);
    CHECK(test::CountOf(nginx.AccessLog(), "GET /bundle.osu 200 ") == 2);
    CHECK(test::CountOf(nginx.AccessLog(), " range=- ") == 2);
  }
  SECTION("replaced while cut: refused, never spliced") {
    faults.on_cut = [&] { ReplaceKeepingValidators(file); };
    FaultProxy proxy(nginx.port(), faults);
    SourceHistory history;
    auto options = LocalOptions();
    options.history = &history;
    auto data = ReadAll(proxy.Url("/bundle.osu"), options);
    REQUIRE_FALSE(data.ok());
    CHECK_THAT(data.error().message(), Catch::EndsWith("changed on the server during the download"));
    CHECK(history.changed);
  }
}

TEST_CASE("http: Last-Modified alone is an If-Range validator only when a minute older than Date",
          "[source][http]") {
  test::NginxServer nginx;
  std::string file = nginx.root() + "/bundle.osu";
  FaultProxyOptions faults;
  faults.cut_after = 1024 * 1024;
  faults.drop_headers = {"ETag"};
  SECTION("settled: resumed with If-Range: <date>") {
    MakeSettledFile(file, 3 * 1024 * 1024);
    FaultProxy proxy(nginx.port(), faults);
    auto data = ReadAll(proxy.Url("/bundle.osu"), LocalOptions());
    INFO(nginx.AccessLog());
    REQUIRE(data.ok());
    RequireSameFile(file, *data);
    CHECK_THAT(nginx.AccessLog(), Catch::Matches("(.|\n)*GET /bundle.osu 206 [0-9]+ range=bytes=[1-9][0-9]*- "
                                                 "if_range=Wed, 01 Jan 2020 00:00:00 GMT\n"));
  }
  SECTION("just written: started over from byte 0") {
    MakeRandomFile(file, 3 * 1024 * 1024);
    FaultProxy proxy(nginx.port(), faults);
    auto data = ReadAll(proxy.Url("/bundle.osu"), LocalOptions());
    INFO(nginx.AccessLog());
    REQUIRE(data.ok());
    RequireSameFile(file, *data);
    CHECK(test::CountOf(nginx.AccessLog(), " range=- if_range=-\n") == 2);
    CHECK(test::CountOf(nginx.AccessLog(), "GET /bundle.osu 206 ") == 0);
  }
}

TEST_CASE("http: cut responses of every framing are resumed within the retry budget",
          "[source][http]") {
  test::NginxServer nginx;
  std::string file = nginx.root() + "/bundle.osu";
  MakeSettledFile(file, 3 * 1024 * 1024 + 7);
  struct Case {
    const char* name;
    Framing framing;
    bool fin;
    std::vector<std::string> drop;
  };
  for (const Case& c : {Case{"close-delimited, closed", Framing::CloseDelimited, true, {}},
                        Case{"close-delimited, reset", Framing::CloseDelimited, false, {}},
                        Case{"close-delimited, closed, no validator", Framing::CloseDelimited, true,
                             {"ETag", "Last-Modified"}},
                        Case{"chunked, closed mid-chunk", Framing::Chunked, true, {}},
                        Case{"chunked, reset mid-chunk", Framing::Chunked, false, {}},
                        Case{"Content-Length, closed", Framing::AsIs, true, {}}}) {
    INFO(c.name);
    FaultProxyOptions faults;
    faults.cut_after = 1024 * 1024 + 100;  // inside a chunk: chunks are at most 16 KiB
    faults.cut_with_fin = c.fin;
    faults.framing = c.framing;
    faults.drop_headers = c.drop;
    FaultProxy proxy(nginx.port(), faults);
    std::vector<std::string> log;
    auto data = ReadAll(proxy.Url("/bundle.osu"), LocalOptions(&log));
    INFO(Joined(log));
    REQUIRE(data.ok());
    RequireSameFile(file, *data);
    REQUIRE(!log.empty());
    CHECK_THAT(log[0], Catch::StartsWith("retry 1/3 at byte "));
  }
}

TEST_CASE("http: a close-delimited response that ends is confirmed, not retried", "[source][http]") {
  test::NginxServer nginx;
  std::string file = nginx.root() + "/bundle.osu";
  MakeSettledFile(file, 1024 * 1024 + 3);
  FaultProxyOptions framing;
  framing.framing = Framing::CloseDelimited;
  FaultProxy proxy(nginx.port(), framing);
  std::vector<std::string> log;
  auto data = ReadAll(proxy.Url("/bundle.osu"), LocalOptions(&log));
  INFO(Joined(log) << nginx.AccessLog());
  REQUIRE(data.ok());
  RequireSameFile(file, *data);
  CHECK(log.empty());
  // The end was asked about: nothing after byte 1048579 (nginx's 416), on the same ETag.
  CHECK_THAT(nginx.AccessLog(), Catch::Matches("(.|\n)*GET /bundle.osu 416 [0-9]+ range=bytes=1048579- "
                                               "if_range=\\\\x22(.|\n)*"));
}

TEST_CASE("http: a close-delimited response cut on every connection fails after the retries",
          "[source][http]") {
  test::NginxServer nginx;
  std::string file = nginx.root() + "/bundle.osu";
  MakeSettledFile(file, 1024 * 1024);
  FaultProxyOptions faults;
  faults.framing = Framing::CloseDelimited;
  faults.cut_with_fin = true;
  faults.cut_after = 100 * 1000;
  faults.every_connection = true;
  FaultProxy proxy(nginx.port(), faults);
  std::vector<std::string> log;
  auto options = LocalOptions(&log);
  options.retries = 2;
  auto data = ReadAll(proxy.Url("/bundle.osu"), options);
  INFO(Joined(log) << nginx.AccessLog());
  REQUIRE_FALSE(data.ok());
  CHECK(data.error().kind() == ErrorKind::Source);
  CHECK_THAT(data.error().message(), Catch::Contains("at byte 300000"));
  CHECK(log.size() == 2);
}

}  // namespace osu

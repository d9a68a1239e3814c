// The delivery keys of /etc/os-update.yml (update.*) and what they turn into: the default
// source URL (http or EOS's ssh) and the ssh command line.
#include <catch2/catch.hpp>

#include "config/config.hpp"
#include "source/ssh_source.hpp"

using osu::ParseConfig;

TEST_CASE("config: http and ssh delivery keys", "[config][source]") {
  auto c = ParseConfig(R"(update:
  connect_timeout: 7
  low_speed_limit: 500000
  low_speed_time: 20
  retries: 0
  pinned_pubkey: sha256//YhKJKSzoTt2b5FP18fvpHo7fJYqQCjAa3HWY3tvRMwE=
  known_hosts: /etc/os-update/known_hosts
  allow_unsigned_ssh: true
)",
                       "d.yml");
  REQUIRE(c);
  CHECK(c->connect_timeout_s == 7);
  CHECK(c->low_speed_limit == 500000);
  CHECK(c->low_speed_time_s == 20);
  CHECK(c->retries == 0);
  CHECK(c->pinned_pubkey == "sha256//YhKJKSzoTt2b5FP18fvpHo7fJYqQCjAa3HWY3tvRMwE=");
  CHECK(c->known_hosts == "/etc/os-update/known_hosts");
  CHECK(c->allow_unsigned_ssh);

  auto defaults = ParseConfig("update:\n  name: x\n", "d.yml");
  REQUIRE(defaults);
  CHECK(defaults->connect_timeout_s == 30);
  CHECK(defaults->low_speed_limit == 1024);
  CHECK(defaults->low_speed_time_s == 60);
  CHECK(defaults->retries == 3);
  CHECK_FALSE(defaults->allow_unsigned_ssh);
}

TEST_CASE("config: bad delivery values are one-line usage errors", "[config][source]") {
  struct Case {
    const char* yaml;
    const char* message;
  };
  for (const Case& k : {
           Case{"update:\n  retries: 21\n", "config 'b.yml': line 2: update.retries must be a number from 0 to 20"},
           Case{"update:\n  connect_timeout: -1\n", "update.connect_timeout must be a number from 0 to 3600"},
           Case{"update:\n  low_speed_limit: fast\n", "update.low_speed_limit must be a number"},
           Case{"update:\n  allow_unsigned_ssh: maybe\n", "update.allow_unsigned_ssh must be true or false"},
           Case{"update:\n  pinned_pubkey: /etc/key.pem\n", "update.pinned_pubkey must be 'sha256//"},
           Case{"update:\n  retry: 3\n", "update.retry is not a known key"},
       }) {
    INFO(k.yaml);
    auto c = ParseConfig(k.yaml, "b.yml");
    REQUIRE_FALSE(c);
    CHECK(c.error().kind() == osu::ErrorKind::Usage);
    CHECK_THAT(c.error().message(), Catch::Contains(k.message));
  }
}

TEST_CASE("config: an ssh server streams <name>.raw.dev, an http one <name>.osu", "[config][source]") {
  osu::Config c;
  c.name = "eos-kvm";
  c.server = "https://updates.example.com/fleet/";
  CHECK(c.DefaultSource() == "https://updates.example.com/fleet/eos-kvm.osu");
  c.server = "ssh://update@eos.example.com:2222";
  CHECK(c.DefaultSource() == "ssh://update@eos.example.com:2222/eos-kvm.raw.dev");
  c.server = "update@eos.example.com";  // EOS's own form
  CHECK(c.DefaultSource() == "ssh://update@eos.example.com/eos-kvm.raw.dev");
  c.server = "/media/usb";  // a directory of bundles stays a path
  CHECK(c.DefaultSource() == "/media/usb/eos-kvm.osu");
}

TEST_CASE("ssh: URL and command line", "[source]") {
  auto t = osu::ParseSshUrl("ssh://update@[::1]:2222/eos it's.raw.dev");
  REQUIRE(t);
  CHECK(t->user == "update");
  CHECK(t->host == "::1");
  CHECK(t->port == "2222");
  CHECK(t->name == "eos it's.raw.dev");
  osu::SourceOptions o;
  o.connect_timeout_s = 9;
  o.ssh_identity = "/etc/os-update/id_ed25519";
  o.ssh_known_hosts = "/etc/os-update/known_hosts";
  const std::vector<std::string> want = {
      "ssh", "-T", "-o", "BatchMode=yes", "-o", "LogLevel=ERROR",
      "-o", "ServerAliveInterval=15", "-o", "ServerAliveCountMax=4", "-o", "ConnectTimeout=9",
      "-i", "/etc/os-update/id_ed25519", "-o", "IdentitiesOnly=yes",
      "-o", "StrictHostKeyChecking=yes", "-o", "UserKnownHostsFile=/etc/os-update/known_hosts",
      "-o", "GlobalKnownHostsFile=/dev/null", "-p", "2222", "-l", "update", "--", "::1",
      "cat -- 'eos it'\\''s.raw.dev'"};
  CHECK(osu::SshCommand(*t, o) == want);

  auto plain = osu::ParseSshUrl("ssh://eos.example.com/x.raw.dev");
  REQUIRE(plain);
  const auto argv = osu::SshCommand(*plain, {});
  CHECK(std::find(argv.begin(), argv.end(), "-i") == argv.end());  // ssh's own defaults
  CHECK(std::find(argv.begin(), argv.end(), "-p") == argv.end());
}

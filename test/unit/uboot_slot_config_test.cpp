// The per-slot file boot.cmd imports with `env import -t` (format: U-Boot's himport_r).
#include <catch2/catch.hpp>

#include "bootenv/uboot_slot_config.hpp"

TEST_CASE("UbootSlotEnv writes the slot's root and command line as env import -t reads them",
          "[ubootenv]") {
  auto text = osu::UbootSlotEnv("PARTUUID=0d5ac6a7-02", "console=ttyS0,115200 rw quiet");
  REQUIRE(text.ok());
  CHECK(*text ==
        "# Written by os-update; read by boot.scr with env import -t\n"
        "osu_root=PARTUUID=0d5ac6a7-02\n"
        "osu_cmdline=console=ttyS0,115200 rw quiet\n");
}

TEST_CASE("UbootSlotEnv escapes backslashes, which himport_r would drop", "[ubootenv]") {
  auto text = osu::UbootSlotEnv("PARTUUID=x", R"(dyndbg="file a\b +p" x=\\)");
  REQUIRE(text.ok());
  CHECK(text->find(R"(osu_cmdline=dyndbg="file a\\b +p" x=\\\\)" "\n") != std::string::npos);
}

TEST_CASE("UbootSlotEnv keeps an empty command line (import then unsets osu_cmdline)",
          "[ubootenv]") {
  auto text = osu::UbootSlotEnv("PARTUUID=x", "");
  REQUIRE(text.ok());
  CHECK(text->find("\nosu_cmdline=\n") != std::string::npos);
}

TEST_CASE("UbootSlotEnv refuses what would end the line or the root", "[ubootenv]") {
  for (const std::string& bad :
       {std::string("quiet\nbootcmd=reset"), std::string("a\rb"), std::string("a\0b", 3)}) {
    auto text = osu::UbootSlotEnv("PARTUUID=x", bad);
    REQUIRE_FALSE(text.ok());
    CHECK(text.error().kind() == osu::ErrorKind::Usage);
    CHECK(text.error().message().find("osu_cmdline") != std::string::npos);
  }
  CHECK_FALSE(osu::UbootSlotEnv("PARTUUID=x\nosu_cmdline=evil", "quiet").ok());
  CHECK_FALSE(osu::UbootSlotEnv("", "quiet").ok());
}

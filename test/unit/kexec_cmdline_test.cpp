// KexecCmdline: the command line handed to kexec_file_load for the new slot. It must boot
// exactly the target slot as a trial and keep everything else the user put there.
#include <catch2/catch.hpp>

#include "activate/activator.hpp"

namespace {

osu::Slot SlotB() {
  osu::Slot s;
  s.id = osu::SlotId::B;
  s.part.disk = "/dev/vda";
  s.part.device = "/dev/vda3";
  s.part.number = 3;
  s.part.label = "p.lxrootclone1";
  s.part.partuuid = "0b0b0b0b-1111-4222-8333-444455556666";
  return s;
}

const std::string kB = "0b0b0b0b-1111-4222-8333-444455556666";

std::string Must(const std::string& current, const osu::Slot& target = SlotB()) {
  auto r = osu::KexecCmdline(current, target);
  INFO(current << " -> " << (r ? *r : r.error().message()));
  REQUIRE(r.ok());
  return *r;
}

size_t Count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t pos = text.find(what); pos != std::string::npos; pos = text.find(what, pos + 1)) ++n;
  return n;
}

}  // namespace

TEST_CASE("kexec command line: root= rewritten to the target in the form it had", "[kexec]") {
  CHECK(Must("console=ttyS0 root=PARTUUID=0a0a0a0a-aaaa-4aaa-8aaa-aaaaaaaaaaaa ro quiet") ==
        "console=ttyS0 ro quiet root=PARTUUID=" + kB + " osu.slot=B osu.trial=1");
  CHECK(Must("console=ttyS0 root=PARTLABEL=p.lxreadonly ro") ==
        "console=ttyS0 ro root=PARTLABEL=p.lxrootclone1 osu.slot=B osu.trial=1");
  CHECK(Must("root=/dev/vda2 rootfstype=squashfs") ==
        "rootfstype=squashfs root=/dev/vda3 osu.slot=B osu.trial=1");
  // osu.slot= alone (root= in a form we cannot rewrite): name the partition exactly.
  CHECK(Must("root=LABEL=rootfs osu.slot=A quiet") ==
        "quiet root=PARTUUID=" + kB + " osu.slot=B osu.trial=1");
  CHECK(Must("osu.slot=A") == "root=PARTUUID=" + kB + " osu.slot=B osu.trial=1");
}

TEST_CASE("kexec command line: every other argument is kept, in order", "[kexec]") {
  SECTION("quoted values with spaces stay one argument") {
    const std::string out =
        Must("dyndbg=\"file drivers/usb/* +p\" root=PARTLABEL=p.lxreadonly "
             "\"weird arg\" systemd.setenv=\"A=b c\" console=tty0 console=ttyS0,115200n8");
    CHECK(out ==
          "dyndbg=\"file drivers/usb/* +p\" \"weird arg\" systemd.setenv=\"A=b c\" console=tty0 "
          "console=ttyS0,115200n8 root=PARTLABEL=p.lxrootclone1 osu.slot=B osu.trial=1");
    // The kernel's own parse of the result (KernelCmdline follows lib/cmdline.c).
    osu::KernelCmdline parsed(out);
    CHECK(parsed.Get("dyndbg") == "file drivers/usb/* +p");
    CHECK(parsed.Get("systemd.setenv") == "A=b c");
    CHECK(parsed.Get("weird arg") == "");
  }
  SECTION("bare flags and repeated keys") {
    CHECK(Must("ro quiet splash root=PARTLABEL=x loglevel=3 quiet") ==
          "ro quiet splash loglevel=3 quiet root=PARTLABEL=p.lxrootclone1 osu.slot=B osu.trial=1");
  }
  SECTION("arguments after -- are init's: they stay after --") {
    const std::string out = Must("console=ttyS0 root=PARTLABEL=p.lxreadonly -- single emergency");
    CHECK(out ==
          "console=ttyS0 root=PARTLABEL=p.lxrootclone1 osu.slot=B osu.trial=1 -- single emergency");
    // As read from /proc/cmdline: the newline is not part of init's arguments.
    CHECK(Must("root=PARTLABEL=p.lxreadonly -- single\n") ==
          "root=PARTLABEL=p.lxrootclone1 osu.slot=B osu.trial=1 -- single");
  }
}

TEST_CASE("kexec command line: exactly one root=, old markers dropped", "[kexec]") {
  const std::string out =
      Must("BOOT_IMAGE=/osu/A/vmlinuz root=/dev/vda2 root=PARTLABEL=p.lxreadonly osu.slot=A "
           "osu.trial=1 osu.trial console=ttyS0");
  CHECK(out == "console=ttyS0 root=PARTLABEL=p.lxrootclone1 osu.slot=B osu.trial=1");
  CHECK(Count(out, "root=") == 1);
  CHECK(Count(out, "osu.slot=") == 1);
  CHECK(Count(out, "osu.trial") == 1);
  CHECK(Count(out, "BOOT_IMAGE") == 0);
  // Idempotent: kexec'ing again from the trial names the same target once.
  CHECK(Must(out) == out);
}

TEST_CASE("kexec command line: nothing to rewrite is a State error, never a pass-through",
          "[kexec]") {
  const char* current = GENERATE("console=ttyS0 quiet", "", "root=LABEL=rootfs ro",
                                 "root=UUID=1234-5678 ro", "root=/dev/root");  // last: no device
  osu::Slot target = SlotB();
  if (std::string(current) == "root=/dev/root") target.part.device.clear();  // a disk image
  auto r = osu::KexecCmdline(current, target);
  INFO(current);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().kind() == osu::ErrorKind::State);
  CHECK_THAT(r.error().message(), Catch::Contains("slot B"));
}

TEST_CASE("kexec command line: root=PARTUUID= needs the target's PARTUUID", "[kexec]") {
  osu::Slot target = SlotB();
  target.part.partuuid.clear();
  auto r = osu::KexecCmdline("root=PARTUUID=0a0a0a0a-aaaa-4aaa-8aaa-aaaaaaaaaaaa", target);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().kind() == osu::ErrorKind::State);
  CHECK_THAT(r.error().message(), Catch::Contains("partition UUID"));
}

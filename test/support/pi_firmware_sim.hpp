// A simulated Raspberry Pi 5 firmware: what it reads from the FAT boot partition to start a
// kernel, written from Raspberry Pi's documentation (raspberrypi/documentation,
// computers/config_txt/what_is_config_txt.adoc, boot.adoc, conditional.adoc;
// computers/raspberry-pi/boot-eeprom / tryboot), independently of lib/bootenv/pi_firmware.cpp:
//  - the tryboot flag (set by `reboot "0 tryboot"`, gone at the next reset) makes it read
//    tryboot.txt instead of config.txt; a file that is missing sets nothing (defaults);
//  - lines of key=value, '#' comments, 98 characters at most; the last value of a key wins;
//    `include FILE` inserts FILE (missing: nothing); [all], [none], [tryboot] (only with the
//    flag), [pi5] (this board), [pi4] and other boards not;
//  - kernel= (default kernel_2712.img, then kernel8.img), `initramfs FILE followkernel`,
//    cmdline= (default cmdline.txt), os_prefix= glued in front of each; a name starting with
//    '/' is taken from the partition root; os_prefix is dropped when the kernel or the board's
//    device tree is not found under it;
//  - no kernel, or an initramfs named and missing: nothing boots (the bootloader moves on).
#pragma once

#include <string>

namespace osu::test {

inline constexpr const char* kPi5DeviceTree = "bcm2712-rpi-5-b.dtb";

struct PiFirmwareBoot {
  bool started = false;
  std::string why;                     // when !started
  std::string prefix;                  // the os_prefix in force
  std::string kernel, initrd, dtb;     // paths relative to the boot partition
  std::string cmdline;                 // the command line the kernel gets (first line)
};

PiFirmwareBoot SimulatePiFirmware(const std::string& boot_dir, bool tryboot_flag);

}  // namespace osu::test

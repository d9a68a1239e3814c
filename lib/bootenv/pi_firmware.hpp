// The Raspberry Pi firmware as the bootloader (Pi 5; Pi 4 with a current EEPROM): no env and
// no boot counting. config.txt picks the committed slot; after `reboot "0 tryboot"` the
// firmware reads tryboot.txt instead, once (the flag is gone at the next reset). Both files are
// constant (the image ships them, pi-firmware/); what changes lives in small files they
// `include`, each replaced whole by InstallFile:
//   config.txt   ... include osu/committed-copy.txt, then include osu/committed.txt
//   tryboot.txt  ... the same two, then include osu/trial.txt
//   osu/committed.txt, osu/committed-copy.txt   "os_prefix=osu/A/"  (the last os_prefix wins,
//                so a primary cut to nothing leaves the copy's; the copy is written first)
//   osu/trial.txt            "os_prefix=osu/B/" + "cmdline=/osu/trial-cmdline.txt" on a trial
//   osu/trial-cmdline.txt    slot B's cmdline.txt plus osu.trial=1 (the trial's marker)
//   osu/<S>/cmdline.txt      the slot's command line (root=, osu.slot=), written by its install
// As a BootEnv it speaks the selection model's variables: OSU_ORDER (committed first, from
// config.txt), OSU_<committed>_LEFT=3 and the other 0 (nothing counts boots: the committed slot
// always boots), OSU_TRY = tryboot.txt's slot when it is not the committed one.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "bootenv/boot_env.hpp"
#include "slots/slots.hpp"

namespace osu {

inline constexpr const char* kPiConfigTxt = "config.txt";
inline constexpr const char* kPiTrybootTxt = "tryboot.txt";
inline constexpr const char* kPiCommitted = "osu/committed.txt";
inline constexpr const char* kPiCommittedCopy = "osu/committed-copy.txt";
inline constexpr const char* kPiTrial = "osu/trial.txt";
inline constexpr const char* kPiTrialCmdline = "osu/trial-cmdline.txt";
inline constexpr const char* kPiSlotCmdline = "cmdline.txt";  // in osu/<S>/
// The argument of the reboot syscall (LINUX_REBOOT_CMD_RESTART2) that sets the tryboot flag.
inline constexpr const char* kTrybootRebootArgument = "0 tryboot";

// What the firmware's os_prefix ends up as after reading `file` (relative to the boot
// partition) with its includes, as the firmware reads it: '#' comments, the last os_prefix
// wins, `include` inserts a file (one that is missing adds nothing), sections other than
// [none] and (outside tryboot) [tryboot] apply, 98 characters a line.
Expected<std::string> PiOsPrefix(const std::string& boot_path, const std::string& file,
                                 bool tryboot);
// "osu/A/" -> A, "osu/B/" -> B, anything else: nullopt.
std::optional<SlotId> PiPrefixSlot(const std::string& prefix);

// osu/<S>/cmdline.txt: "root=<root> osu.slot=<S> <cmdline>\n". A control character in either
// is refused (Usage): the firmware reads one line.
Expected<std::string> PiSlotCmdlineText(const std::string& root, SlotId slot,
                                        const std::string& cmdline);

// The boot state for --status: the slot each file selects (nullopt: none), and the tryboot
// flag the firmware passed to this boot (/proc/device-tree/chosen/bootloader/tryboot; nullopt
// when not there: not a Pi, or an older firmware).
struct PiBootState {
  std::optional<SlotId> config_txt, tryboot_txt;
  std::optional<bool> tryboot_flag;
};
PiBootState ReadPiBootState(const std::string& boot_path, const std::string& device_tree_path);

std::unique_ptr<BootEnv> MakePiFirmwareEnv(const std::string& boot_path);

}  // namespace osu

// ParseRecord on any bytes; a record that parses must survive SerializeRecord -> ParseRecord
// unchanged (records are written by SerializeRecord and read back on every run).
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_check.hpp"
#include "record/record.hpp"

namespace {

bool Same(const osu::Record& a, const osu::Record& b) {
  if (a.slot != b.slot || a.state != b.state || a.version != b.version ||
      a.compatible != b.compatible || a.sha256 != b.sha256 || a.size != b.size ||
      a.cmdline != b.cmdline || a.updated_at != b.updated_at || a.reason != b.reason ||
      a.boot_files.size() != b.boot_files.size())
    return false;
  for (size_t i = 0; i < a.boot_files.size(); ++i) {
    const auto& x = a.boot_files[i];
    const auto& y = b.boot_files[i];
    if (x.name != y.name || x.size != y.size || x.sha256 != y.sha256) return false;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string yaml(reinterpret_cast<const char*>(data), size);
  auto record = osu::ParseRecord(yaml);
  if (!record) return 0;
  if (record->state == osu::SlotState::Verified)
    osu::fuzz::Check(record->sha256.size() == 64 && !record->version.empty(),
                     "a verified record without sha256 or version");
  const std::string serialized = osu::SerializeRecord(*record);
  auto again = osu::ParseRecord(serialized);
  if (!again) osu::fuzz::Fail("serialized record does not parse: " + again.error().message() +
                              "\n" + serialized);
  osu::fuzz::Check(Same(*record, *again), "record changed in a serialize/parse round trip:\n" +
                                               serialized);
  return 0;
}

// The grubenv block: Parse on any 1024 bytes (or the whole input when it is not 1024 bytes);
// then edits. Every edit must leave a block that parses again, and on a block without
// duplicate names (rebuilt from Vars()) Set/Unset must do exactly what a map would.
// Input: [block: 1024 bytes][edits: name/value strings ...][edit kinds, taken from the end].
#include <fuzzer/FuzzedDataProvider.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "bootenv/grubenv_format.hpp"
#include "fuzz_check.hpp"

namespace grubenv = osu::grubenv;
using osu::fuzz::Check;

namespace {

void CheckParses(const grubenv::Block& block, const char* after) {
  Check(block.bytes().size() == grubenv::kBlockSize, std::string("block size changed after ") +
                                                         after);
  auto again = grubenv::Block::Parse(block.bytes());
  if (!again)
    osu::fuzz::Fail(std::string("block does not parse after ") + after + ": " +
                    again.error().message() + "\n" + block.bytes());
  Check(again->Vars() == block.Vars(), std::string("Vars() differ after re-parsing, after ") +
                                           after);
}

// A block holding exactly `vars` (those with valid names that fit), built by Set.
grubenv::Block Rebuild(const osu::EnvVars& vars, osu::EnvVars& model) {
  grubenv::Block block = grubenv::Block::Empty();
  for (const auto& [name, value] : vars) {
    if (!grubenv::ValidName(name)) continue;
    const std::string before = block.bytes();
    if (block.Set(name, value)) {
      model[name] = value;
    } else {
      Check(block.bytes() == before, "a Set that failed changed the block");
    }
  }
  return block;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string whole(reinterpret_cast<const char*>(data), size);
  if (size != grubenv::kBlockSize) {
    (void)grubenv::Block::Parse(whole);  // the wrong-size path
    if (size < grubenv::kBlockSize) return 0;
  }
  FuzzedDataProvider in(data, size);
  auto parsed = grubenv::Block::Parse(in.ConsumeBytesAsString(grubenv::kBlockSize));
  if (!parsed) return 0;
  grubenv::Block original = std::move(parsed).value();
  const osu::EnvVars vars = original.Vars();
  CheckParses(original, "parse");

  osu::EnvVars model;
  grubenv::Block clean = Rebuild(vars, model);
  CheckParses(clean, "rebuild");
  Check(clean.Vars() == model, "a block built by Set does not hold what was set");

  while (in.remaining_bytes() > 0) {
    const bool set = in.ConsumeBool();
    const std::string name = in.ConsumeRandomLengthString(64);
    const std::string value = set ? in.ConsumeRandomLengthString(512) : std::string();
    if (!grubenv::ValidName(name)) continue;
    if (set) {
      const std::string before = original.bytes();
      if (!original.Set(name, value))
        Check(original.bytes() == before, "a Set that failed changed the block");
      CheckParses(original, "Set");
      const std::string clean_before = clean.bytes();
      if (clean.Set(name, value)) {
        model[name] = value;
      } else {
        Check(clean.bytes() == clean_before, "a Set that failed changed the block");
      }
    } else {
      original.Unset(name);
      CheckParses(original, "Unset");
      clean.Unset(name);
      model.erase(name);
    }
    CheckParses(clean, set ? "Set (clean)" : "Unset (clean)");
    Check(clean.Vars() == model, std::string("block and map disagree after ") +
                                     (set ? "Set '" : "Unset '") + name + "'");
  }
  return 0;
}

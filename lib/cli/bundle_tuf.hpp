// The `os-update-bundle tuf` subcommand group.
#pragma once

#include <functional>
#include <string>

#include "cli/cli.hpp"
#include "common/error.hpp"

namespace CLI {
class App;
}

namespace osu::cli {
// What the subcommands' options are parsed into; owned by the caller, one per run.
struct TufArgs {
  std::string root, state, base, target, time;  // verify
  bool fetch_target = false;
  std::string file, key, dir;                   // sign, key, expiry
};
void AddTufCommands(CLI::App& app, TufArgs& args, std::function<Result()>& action,
                    const Streams& streams);
}

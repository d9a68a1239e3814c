// The `os-update-bundle tuf` subcommand group.
#pragma once

#include <functional>
#include <string>
#include <vector>

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
  // init, rotate: each role's keys (PEM, public or private) and threshold.
  std::vector<std::string> root_keys, timestamp_keys, snapshot_keys, targets_keys;
  uint64_t root_threshold = 1, timestamp_threshold = 1, snapshot_threshold = 1, targets_threshold = 1;
  bool no_consistent = false;
  std::vector<std::string> bundles, online_keys;  // add, timestamp
  int rollout = -1;                               // add: percent, -1 none
  std::string salt;
  int64_t expires_days = 0, snapshot_days = 0;    // 0: the role's default
};
void AddTufCommands(CLI::App& app, TufArgs& args, std::function<Result()>& action,
                    const Streams& streams);
}

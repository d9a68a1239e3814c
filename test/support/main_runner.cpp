// In-process runs of the two command lines (kept apart so per-file test targets link
// without the whole CLI).
#include <sstream>

#include "cli/cli.hpp"
#include "support/support.hpp"

namespace osu::test {

namespace {
MainResult RunMain(int (*fn)(const std::vector<std::string>&, const cli::Streams&),
                   const std::string& argv0, const std::vector<std::string>& args,
                   const std::string& stdin_data) {
  std::vector<std::string> argv{argv0};
  argv.insert(argv.end(), args.begin(), args.end());
  std::istringstream in(stdin_data);
  std::ostringstream out, err;
  MainResult r;
  r.code = fn(argv, cli::Streams{in, out, err});
  r.out = out.str();
  r.err = err.str();
  return r;
}
}  // namespace

MainResult RunUpdate(const std::vector<std::string>& args, const std::string& stdin_data) {
  return RunMain(&cli::UpdateMain, "os-update", args, stdin_data);
}
MainResult RunBundle(const std::vector<std::string>& args, const std::string& stdin_data) {
  return RunMain(&cli::BundleMain, "os-update-bundle", args, stdin_data);
}

}  // namespace osu::test

#include "cli/cli.hpp"

namespace osu::cli {

// The one place where an error becomes an exit code (README: "Exit codes").
int ExitCode(const Error& error) {
  switch (error.kind()) {
    case ErrorKind::Usage: return kExitUsage;
    case ErrorKind::Verification: return kExitVerification;
    case ErrorKind::Source: return kExitSource;
    case ErrorKind::State: return kExitState;
    case ErrorKind::Device: return kExitDevice;
  }
  return kExitDevice;
}

}  // namespace osu::cli

#pragma once

#include <string>

#include "common/error.hpp"
#include "common/fd.hpp"

namespace osu {

// An exclusive, non-blocking flock on `path`, held while the returned Fd lives. Held by
// another os-update: State error "another os-update is running (lock '/run/os-update.lock'
// is held)".
Expected<Fd> AcquireLock(const std::string& path);

}  // namespace osu

#include "common/error.hpp"

#include <cstring>

namespace osu {

Error ErrnoError(const std::string& what, int err, ErrorKind kind) {
  return Error(kind, what + ": " + std::strerror(err));
}

}  // namespace osu

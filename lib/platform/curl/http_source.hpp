// http(s):// sources over libcurl; declared here so that lib/source stays free of <curl/curl.h>.
#pragma once

#include <memory>
#include <string>

#include "common/error.hpp"
#include "io/stream.hpp"
#include "source/source.hpp"

namespace osu {

// Starts the transfer and returns once the first response's status is known, so that
// "HTTP 404" or a TLS failure is reported by the open, not by the first read.
Expected<std::unique_ptr<Reader>> OpenHttpSource(const std::string& url, const SourceOptions& options);

}  // namespace osu

// http(s) byte ranges over libcurl (delta/range_source.hpp); apart from http_source so that
// lib/delta stays free of <curl/curl.h>.
#pragma once

#include "delta/range_source.hpp"

namespace osu {

Expected<std::unique_ptr<RangeSource>> OpenHttpRanges(const std::string& url,
                                                      const SourceOptions& options);

}  // namespace osu

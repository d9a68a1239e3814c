// What the libcurl sources share (http_source: one stream; range_fetch: byte ranges): handle
// types, one setup for every request (TLS, timeouts, redirects), the codes worth a retry.
#pragma once

#include <curl/curl.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "common/error.hpp"
#include "source/source.hpp"

namespace osu {

struct EasyDeleter {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
struct MultiDeleter {
  void operator()(CURLM* m) const { curl_multi_cleanup(m); }
};
struct SlistDeleter {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};
using EasyPtr = std::unique_ptr<CURL, EasyDeleter>;
using MultiPtr = std::unique_ptr<CURLM, MultiDeleter>;
using SlistPtr = std::unique_ptr<curl_slist, SlistDeleter>;

Result InitCurlOnce();
std::string Trim(std::string s);
bool StartsWithNoCase(const std::string& s, const char* prefix);
std::string ReasonFor(long code);  // HTTP/2 has no reason phrase: the common codes named
bool IsRetriableCode(CURLcode rc);

struct ContentRange {
  std::optional<uint64_t> first, last;  // absent in a 416's "bytes */1000"
  std::optional<uint64_t> total;        // absent in "bytes 100-199/*"
};
// "bytes 100-199/1000", "bytes 100-199/*" or "bytes */1000".
std::optional<ContentRange> ParseContentRange(const std::string& v);

// URL, http(s) only (redirects too), TLS verification, CA file and pinned key, timeouts,
// user agent, error buffer (CURL_ERROR_SIZE). False if libcurl refused one.
bool SetRequestOptions(CURL* e, const std::string& url, const SourceOptions& options, char* errbuf);

}  // namespace osu

#include "platform/curl/curl_common.hpp"

#include <strings.h>

#include <cstdio>
#include <cstring>
#include <mutex>

#ifndef OSU_VERSION
#define OSU_VERSION "dev"
#endif

namespace osu {
namespace {
constexpr long kMaxRedirects = 5;
}  // namespace

Result InitCurlOnce() {
  static std::once_flag once;
  static CURLcode rc = CURLE_OK;
  std::call_once(once, [] { rc = curl_global_init(CURL_GLOBAL_DEFAULT); });
  if (rc != CURLE_OK) return SourceError(std::string("Failed to initialize libcurl: ") + curl_easy_strerror(rc));
  return {};
}

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\r' || s.back() == '\n' || s.back() == ' ' || s.back() == '\t')) s.pop_back();
  size_t i = 0;
  while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
  return s.substr(i);
}

bool StartsWithNoCase(const std::string& s, const char* prefix) {
  size_t n = std::strlen(prefix);
  return s.size() >= n && strncasecmp(s.c_str(), prefix, n) == 0;
}

std::string ReasonFor(long code) {
  switch (code) {
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 408: return "Request Timeout";
    case 410: return "Gone";
    case 416: return "Range Not Satisfiable";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "";
  }
}

bool IsRetriableCode(CURLcode rc) {
  switch (rc) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
    case CURLE_PARTIAL_FILE:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
      return true;
    default:
      return false;
  }
}


std::optional<ContentRange> ParseContentRange(const std::string& v) {
  unsigned long long first = 0, last = 0, total = 0;
  char star = 0;
  ContentRange r;
  if (std::sscanf(v.c_str(), "bytes */%llu", &total) == 1) {
    r.total = total;
    return r;
  }
  if (std::sscanf(v.c_str(), "bytes %llu-%llu/", &first, &last) != 2 || last < first) return std::nullopt;
  r.first = first;
  r.last = last;
  auto slash = v.find('/');
  if (std::sscanf(v.c_str() + slash + 1, "%llu", &total) == 1) r.total = total;
  else if (std::sscanf(v.c_str() + slash + 1, "%c", &star) != 1 || star != '*') return std::nullopt;
  return r;
}


bool SetRequestOptions(CURL* e, const std::string& url, const SourceOptions& options, char* errbuf) {
  bool ok = curl_easy_setopt(e, CURLOPT_URL, url.c_str()) == CURLE_OK;
  ok &= curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https") == CURLE_OK;
  ok &= curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https") == CURLE_OK;
  ok &= curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L) == CURLE_OK;
  ok &= curl_easy_setopt(e, CURLOPT_MAXREDIRS, kMaxRedirects) == CURLE_OK;
  ok &= curl_easy_setopt(e, CURLOPT_FAILONERROR, 0L) == CURLE_OK;
  ok &= curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L) == CURLE_OK;
  ok &= curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L) == CURLE_OK;
  if (!options.ca_file.empty()) ok &= curl_easy_setopt(e, CURLOPT_CAINFO, options.ca_file.c_str()) == CURLE_OK;
  if (!options.pinned_pubkey.empty())
    ok &= curl_easy_setopt(e, CURLOPT_PINNEDPUBLICKEY, options.pinned_pubkey.c_str()) == CURLE_OK;
  ok &= curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT, options.connect_timeout_s) == CURLE_OK;
  ok &= curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, options.low_speed_limit) == CURLE_OK;
  ok &= curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, options.low_speed_time_s) == CURLE_OK;
  ok &= curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) == CURLE_OK;
  ok &= curl_easy_setopt(e, CURLOPT_USERAGENT, "os-update/" OSU_VERSION) == CURLE_OK;
  ok &= curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf) == CURLE_OK;
  return ok;
}

}  // namespace osu

// A pull Reader over libcurl's push API: curl_multi is driven from Read() and the write
// callback fills a bounded buffer (the transfer is paused when it is full). No thread.
#include "platform/curl/http_source.hpp"

#include <curl/curl.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#ifndef OSU_VERSION
#define OSU_VERSION "dev"
#endif

namespace osu {
namespace {

constexpr size_t kMaxBuffered = size_t{4} << 20;
constexpr long kMaxRedirects = 5;

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

// HTTP/2 has no reason phrase: name the common codes ourselves.
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

struct ContentRange {
  uint64_t first = 0, last = 0;
};

// "bytes 100-199/1000" or "bytes 100-199/*".
std::optional<ContentRange> ParseContentRange(const std::string& v) {
  unsigned long long first = 0, last = 0;
  if (std::sscanf(v.c_str(), "bytes %llu-%llu", &first, &last) != 2 || last < first) return std::nullopt;
  return ContentRange{first, last};
}

// What the headers of the current response said; reset at every status line (redirects).
struct ResponseHeaders {
  std::string reason;
  std::string etag;
  std::string last_modified;
  std::string content_range;

  // The If-Range validator: a strong ETag, else Last-Modified (weak ETags are not allowed).
  std::string Validator() const {
    if (!etag.empty() && !StartsWithNoCase(etag, "W/")) return etag;
    return last_modified;
  }
};

// Why an attempt failed, and whether another attempt may succeed.
struct Failure {
  Error error;
  bool retriable;
};

class HttpSource final : public Reader {
 public:
  HttpSource(std::string url, const SourceOptions& options)
      : url_(std::move(url)), display_(DescribeSource(url_)), options_(options) {}

  ~HttpSource() override {
    if (running_) curl_multi_remove_handle(multi_.get(), easy_.get());
  }
  HttpSource(const HttpSource&) = delete;
  HttpSource& operator=(const HttpSource&) = delete;

  Result Start() {
    if (auto r = InitCurlOnce(); !r) return r;
    multi_.reset(curl_multi_init());
    easy_.reset(curl_easy_init());
    if (!multi_ || !easy_) return SourceError("Failed to create a libcurl handle for '" + display_ + "'");
    if (auto r = StartAttempt(); !r) return r;
    // Wait for the status line so that 404 or a TLS failure comes from the open.
    while (!response_checked_ && !done_) {
      if (auto r = Pump(); !r) return r;
    }
    return {};
  }

  Expected<size_t> Read(std::span<uint8_t> buf) override {
    if (failed_) return *failed_;
    while (pending_pos_ == pending_.size()) {
      if (done_) return size_t{0};
      pending_.clear();
      pending_pos_ = 0;
      if (auto r = Pump(); !r) {
        failed_ = r.error();
        return r.error();
      }
    }
    size_t n = std::min(buf.size(), pending_.size() - pending_pos_);
    std::memcpy(buf.data(), pending_.data() + pending_pos_, n);
    pending_pos_ += n;
    return n;
  }

 private:
  static size_t OnHeader(char* data, size_t size, size_t nitems, void* self) {
    static_cast<HttpSource*>(self)->Header(std::string(data, size * nitems));
    return size * nitems;
  }
  static size_t OnWrite(char* data, size_t size, size_t nmemb, void* self) {
    return static_cast<HttpSource*>(self)->Write(data, size * nmemb);
  }

  void Header(const std::string& line) {
    if (StartsWithNoCase(line, "HTTP/")) {
      headers_ = {};
      // "HTTP/1.1 404 Not Found": the reason is what follows the code.
      auto sp1 = line.find(' ');
      auto sp2 = sp1 == std::string::npos ? sp1 : line.find(' ', sp1 + 1);
      if (sp2 != std::string::npos) headers_.reason = Trim(line.substr(sp2 + 1));
      return;
    }
    auto colon = line.find(':');
    if (colon == std::string::npos) return;
    std::string name = line.substr(0, colon), value = Trim(line.substr(colon + 1));
    if (strcasecmp(name.c_str(), "ETag") == 0) headers_.etag = value;
    else if (strcasecmp(name.c_str(), "Last-Modified") == 0) headers_.last_modified = value;
    else if (strcasecmp(name.c_str(), "Content-Range") == 0) headers_.content_range = value;
  }

  size_t Write(const char* data, size_t n) {
    if (!response_checked_) {
      if (auto f = CheckResponse()) {
        failure_ = std::move(f);
        return 0;  // aborts the transfer; Finish() reports failure_
      }
    }
    if (pending_.size() - pending_pos_ >= kMaxBuffered) {
      paused_ = true;
      return CURL_WRITEFUNC_PAUSE;  // libcurl delivers this chunk again after unpausing
    }
    size_t skip = static_cast<size_t>(std::min<uint64_t>(skip_remaining_, n));
    skip_remaining_ -= skip;
    size_t take = n - skip;
    if (options_.read_limit > 0) take = static_cast<size_t>(std::min<uint64_t>(take, options_.read_limit - received_));
    pending_.insert(pending_.end(), data + skip, data + skip + take);
    received_ += take;
    if (options_.read_limit > 0 && received_ >= options_.read_limit) {
      limit_reached_ = true;
      return 0;  // the caller reads no further: stop the transfer here
    }
    return n;
  }

  std::string HttpStatusText(long code) const {
    std::string reason = headers_.reason.empty() ? ReasonFor(code) : headers_.reason;
    return "HTTP " + std::to_string(code) + (reason.empty() ? "" : " " + reason);
  }

  // Decides, once the headers are in, whether this response continues the stream.
  std::optional<Failure> CheckResponse() {
    response_checked_ = true;
    long code = 0;
    curl_easy_getinfo(easy_.get(), CURLINFO_RESPONSE_CODE, &code);
    if (code >= 500 || code == 408 || code == 429) {
      return Failure{SourceError(HttpStatusText(code) + " from '" + display_ + "'"), true};
    }
    bool ranged = received_ > 0 || options_.read_limit > 0;
    if (code == 416 && received_ == 0 && headers_.content_range == "bytes */0") {
      end_ = 0;  // an empty file asked for with a Range
      return std::nullopt;
    }
    if (code != 200 && !(code == 206 && ranged)) {
      return Failure{SourceError(HttpStatusText(code) + " from '" + display_ + "'"), false};
    }
    std::string validator = headers_.Validator();
    if (code == 206) {
      auto range = ParseContentRange(headers_.content_range);
      if (!range || range->first != received_) {
        return Failure{SourceError("'" + display_ + "' answered bytes=" + std::to_string(received_) +
                                   "- with Content-Range '" + headers_.content_range + "'"),
                       false};
      }
      if (received_ > 0 && !validator_.empty() && validator != validator_) return Changed();
      if (!first_response_seen_) end_ = range->last + 1;
    } else {
      if (received_ > 0) {
        // The server ignored Range or If-Range failed: skip what we have only if the
        // validator proves it is the same file, never append a second copy.
        if (validator_.empty()) {
          return Failure{SourceError("'" + display_ + "' cannot be resumed: the server ignored the Range "
                                     "request and sent no ETag or Last-Modified"),
                         false};
        }
        if (validator != validator_) return Changed();
        skip_remaining_ = received_;
        Log("'" + display_ + "' ignored the Range request; skipping " + std::to_string(received_) +
            " bytes already read");
      }
      if (!first_response_seen_) {
        curl_off_t length = -1;
        curl_easy_getinfo(easy_.get(), CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &length);
        if (length >= 0) end_ = static_cast<uint64_t>(length);
      }
    }
    if (!first_response_seen_) {
      first_response_seen_ = true;
      validator_ = validator;
    }
    return std::nullopt;
  }

  std::optional<Failure> Changed() const {
    return Failure{SourceError("'" + display_ + "' changed on the server during the download"), false};
  }

  void Log(const std::string& event) const {
    if (options_.log) options_.log(event);
  }

  // One request: from the start, or resuming at received_ with Range and If-Range.
  Result StartAttempt() {
    CURL* e = easy_.get();
    curl_easy_reset(e);
    request_headers_.reset();
    response_checked_ = false;
    limit_reached_ = false;
    paused_ = false;
    skip_remaining_ = 0;
    failure_.reset();
    headers_ = {};
    errbuf_[0] = '\0';

    bool ok = curl_easy_setopt(e, CURLOPT_URL, url_.c_str()) == CURLE_OK;
    ok &= curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https") == CURLE_OK;
    ok &= curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https") == CURLE_OK;
    ok &= curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L) == CURLE_OK;
    ok &= curl_easy_setopt(e, CURLOPT_MAXREDIRS, kMaxRedirects) == CURLE_OK;
    ok &= curl_easy_setopt(e, CURLOPT_FAILONERROR, 0L) == CURLE_OK;
    ok &= curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L) == CURLE_OK;
    ok &= curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L) == CURLE_OK;
    if (!options_.ca_file.empty()) ok &= curl_easy_setopt(e, CURLOPT_CAINFO, options_.ca_file.c_str()) == CURLE_OK;
    if (!options_.pinned_pubkey.empty())
      ok &= curl_easy_setopt(e, CURLOPT_PINNEDPUBLICKEY, options_.pinned_pubkey.c_str()) == CURLE_OK;
    ok &= curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT, options_.connect_timeout_s) == CURLE_OK;
    ok &= curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, options_.low_speed_limit) == CURLE_OK;
    ok &= curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, options_.low_speed_time_s) == CURLE_OK;
    ok &= curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) == CURLE_OK;
    ok &= curl_easy_setopt(e, CURLOPT_USERAGENT, "os-update/" OSU_VERSION) == CURLE_OK;
    ok &= curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf_) == CURLE_OK;
    ok &= curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, &HttpSource::OnHeader) == CURLE_OK;
    ok &= curl_easy_setopt(e, CURLOPT_HEADERDATA, this) == CURLE_OK;
    ok &= curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, &HttpSource::OnWrite) == CURLE_OK;
    ok &= curl_easy_setopt(e, CURLOPT_WRITEDATA, this) == CURLE_OK;

    if (received_ > 0 || options_.read_limit > 0) {
      std::string range = std::to_string(received_) + "-";
      if (options_.read_limit > 0) range += std::to_string(options_.read_limit - 1);
      ok &= curl_easy_setopt(e, CURLOPT_RANGE, range.c_str()) == CURLE_OK;  // libcurl copies it
    }
    if (received_ > 0 && !validator_.empty()) {
      std::string if_range = "If-Range: " + validator_;
      request_headers_.reset(curl_slist_append(nullptr, if_range.c_str()));
      if (!request_headers_) return SourceError("Out of memory building the request for '" + display_ + "'");
      ok &= curl_easy_setopt(e, CURLOPT_HTTPHEADER, request_headers_.get()) == CURLE_OK;
    }
    if (!ok) return SourceError("Failed to set up the libcurl request for '" + display_ + "'");

    CURLMcode mc = curl_multi_add_handle(multi_.get(), e);
    if (mc != CURLM_OK) {
      return SourceError("Failed to start the download of '" + display_ + "': " + curl_multi_strerror(mc));
    }
    running_ = true;
    return {};
  }

  // Moves the transfer forward until data arrives, it ends, or a second passes.
  Result Pump() {
    if (paused_) {
      paused_ = false;
      curl_easy_pause(easy_.get(), CURLPAUSE_CONT);  // may deliver the paused chunk right here
    }
    int still_running = 0;
    CURLMcode mc = curl_multi_perform(multi_.get(), &still_running);
    if (mc != CURLM_OK) return SourceError("Failed to download '" + display_ + "': " + curl_multi_strerror(mc));
    int queued = 0;
    while (CURLMsg* msg = curl_multi_info_read(multi_.get(), &queued)) {
      if (msg->msg == CURLMSG_DONE && msg->easy_handle == easy_.get()) return Finish(msg->data.result);
    }
    if (pending_.size() > pending_pos_ || paused_) return {};
    mc = curl_multi_poll(multi_.get(), nullptr, 0, 1000, nullptr);
    if (mc != CURLM_OK) return SourceError("Failed to download '" + display_ + "': " + curl_multi_strerror(mc));
    return {};
  }

  Result Finish(CURLcode rc) {
    curl_multi_remove_handle(multi_.get(), easy_.get());
    running_ = false;
    if (limit_reached_) {
      done_ = true;
      return {};
    }
    std::optional<Failure> failure = std::move(failure_);
    if (!failure && rc != CURLE_OK) {
      std::string why = errbuf_[0] ? Trim(errbuf_) : curl_easy_strerror(rc);
      failure = Failure{SourceError("Failed to download '" + display_ + "': " + why), IsRetriableCode(rc)};
    }
    if (!failure && !response_checked_) failure = CheckResponse();  // an empty body: no write callback
    if (!failure && end_ && received_ < *end_) {
      failure = Failure{SourceError("Download of '" + display_ + "' ended early at byte " +
                                    std::to_string(received_) + " of " + std::to_string(*end_)),
                        true};
    }
    if (!failure) {
      done_ = true;
      return {};
    }
    if (!failure->retriable || retries_used_ >= options_.retries) return failure->error;

    ++retries_used_;
    Log("retry " + std::to_string(retries_used_) + "/" + std::to_string(options_.retries) + " at byte " +
        std::to_string(received_) + ": " + failure->error.message());
    // 0.5 s, 1 s, 2 s, 2 s...: a few seconds in all, enough for a blip, not for an outage.
    auto backoff = std::chrono::milliseconds(500) * (1u << std::min(retries_used_ - 1, 2u));
    std::this_thread::sleep_for(backoff);
    return StartAttempt();
  }

  const std::string url_;
  const std::string display_;
  const SourceOptions options_;
  MultiPtr multi_;
  EasyPtr easy_;
  SlistPtr request_headers_;
  char errbuf_[CURL_ERROR_SIZE] = {};

  std::vector<uint8_t> pending_;  // received, not yet read; at most ~kMaxBuffered
  size_t pending_pos_ = 0;
  uint64_t received_ = 0;         // body bytes accepted into the stream (the resume offset)
  std::optional<uint64_t> end_;   // where the stream ends, when the first response said so
  std::string validator_;         // the first response's ETag or Last-Modified, for If-Range
  bool first_response_seen_ = false;
  unsigned retries_used_ = 0;

  // Per attempt.
  ResponseHeaders headers_;
  bool running_ = false;
  bool response_checked_ = false;
  bool limit_reached_ = false;
  bool paused_ = false;
  uint64_t skip_remaining_ = 0;
  std::optional<Failure> failure_;

  bool done_ = false;
  std::optional<Error> failed_;
};

}  // namespace

Expected<std::unique_ptr<Reader>> OpenHttpSource(const std::string& url, const SourceOptions& options) {
  auto source = std::make_unique<HttpSource>(url, options);
  if (auto r = source->Start(); !r) return r.error();
  return std::unique_ptr<Reader>(std::move(source));
}

}  // namespace osu

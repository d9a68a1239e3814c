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

#include "crypto/sha256.hpp"
#include "platform/curl/curl_common.hpp"

namespace osu {
namespace {

constexpr size_t kMaxBuffered = size_t{4} << 20;

// What the headers of the current response said; reset at every status line (redirects).
struct ResponseHeaders {
  std::string reason;
  std::string etag;
  std::string last_modified;
  std::string date;
  std::string content_range;
  bool chunked = false;
};

// What If-Range may carry (RFC 9110 13.1.5): a strong ETag, or, with no ETag at all, a
// Last-Modified that is strong: at least 60 s before the response's Date (8.8.2.2). The same
// rule holds back an ETag while Last-Modified is that recent: nginx's ETag is the mtime in
// seconds and the size, so a file replaced within the same second keeps it. "" = none: a
// cut download then starts over from byte 0.
std::string TrustedValidator(const ResponseHeaders& h) {
  const time_t date = h.date.empty() ? -1 : curl_getdate(h.date.c_str(), nullptr);
  const time_t modified = h.last_modified.empty() ? -1 : curl_getdate(h.last_modified.c_str(), nullptr);
  const bool settled = modified >= 0 && date >= 0 && date - modified >= 60;
  if (!h.etag.empty()) {
    if (h.etag.front() != '"') return "";  // W/"...": weak, never in If-Range
    return h.last_modified.empty() || settled ? h.etag : "";
  }
  return settled ? h.last_modified : "";
}

// Why an attempt failed, and whether another attempt may succeed.
struct Failure {
  Error error;
  bool retriable;
};

// Bytes once delivered and checked again when a download starts over from byte 0 (servers
// without a trusted validator): sha256 per stretch between two restarts.
class DeliveredHashes {
 public:
  void Delivered(std::span<const uint8_t> data) { running_->Update(data); }
  // A restart from byte 0 at `end`: what was delivered since the last restart becomes a stretch.
  void Restart(uint64_t end) {
    if (end > (stretches_.empty() ? 0 : stretches_.back().first)) {
      stretches_.emplace_back(end, running_->HexDigest());
      running_ = std::make_unique<Sha256>();
    }
    checked_ = 0;
    check_ = std::make_unique<Sha256>();
  }
  // The bytes at [pos, pos + data.size()) of the new response; false at a difference.
  bool Check(uint64_t pos, std::span<const uint8_t> data) {
    while (!data.empty()) {
      const auto& [end, digest] = stretches_[checked_];
      size_t take = static_cast<size_t>(std::min<uint64_t>(data.size(), end - pos));
      check_->Update(data.first(take));
      data = data.subspan(take);
      pos += take;
      if (pos == end) {
        if (check_->HexDigest() != digest) return false;
        ++checked_;
        check_ = std::make_unique<Sha256>();
      }
    }
    return true;
  }

 private:
  std::vector<std::pair<uint64_t, std::string>> stretches_;  // (end, sha256 of [previous end, end))
  std::unique_ptr<Sha256> running_ = std::make_unique<Sha256>();
  size_t checked_ = 0;
  std::unique_ptr<Sha256> check_;
};

class HttpSource final : public Reader {
 public:
  HttpSource(std::string url, const SourceOptions& options)
      : url_(std::move(url)), display_(DescribeSource(url_)), options_(options) {
    if (options_.read_window > 0) window_end_ = options_.read_window;
  }

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
      Result r;
      if (window_reached_) {
        // The caller reads past the window it expected: the next, larger range.
        window_reached_ = false;
        window_end_ = *window_end_ * 4;
        r = StartAttempt();
      } else {
        r = Pump();
      }
      if (!r) {
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
    return static_cast<HttpSource*>(self)->Write(reinterpret_cast<const uint8_t*>(data), size * nmemb);
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
    else if (strcasecmp(name.c_str(), "Date") == 0) headers_.date = value;
    else if (strcasecmp(name.c_str(), "Content-Range") == 0) headers_.content_range = value;
    else if (strcasecmp(name.c_str(), "Transfer-Encoding") == 0)
      headers_.chunked = value.find("chunked") != std::string::npos;
  }

  size_t Write(const uint8_t* data, size_t n) {
    if (!response_checked_) {
      failure_ = CheckResponse();
      if (failure_ || complete_) return 0;  // aborts the transfer; Finish() decides
    }
    if (pending_.size() - pending_pos_ >= kMaxBuffered) {
      paused_ = true;
      return CURL_WRITEFUNC_PAUSE;  // libcurl delivers this chunk again after unpausing
    }
    std::span<const uint8_t> rest(data, n);
    if (pos_ < received_) {
      // A response from byte 0: what the stream already has is skipped, and checked when
      // no validator vouches for it.
      size_t k = static_cast<size_t>(std::min<uint64_t>(rest.size(), received_ - pos_));
      if (hashes_ && !hashes_->Check(pos_, rest.first(k))) {
        failure_ = Changed();
        return 0;
      }
      pos_ += k;
      rest = rest.subspan(k);
      if (rest.empty()) return n;
    }
    if (probing_) {
      // More than the previous response ended with: it was cut, this counts as a retry.
      probing_ = false;
      if (!TakeRetry(ClosedEarly())) {
        failure_ = Failure{SourceError(ClosedEarly()), false};
        return 0;
      }
    }
    if (window_end_) rest = rest.first(static_cast<size_t>(std::min<uint64_t>(rest.size(), *window_end_ - pos_)));
    pending_.insert(pending_.end(), rest.begin(), rest.end());
    if (hashes_) hashes_->Delivered(rest);
    received_ += rest.size();
    pos_ += rest.size();
    if (window_end_ && received_ >= *window_end_) {
      window_reached_ = true;
      return 0;  // the caller may read no further: stop the transfer here
    }
    return n;
  }

  std::string HttpStatusText(long code) const {
    std::string reason = headers_.reason.empty() ? ReasonFor(code) : headers_.reason;
    return "HTTP " + std::to_string(code) + (reason.empty() ? "" : " " + reason);
  }

  Failure StatusFailure(long code, bool retriable) const {
    return Failure{SourceError(HttpStatusText(code) + " from '" + display_ + "'"), retriable};
  }

  // Decides, once the headers are in, whether this response continues the stream.
  std::optional<Failure> CheckResponse() {
    response_checked_ = true;
    long code = 0;
    curl_easy_getinfo(easy_.get(), CURLINFO_RESPONSE_CODE, &code);
    if (code >= 500 || code == 408 || code == 429) return StatusFailure(code, true);
    auto range = ParseContentRange(headers_.content_range);
    if (code == 416 && range && range->total && !range->first) {
      // Asked for bytes from where the file ends: an empty file, or the end of a response
      // that had no length confirmed.
      if (*range->total == received_) {
        complete_ = true;
        if (received_ > 0) Joined();
        return std::nullopt;
      }
      if (*range->total < received_) return Changed();
    }
    if (code != 200 && !(code == 206 && asked_range_)) return StatusFailure(code, false);

    uint64_t start = 0;
    std::optional<uint64_t> end, total;
    if (code == 206) {
      if (!range || !range->first || (*range->first != received_ && *range->first != 0)) {
        return Failure{SourceError("'" + display_ + "' answered bytes=" + std::to_string(received_) +
                                   "- with Content-Range '" + headers_.content_range + "'"),
                       false};
      }
      start = *range->first;
      end = *range->last + 1;
      total = range->total;
    } else {
      curl_off_t length = -1;
      curl_easy_getinfo(easy_.get(), CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &length);
      if (length >= 0) end = total = static_cast<uint64_t>(length);
    }
    long version = 0;
    curl_easy_getinfo(easy_.get(), CURLINFO_HTTP_VERSION, &version);
    // HTTP/1 without Content-Length or chunks: the body ends where the connection closes,
    // and a cut looks the same. HTTP/2 and chunks mark their end.
    close_delimited_ = !end && !headers_.chunked && version < CURL_HTTP_VERSION_2_0;
    response_end_ = end;
    pos_ = start;

    if (!first_response_seen_) {
      first_response_seen_ = true;
      total_ = total;
      validator_ = TrustedValidator(headers_);
      if (validator_.empty()) hashes_ = std::make_unique<DeliveredHashes>();
    } else {
      if (total && total_ && *total != *total_) return Changed();
      if (!total_) total_ = total;
      if (total && *total < received_) return Changed();
    }
    if (received_ == 0) return std::nullopt;
    const std::string& theirs = validator_.starts_with('"') ? headers_.etag : headers_.last_modified;
    if (start == received_) {
      // Asked without If-Range only to see whether a close-delimited response was cut.
      if (validator_.empty()) {
        probing_ = false;
        return Failure{SourceError(ClosedEarly()), true};
      }
      if (theirs != validator_) return Changed();
      Joined();
    } else if (!validator_.empty()) {
      // The server ignored the Range (or a broken If-Range): skip what we have only if the
      // validator proves it is the same file, never append a second copy.
      if (theirs != validator_) return Changed();
      Joined();
      Log("'" + display_ + "' ignored the Range request; skipping " + std::to_string(received_) +
          " bytes already read");
    }
    return std::nullopt;
  }

  Failure Changed() {
    if (options_.history) options_.history->changed = true;
    return Failure{SourceError("'" + display_ + "' changed on the server during the download"), false};
  }

  // The stream now holds bytes of two responses on the word of the server's validator.
  void Joined() {
    if (options_.history) options_.history->joined = true;
  }

  std::string ClosedEarly() const {
    return "the connection closed without a Content-Length at byte " + std::to_string(received_) +
           " of '" + display_ + "', before its end";
  }

  void Log(const std::string& event) const {
    if (options_.log) options_.log(event);
  }

  bool TakeRetry(const std::string& why) {
    if (retries_used_ >= options_.retries) return false;
    ++retries_used_;
    Log("retry " + std::to_string(retries_used_) + "/" + std::to_string(options_.retries) + " at byte " +
        std::to_string(received_) + ": " + why);
    return true;
  }

  // One request: from the start, or resuming at received_ with Range and If-Range. Without a
  // trusted validator a resume starts over from byte 0 and checks what it had delivered
  // (a probe after a close-delimited response excepted: it asks only whether more follows).
  Result StartAttempt() {
    CURL* e = easy_.get();
    curl_easy_reset(e);
    request_headers_.reset();
    response_checked_ = false;
    window_reached_ = false;
    complete_ = false;
    paused_ = false;
    response_end_.reset();
    close_delimited_ = false;
    pos_ = 0;
    failure_.reset();
    headers_ = {};
    errbuf_[0] = '\0';

    uint64_t from = received_;
    if (received_ > 0 && validator_.empty() && !probing_) {
      from = 0;
      hashes_->Restart(received_);
      if (!said_start_over_) {
        said_start_over_ = true;
        Log("'" + display_ + "' has no validator to resume with (a strong ETag, or a Last-Modified 60 s "
            "older than the response): starting over from byte 0, checking the " +
            std::to_string(received_) + " bytes already read");
      }
    }

    bool ok = SetRequestOptions(e, url_, options_, errbuf_);
    ok &= curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, &HttpSource::OnHeader) == CURLE_OK;
    ok &= curl_easy_setopt(e, CURLOPT_HEADERDATA, this) == CURLE_OK;
    ok &= curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, &HttpSource::OnWrite) == CURLE_OK;
    ok &= curl_easy_setopt(e, CURLOPT_WRITEDATA, this) == CURLE_OK;

    asked_range_ = from > 0 || window_end_.has_value();
    if (asked_range_) {
      std::string range = std::to_string(from) + "-";
      if (window_end_) range += std::to_string(*window_end_ - 1);
      ok &= curl_easy_setopt(e, CURLOPT_RANGE, range.c_str()) == CURLE_OK;  // libcurl copies it
    }
    if (from > 0 && !validator_.empty()) {
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

  // Why a response that libcurl saw end cleanly does not finish the stream; nullopt: it does.
  std::optional<Failure> CheckEnd() {
    if (pos_ < received_) {
      return Failure{SourceError("Download of '" + display_ + "' ended at byte " + std::to_string(pos_) +
                                 ", before the " + std::to_string(received_) + " bytes already read"),
                     true};
    }
    if ((response_end_ && pos_ < *response_end_) || (total_ && received_ < *total_)) {
      return Failure{SourceError("Download of '" + display_ + "' ended early at byte " +
                                 std::to_string(received_) + " of " +
                                 std::to_string(total_ ? *total_ : *response_end_)),
                     true};
    }
    return std::nullopt;
  }

  Result Finish(CURLcode rc) {
    curl_multi_remove_handle(multi_.get(), easy_.get());
    running_ = false;
    if (window_reached_) {
      if (total_ && received_ >= *total_) done_ = true;
      return {};  // else Read() asks for more if the caller reads on
    }
    std::optional<Failure> failure = std::move(failure_);
    if (!failure && !complete_ && rc != CURLE_OK) {
      std::string why = errbuf_[0] ? Trim(errbuf_) : curl_easy_strerror(rc);
      failure = Failure{SourceError("Failed to download '" + display_ + "': " + why), IsRetriableCode(rc)};
    }
    if (!failure && !response_checked_) failure = CheckResponse();  // an empty body: no write callback
    if (!failure && !complete_) failure = CheckEnd();
    if (!failure && !complete_ && close_delimited_ && !probing_) {
      // Ask for the bytes after the end: 416 says it was the end, anything else that it was cut.
      probing_ = true;
      return StartAttempt();
    }
    if (!failure) {
      done_ = true;
      return {};
    }
    probing_ = false;
    if (!failure->retriable || !TakeRetry(failure->error.message())) return failure->error;
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
  uint64_t received_ = 0;               // body bytes accepted into the stream (the resume offset)
  std::optional<uint64_t> total_;       // the file's size, when a response said so
  std::optional<uint64_t> window_end_;  // read_window: asked for bytes before this only
  std::string validator_;               // the first response's trusted validator, for If-Range
  std::unique_ptr<DeliveredHashes> hashes_;  // without a validator: to check a restart from 0
  bool first_response_seen_ = false;
  bool said_start_over_ = false;
  bool probing_ = false;  // asking whether a close-delimited response was cut
  unsigned retries_used_ = 0;

  // Per attempt.
  ResponseHeaders headers_;
  bool running_ = false;
  bool asked_range_ = false;
  bool response_checked_ = false;
  bool window_reached_ = false;
  bool complete_ = false;         // the response proved that the stream ends at received_
  bool paused_ = false;
  bool close_delimited_ = false;
  uint64_t pos_ = 0;              // the file offset of the response's next body byte
  std::optional<uint64_t> response_end_;
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

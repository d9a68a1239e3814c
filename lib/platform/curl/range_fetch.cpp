// One blocking single-range GET per Read (the caller asks for merged ranges of a few MiB).
// Every response must be 206 with exactly the Content-Range asked and the total size of the
// first response; a strong ETag, once seen, goes in If-Range so that a file replaced on the
// server answers 200 (refused) instead of other bytes.
#include "platform/curl/range_fetch.hpp"

#include <cstring>

#include "platform/curl/curl_common.hpp"

namespace osu {
namespace {

class HttpRanges final : public RangeSource {
 public:
  HttpRanges(std::string url, const SourceOptions& options)
      : url_(std::move(url)), display_(DescribeSource(url_)), options_(options) {}

  Result Start() {
    if (auto r = InitCurlOnce(); !r) return r;
    easy_.reset(curl_easy_init());
    if (!easy_) return SourceError("Failed to create a libcurl handle for '" + display_ + "'");
    return {};
  }

  Result Read(uint64_t offset, std::span<uint8_t> out) override {
    size_t got = 0;
    for (unsigned attempt = 0;; ++attempt) {
      auto r = Get(offset, out, got);
      if (r && got == out.size()) return {};
      const bool retry = !r ? retriable_ : true;
      const std::string why = !r ? r.error().message()
                                 : "the response ended after " + std::to_string(got) + " of " +
                                       std::to_string(out.size()) + " bytes";
      if (!retry || attempt >= options_.retries) {
        return r ? SourceError("Range " + RangeText(offset + got, out.size() - got) + " of '" +
                               display_ + "': " + why)
                 : r.error();
      }
      if (options_.log)
        options_.log("retry " + std::to_string(attempt + 1) + "/" +
                     std::to_string(options_.retries) + " of a range of '" + display_ +
                     "' at byte " + std::to_string(offset + got) + ": " + why);
    }
  }

  Expected<uint64_t> Size() override {
    if (!total_) {
      uint8_t first;
      if (auto r = Read(0, std::span<uint8_t>(&first, 1)); !r) return r.error();
      if (!total_) return SourceError("'" + display_ + "' did not say its size in Content-Range");
    }
    return *total_;
  }
  uint64_t requests() const override { return requests_; }
  uint64_t bytes() const override { return bytes_; }

 private:
  static std::string RangeText(uint64_t first, uint64_t length) {
    return std::to_string(first) + "-" + std::to_string(first + length - 1);
  }

  // One request for out[got...]; `got` grows with every byte accepted.
  Result Get(uint64_t offset, std::span<uint8_t> out, size_t& got) {
    ++requests_;
    CURL* e = easy_.get();
    curl_easy_reset(e);
    retriable_ = false;
    failure_.clear();
    status_checked_ = false;
    content_range_.clear();
    etag_seen_.clear();
    errbuf_[0] = '\0';
    first_ = offset + got;
    last_ = offset + out.size() - 1;
    out_ = out.subspan(got);
    received_ = 0;

    const std::string range = RangeText(first_, last_ - first_ + 1);
    bool ok = SetRequestOptions(e, url_, options_, errbuf_);
    ok &= curl_easy_setopt(e, CURLOPT_RANGE, range.c_str()) == CURLE_OK;
    ok &= curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, &HttpRanges::OnHeader) == CURLE_OK;
    ok &= curl_easy_setopt(e, CURLOPT_HEADERDATA, this) == CURLE_OK;
    ok &= curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, &HttpRanges::OnWrite) == CURLE_OK;
    ok &= curl_easy_setopt(e, CURLOPT_WRITEDATA, this) == CURLE_OK;
    SlistPtr headers;
    if (!etag_.empty()) {
      headers.reset(curl_slist_append(nullptr, ("If-Range: " + etag_).c_str()));
      ok &= headers && curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers.get()) == CURLE_OK;
    }
    if (!ok) return SourceError("Failed to set up the libcurl request for '" + display_ + "'");
    const CURLcode rc = curl_easy_perform(e);
    got += received_;
    bytes_ += received_;
    if (!failure_.empty()) return SourceError(failure_);
    if (rc != CURLE_OK) {
      retriable_ = IsRetriableCode(rc);
      const std::string why = errbuf_[0] ? Trim(errbuf_) : curl_easy_strerror(rc);
      return SourceError("Failed to download a range of '" + display_ + "': " + why);
    }
    if (!status_checked_) return CheckStatus() ? Result{} : SourceError(failure_);
    return {};
  }

  static size_t OnHeader(char* data, size_t size, size_t n, void* self) {
    auto* h = static_cast<HttpRanges*>(self);
    const std::string line(data, size * n);
    if (StartsWithNoCase(line, "HTTP/")) {
      h->content_range_.clear();
      h->etag_seen_.clear();
    } else if (StartsWithNoCase(line, "Content-Range:")) {
      h->content_range_ = Trim(line.substr(14));
    } else if (StartsWithNoCase(line, "ETag:")) {
      h->etag_seen_ = Trim(line.substr(5));
    }
    return size * n;
  }

  // The response must be exactly the range asked, of the same file as the first response.
  bool CheckStatus() {
    status_checked_ = true;
    long code = 0;
    curl_easy_getinfo(easy_.get(), CURLINFO_RESPONSE_CODE, &code);
    const std::string asked = "bytes " + RangeText(first_, last_ - first_ + 1);
    if (code >= 500 || code == 408 || code == 429) {
      retriable_ = true;
      failure_ = "HTTP " + std::to_string(code) + " from '" + display_ + "' for " + asked;
      return false;
    }
    if (code == 200) {
      failure_ = "'" + display_ + "' ignored the Range request (HTTP 200" +
                 std::string(etag_.empty() ? ")" : ", or the file changed: If-Range)") + " for " +
                 asked;
      return false;
    }
    if (code != 206) {
      failure_ = "HTTP " + std::to_string(code) + " from '" + display_ + "' for " + asked;
      return false;
    }
    auto range = ParseContentRange(content_range_);
    if (!range || !range->first || *range->first != first_ || *range->last != last_ ||
        (total_ && range->total && *range->total != *total_)) {
      failure_ = "'" + display_ + "' answered " + asked + " with Content-Range '" +
                 content_range_ + "'";
      return false;
    }
    if (!total_) total_ = range->total;
    // Only a strong validator may go in If-Range (RFC 9110 13.1.5).
    if (etag_.empty() && !etag_seen_.empty() && etag_seen_.front() == '"') etag_ = etag_seen_;
    return true;
  }

  static size_t OnWrite(char* data, size_t size, size_t n, void* self) {
    auto* h = static_cast<HttpRanges*>(self);
    if (!h->status_checked_ && !h->CheckStatus()) return 0;
    const size_t len = size * n;
    if (h->received_ + len > h->out_.size()) {
      h->failure_ = "'" + h->display_ + "' sent more bytes than the range asked";
      return 0;
    }
    std::memcpy(h->out_.data() + h->received_, data, len);
    h->received_ += len;
    return len;
  }

  std::string url_, display_;
  SourceOptions options_;
  EasyPtr easy_;
  char errbuf_[CURL_ERROR_SIZE] = {};
  std::string etag_, etag_seen_, content_range_, failure_;
  std::optional<uint64_t> total_;
  uint64_t first_ = 0, last_ = 0;
  std::span<uint8_t> out_;
  size_t received_ = 0;
  bool status_checked_ = false, retriable_ = false;
  uint64_t requests_ = 0, bytes_ = 0;
};

}  // namespace

Expected<std::unique_ptr<RangeSource>> OpenHttpRanges(const std::string& url,
                                                      const SourceOptions& options) {
  auto source = std::make_unique<HttpRanges>(url, options);
  if (auto r = source->Start(); !r) return r.error();
  return std::unique_ptr<RangeSource>(std::move(source));
}

}  // namespace osu

#include "io/read_ahead.hpp"

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

namespace osu {
namespace {

// A ring of `capacity` bytes: the thread fills the free part outside the lock (the caller
// never touches it), the caller copies out of the filled part.
class ReadAhead final : public Reader {
 public:
  ReadAhead(std::unique_ptr<Reader> inner, size_t capacity, size_t piece)
      : inner_(std::move(inner)), ring_(std::max<size_t>(capacity, 1)),
        piece_(std::max<size_t>(piece, 1)) {}

  ~ReadAhead() override {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

  Expected<size_t> Read(std::span<uint8_t> buf) override {
    if (buf.empty()) return size_t{0};
    if (!thread_.joinable()) thread_ = std::thread([this] { Fill(); });
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return filled_ > 0 || end_ || error_; });
    if (filled_ == 0) {
      if (error_) return *error_;
      return size_t{0};
    }
    const size_t n = std::min({buf.size(), filled_, ring_.size() - head_});
    std::memcpy(buf.data(), ring_.data() + head_, n);
    head_ = (head_ + n) % ring_.size();
    filled_ -= n;
    lock.unlock();
    cv_.notify_all();
    return n;
  }

 private:
  void Fill() {
    for (;;) {
      size_t tail, room;
      {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [&] { return stop_ || filled_ < ring_.size(); });
        if (stop_) return;
        tail = (head_ + filled_) % ring_.size();
        room = std::min({ring_.size() - filled_, ring_.size() - tail, piece_});
      }
      auto n = inner_->Read(std::span<uint8_t>(ring_.data() + tail, room));
      {
        std::lock_guard lock(mu_);
        if (!n) {
          error_ = n.error();
        } else if (*n == 0) {
          end_ = true;
        } else {
          filled_ += *n;
        }
      }
      cv_.notify_all();
      if (!n || *n == 0) return;
    }
  }

  std::unique_ptr<Reader> inner_;
  std::vector<uint8_t> ring_;
  const size_t piece_;
  size_t head_ = 0, filled_ = 0;  // guarded by mu_
  bool end_ = false, stop_ = false;
  std::optional<Error> error_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::thread thread_;  // last: joined before the members it uses go
};

}  // namespace

std::unique_ptr<Reader> MakeReadAhead(std::unique_ptr<Reader> inner, size_t capacity,
                                      size_t piece) {
  return std::make_unique<ReadAhead>(std::move(inner), capacity, piece);
}

}  // namespace osu

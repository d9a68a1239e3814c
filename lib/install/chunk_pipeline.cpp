#include "install/chunk_pipeline.hpp"

#include <atomic>
#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>
#include <new>
#include <optional>
#include <string>
#include <thread>

namespace osu {

namespace {
constexpr std::align_val_t kAlign{4096};
}

void AlignedFree::operator()(uint8_t* p) const { ::operator delete(p, kAlign); }

AlignedBuffer AllocateAligned(size_t size) {
  return AlignedBuffer(static_cast<uint8_t*>(::operator new(size, kAlign)));
}

namespace {

struct Slot {
  uint8_t* data = nullptr;
  size_t len = 0;
  uint64_t offset = 0;
  uint64_t seq = 0;    // chunk number in the stream
  size_t pending = 0;  // consumers that still need it
};

// Everything the threads share, under one mutex: chunks move at most every few ms.
class Shared {
 public:
  Shared(const std::vector<uint8_t*>& buffers, size_t consumers,
         std::vector<std::optional<size_t>> after)
      : slots_(buffers.size()),
        queues_(consumers),
        ready_(consumers),
        after_(std::move(after)),
        done_(consumers, 0) {
    after_.resize(consumers);
    for (size_t i = 0; i < buffers.size(); ++i) {
      slots_[i].data = buffers[i];
      free_.push_back(i);
    }
  }

  // First error wins; everyone stops at their next wait.
  void Fail(Error e) {
    std::lock_guard lk(mu_);
    if (!error_) error_ = std::move(e);
    StopLocked();
  }
  void Stop() {
    std::lock_guard lk(mu_);
    StopLocked();
  }
  bool stopped() const { return stop_.load(std::memory_order_relaxed); }
  std::optional<Error> error() {
    std::lock_guard lk(mu_);
    return error_;
  }

  // Producer side. nullopt: stopped.
  std::optional<size_t> TakeFree() {
    std::unique_lock lk(mu_);
    free_ready_.wait(lk, [&] { return stop_ || !free_.empty(); });
    if (stop_) return std::nullopt;
    size_t i = free_.front();
    free_.pop_front();
    return i;
  }
  Slot& slot(size_t i) { return slots_[i]; }
  void Publish(size_t i) {
    std::lock_guard lk(mu_);
    slots_[i].pending = queues_.size();
    for (size_t k = 0; k < queues_.size(); ++k) {
      queues_[k].push_back(i);
      ready_[k].notify_one();
    }
  }
  void GiveBack(size_t i) {
    std::lock_guard lk(mu_);
    free_.push_back(i);
  }
  void FinishProducing() {
    std::lock_guard lk(mu_);
    produced_all_ = true;
    for (auto& cv : ready_) cv.notify_all();
  }

  // Consumer side. nullopt: stopped, or the end of the data.
  std::optional<size_t> TakeNext(size_t k) {
    std::unique_lock lk(mu_);
    ready_[k].wait(lk, [&] {
      return stop_ || (queues_[k].empty() ? produced_all_ : Ready(k, queues_[k].front()));
    });
    if (stop_ || queues_[k].empty()) return std::nullopt;
    size_t i = queues_[k].front();
    queues_[k].pop_front();
    return i;
  }
  void Done(size_t k, size_t i) {
    std::lock_guard lk(mu_);
    ++done_[k];
    for (size_t d = 0; d < after_.size(); ++d)
      if (after_[d] == k) ready_[d].notify_one();
    if (--slots_[i].pending == 0) {
      free_.push_back(i);
      free_ready_.notify_one();
    }
  }

 private:
  // Consumers see chunks in order, so "done with chunk seq" is a count.
  bool Ready(size_t k, size_t i) const {
    return !after_[k] || done_[*after_[k]] > slots_[i].seq;
  }
  void StopLocked() {
    stop_ = true;
    free_ready_.notify_all();
    for (auto& cv : ready_) cv.notify_all();
  }

  std::mutex mu_;
  std::vector<Slot> slots_;
  std::deque<size_t> free_;
  std::vector<std::deque<size_t>> queues_;
  std::condition_variable free_ready_;
  std::vector<std::condition_variable> ready_;
  std::vector<std::optional<size_t>> after_;
  std::vector<uint64_t> done_;  // chunks each consumer has finished
  bool produced_all_ = false;
  std::atomic<bool> stop_{false};
  std::optional<Error> error_;
};

std::string Describe(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    return ex.what();
  } catch (...) {
    return "unknown exception";
  }
}

void ConsumeAll(Shared& shared, size_t k, const ChunkPipeline::Consumer& consume) {
  try {
    while (auto i = shared.TakeNext(k)) {
      const Slot& s = shared.slot(*i);
      Result r = consume(s.offset, std::span<const uint8_t>(s.data, s.len));
      if (!r) {
        shared.Fail(r.error());
        return;
      }
      shared.Done(k, *i);
    }
  } catch (...) {
    shared.Fail(DeviceError("Internal error while copying the image: " +
                            Describe(std::current_exception())));
  }
}

// Stops and joins whatever threads were started, on every path out of Run().
class Joiner {
 public:
  explicit Joiner(Shared& shared) : shared_(shared) {}
  ~Joiner() {
    if (!threads_.empty()) shared_.Stop();
    JoinAll();
  }
  void Add(std::thread t) { threads_.push_back(std::move(t)); }
  void JoinAll() {
    for (auto& t : threads_) t.join();
    threads_.clear();
  }

 private:
  Shared& shared_;
  std::vector<std::thread> threads_;
};

}  // namespace

Result ChunkPipeline::Run(const Producer& produce, const std::vector<Consumer>& consumers,
                          const std::vector<std::optional<size_t>>& after) {
  if (buffers_.empty() || consumers.empty()) {
    return UsageError("Chunk pipeline needs at least one buffer and one consumer");
  }
  for (size_t k = 0; k < after.size(); ++k) {
    // Only on an earlier consumer: no cycle can deadlock.
    if (k >= consumers.size() || (after[k] && *after[k] >= k))
      return UsageError("Chunk pipeline: consumer " + std::to_string(k) +
                        " can only wait for an earlier consumer");
  }
  Shared shared(buffers_, consumers.size(), after);
  Joiner joiner(shared);
  try {
    for (size_t k = 0; k < consumers.size(); ++k) {
      joiner.Add(std::thread(ConsumeAll, std::ref(shared), k, std::cref(consumers[k])));
    }
    uint64_t offset = 0, seq = 0;
    while (auto i = shared.TakeFree()) {
      Slot& s = shared.slot(*i);
      auto n = produce(offset, std::span<uint8_t>(s.data, chunk_size_));
      if (!n) {
        shared.Fail(n.error());
        break;
      }
      if (*n == 0) {
        shared.GiveBack(*i);
        break;
      }
      s.len = *n;
      s.offset = offset;
      s.seq = seq++;
      offset += *n;
      shared.Publish(*i);
      if (*n < chunk_size_) break;
    }
  } catch (...) {
    shared.Fail(DeviceError("Internal error while copying the image: " +
                            Describe(std::current_exception())));
  }
  shared.FinishProducing();
  joiner.JoinAll();
  if (auto e = shared.error()) return *e;
  return {};
}

}  // namespace osu

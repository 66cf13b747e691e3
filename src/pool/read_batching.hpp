// Read batching, without actors: the queue of autocommit reads that wait for a
// connection of a pool, and how the reads that waited together become one batch.
//
// A read-only session's autocommit read takes no lease: it waits here, in arrival
// order, until a connection of the pool comes free; that connection then takes up to
// `max_read_batch` of the first reads in one message (on PostgreSQL one pipeline, on
// SQLite one read transaction), so that reads that wait together cost one round trip.
// A batch runs until its longest read's limit; past that it is cancelled whole.
//
// The pool model (pool_model.hpp) owns one queue and decides when a connection takes
// a batch; this file knows what a queued read and a batch are.
//
// Invariant: the queue is ordered by id (the order the reads arrived in).
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <vector>

namespace cafdb::pool {

/// The same clock and resolution as caf::timestamp, so that the engine passes its
/// timestamps as they are.
using duration = std::chrono::nanoseconds;
using time_point = std::chrono::time_point<std::chrono::system_clock, duration>;
using slot_id = uint64_t;
/// Who waits for or holds a connection: an actor id.
using holder_id = uint64_t;

/// Reads sent to one connection in one message at most.
constexpr size_t max_read_batch = 32;

template <class Read>
class read_queue {
 public:
  struct queued_read {
    uint64_t id = 0;
    holder_id holder = 0;
    time_point enqueued;
    /// When it stops waiting for a connection (pool_timeout).
    time_point expires;
    /// How long it may run once it has one.
    duration limit{0};
    Read payload;
  };

  /// Reads sent to one connection in one message. Its id is its first read's id.
  struct batch {
    uint64_t id = 0;
    slot_id slot = 0;
    std::vector<queued_read> reads;
    /// The longest limit of its reads, and when it passes.
    duration limit{0};
    time_point deadline;
  };

  bool empty() const { return reads_.empty(); }
  size_t size() const { return reads_.size(); }

  /// Queues a read in id order (it normally arrives last).
  void push(queued_read read) {
    auto at = std::upper_bound(reads_.begin(), reads_.end(), read.id,
                               [](uint64_t id, const queued_read& x) { return id < x.id; });
    reads_.insert(at, std::move(read));
  }

  /// The reads whose pool_timeout passed leave the queue.
  std::vector<queued_read> expire(time_point now) {
    std::vector<queued_read> out;
    for (auto i = reads_.begin(); i != reads_.end();) {
      if (i->expires > now) {
        ++i;
        continue;
      }
      out.push_back(std::move(*i));
      i = reads_.erase(i);
    }
    return out;
  }

  /// The soonest expiry of a queued read; max() when none waits.
  time_point next_expiry() const {
    auto next = time_point::max();
    for (auto& r : reads_)
      next = std::min(next, r.expires);
    return next;
  }

  /// The first read leaves the queue, if there is one.
  std::optional<queued_read> pop_front() {
    if (reads_.empty())
      return std::nullopt;
    auto r = std::move(reads_.front());
    reads_.pop_front();
    return r;
  }

  /// Every read leaves the queue.
  std::deque<queued_read> take_all() {
    auto out = std::move(reads_);
    reads_.clear();
    return out;
  }

  /// The reads of `holder` (gone) leave the queue unanswered.
  void drop(holder_id holder) {
    reads_.erase(std::remove_if(reads_.begin(), reads_.end(),
                                [&](const queued_read& r) { return r.holder == holder; }),
                 reads_.end());
  }

  /// Up to max_read_batch of the first reads become one batch on `slot`, running from
  /// `now` until its longest read's limit. The queue must not be empty.
  batch take_batch(slot_id slot, time_point now) {
    auto n = std::min(reads_.size(), max_read_batch);
    batch b;
    b.slot = slot;
    b.reads.reserve(n);
    for (size_t i = 0; i < n; ++i) {
      b.limit = std::max(b.limit, reads_.front().limit);
      b.reads.push_back(std::move(reads_.front()));
      reads_.pop_front();
    }
    b.id = b.reads.front().id;
    b.deadline = now + b.limit;
    return b;
  }

  /// The broken invariant, if any.
  std::optional<std::string> check() const {
    for (size_t i = 1; i < reads_.size(); ++i)
      if (reads_[i - 1].id >= reads_[i].id)
        return std::string{"queued reads out of id order"};
    return std::nullopt;
  }

 private:
  std::deque<queued_read> reads_;
};

} // namespace cafdb::pool

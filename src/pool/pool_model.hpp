// The state of one connection pool, without actors: its connections (slots), the idle
// list, the queues of checkouts and autocommit reads, the lease table, the running read
// batches and the counters. The engine actor (actors/engine.cpp) owns one model per
// pool and only carries out what the model decides: it spawns, pings, resets and closes
// connection actors and delivers answers. Tests drive the model through every
// transition directly (tests/unit/pool_model_test.cpp). Its units: the read queue and
// batches (read_batching.hpp), the engine's health and reconnect backoff (health.hpp),
// the housekeeping period (housekeeping.hpp).
//
// A slot's life (each arrow is one model call):
//
//   opening   ── open_succeeded ─────────────────────► placed
//   opening   ── open_failed ────────────────────────► gone
//   idle      ── take_idle, ready ──► returning ── grant ──► leased
//   idle      ── take_idle, idle too long (pre-ping) ► pinging
//   idle      ── sweep_idle, close_idle, slot_died ──► gone
//   pinging   ── ping_answered ──────────────────────► placed
//   pinging   ── ping_failed ────────────────────────► gone
//   leased    ── checkin, reclaim ───────────────────► returning
//   reading   ── finish_batch, overdue_batches ──────► returning
//   returning ── release_slot (reset ok, answered) ──► placed
//   returning ── discard (state unknown) ────────────► gone
//   shelved   ── unshelve (recalled, or back) ───────► placed
//   shelved   ── take_shelved (for a checkout) ──────► returning ── grant ──► leased
//   shelved   ── shelf_lost (unusable) ──────────────► gone
//   shelved   ── retire_shelved (idle_timeout) ──────► gone
//
// "Placed" is the one decision (release_slot, the ping and open outcomes, serve_queue)
// of where a connection that came free goes: retired (pool_recycle), discarded (its
// actor died), the next queued reads (a batch: reading), the next queued checkout (a
// lease: leased), closed (above pool_size, or the engine is down), the in-place shelf
// (below its target: shelved) or idle.
//
// Shelved slots are the pool's connections in its other access mode, reading in place:
// sessions borrow them from the shelf (in_place_shelf.hpp) without asking the engine,
// so the model knows them only as shelved, lent or not. The engine takes one back for
// a checkout that finds no idle connection (take_shelved), and (unshelve) when work
// waits and the pool may open no more, when it expires, or when its borrower reports it.
//
// Invariants (check_invariants; asserted after every transition in debug and
// sanitizer builds):
// 1. total = opening + idle + leased + reading + pinging + returning + shelved = slots,
//    total <= max, and shelved <= the shelf's target.
// 2. The idle list holds exactly the idle slots, once each.
// 3. Every lease names a leased slot and every leased slot has one lease; every running
//    batch names a reading slot and every reading slot has one batch.
// 4. Queued checkouts and reads are ordered by id (the order they arrived in).
// 5. Idle connections and queued work coexist only while pings are out: a pinged
//    connection serves the queue when it answers. (The engine empties the queues when
//    it goes down.)
#pragma once

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "pool/read_batching.hpp"

namespace cafdb::pool {

enum class slot_state : uint8_t { opening, idle, leased, reading, pinging, returning, shelved };
constexpr size_t slot_state_count = 7;

const char* to_string(slot_state state);

/// The sizes a pool is configured with.
struct pool_limits {
  std::string name;
  int size = 1;
  int max = 1;
  int min_idle = 0;
  /// Connections to put on the in-place shelf; 0: the pool reads in place not at all.
  int shelf = 0;
};

/// What a lease was granted for.
struct lease_terms {
  /// Who holds it, for leak warnings: "session 'label'". No secrets.
  std::string owner;
  /// The engine may reclaim it past lease_timeout.
  bool revocable = false;
};

struct lease_info {
  slot_id slot = 0;
  holder_id holder = 0;
  time_point granted;
  lease_terms terms;
  bool warned = false;   // leak_threshold logged
  bool revoking = false; // lease_timeout passed: the holder was told to give it back
};

/// Counters since the pool started.
struct pool_counters {
  int64_t checkouts = 0;
  int64_t timeouts = 0;
  int64_t discarded = 0;
  int64_t opened = 0;
  int64_t cancelled = 0;
  int64_t reconnects = 0;
  int64_t recycled = 0;
  int64_t ping_failures = 0;
  int64_t server_full = 0;
  int64_t leaks = 0;
  int64_t reclaimed = 0;
};

/// The last checkout waits, for percentiles.
class wait_samples {
 public:
  static constexpr size_t capacity = 1024;
  void add(duration waited);
  /// Nearest rank: the smallest sample with at least q of all samples at or below it.
  int64_t percentile_us(double q) const;

 private:
  std::vector<int64_t> micros_;
  size_t next_ = 0;
};

template <class Checkout, class Read>
class pool_model {
 public:
  struct queued_checkout {
    uint64_t id = 0;
    holder_id holder = 0;
    time_point enqueued;
    lease_terms terms;
    Checkout payload;
  };

  /// An autocommit read waiting for a connection, and reads sent to one connection
  /// together (read_batching.hpp).
  using queued_read = typename read_queue<Read>::queued_read;
  using batch = typename read_queue<Read>::batch;

  /// Where a connection that came free went.
  struct release {
    enum class to {
      idle,
      /// The first queued checkout: `waiter` holds it; its lease id is its id.
      waiter,
      /// The first queued reads: `batch_id` names the new running batch.
      reads,
      /// pool_recycle passed: the engine closes it.
      retired,
      /// Its actor died: the engine forgets it.
      discarded,
      /// Above pool_size, or the engine is down: the engine closes it.
      closed,
      /// Below the shelf's target: the engine puts it on the shelf (shelved).
      shelf,
    } where = to::idle;
    /// The connection that came free.
    slot_id slot = 0;
    std::optional<queued_checkout> waiter;
    uint64_t batch_id = 0;
  };

  /// What a checkout or a queue found among the idle connections.
  struct idle_take {
    enum class found { none, ready, needs_ping } what = found::none;
    slot_id slot = 0;
    /// Expired idle connections met on the way: gone from the model, the engine closes them.
    std::vector<slot_id> retired;
  };

  /// The work serve_queue started: batches, leases and pings, and the expired
  /// connections it retired on the way.
  struct queue_progress {
    std::vector<release> released;
    std::vector<slot_id> pings;
    std::vector<slot_id> retired;
  };

  /// Leases and batches a housekeeping pass acts on.
  struct lease_watch {
    /// Held past leak_threshold for the first time.
    std::vector<std::pair<uint64_t, lease_info>> leaked;
    /// Held past lease_timeout: the holder is told to give it back.
    std::vector<std::pair<uint64_t, lease_info>> revoked;
  };

  explicit pool_model(pool_limits limits) : limits_(std::move(limits)) {
    limits_.min_idle = std::min(limits_.min_idle, limits_.size);
  }

  // -- reading ------------------------------------------------------------------

  const pool_limits& limits() const { return limits_; }
  const std::string& name() const { return limits_.name; }
  int total() const { return static_cast<int>(slots_.size()); }
  int count(slot_state state) const { return counts_[static_cast<size_t>(state)]; }
  int idle_count() const { return static_cast<int>(idle_.size()); }
  /// Leased to a holder or running a batch of reads.
  int in_use() const { return count(slot_state::leased) + count(slot_state::reading); }
  int waiting() const { return static_cast<int>(checkouts_.size() + reads_.size()); }
  bool has_idle() const { return !idle_.empty(); }
  size_t queued_reads() const { return reads_.size(); }
  bool is_queued_checkout(uint64_t id) const {
    auto i = std::lower_bound(checkouts_.begin(), checkouts_.end(), id,
                              [](const queued_checkout& w, uint64_t x) { return w.id < x; });
    return i != checkouts_.end() && i->id == id;
  }
  const pool_counters& counters() const { return counters_; }
  const wait_samples& waits() const { return waits_; }
  const std::unordered_map<uint64_t, lease_info>& leases() const { return leases_; }
  const std::unordered_map<uint64_t, batch>& batches() const { return batches_; }
  batch* find_batch(uint64_t id) {
    auto i = batches_.find(id);
    return i == batches_.end() ? nullptr : &i->second;
  }
  bool contains(slot_id slot) const { return slots_.count(slot) > 0; }
  slot_state state_of(slot_id slot) const { return slots_.at(slot).state; }
  /// When the server refused a connect as full, no new connection before this.
  time_point full_until() const { return full_until_; }
  /// One line for messages and logs: "reader pool: 4 total, 2 in use, 2 idle, 0 waiting",
  /// and ", 2 on the in-place shelf" when it has some (lent to callers that run in place,
  /// or free for them): without it, a pool whose every connection is there looked empty.
  std::string describe() const {
    auto shelved = count(slot_state::shelved);
    return limits_.name + " pool: " + std::to_string(total()) + " total, " +
           std::to_string(in_use()) + " in use, " + std::to_string(idle_count()) + " idle, " +
           std::to_string(waiting()) + " waiting" +
           (shelved > 0 ? ", " + std::to_string(shelved) + " on the in-place shelf" : "");
  }

  // -- opening ------------------------------------------------------------------

  /// How many connections to open now: up to min_idle, and one for each queued
  /// checkout (and one for all queued reads) that no opening connection will serve;
  /// never above max, none while the engine is down or the server said it is full.
  int wanted_openings(time_point now, bool down) const {
    if (down || now < full_until_)
      return 0;
    auto wanted = static_cast<int>(checkouts_.size()) + (reads_.empty() ? 0 : 1);
    int n = 0;
    while (total() + n < limits_.max &&
           (total() + n < limits_.min_idle || wanted > count(slot_state::opening) + n))
      ++n;
    return n;
  }

  /// After losing a connection: whether to open one at once even while the server said
  /// it is full, because it doubles as a probe (if the server is gone, opening fails and
  /// the engine goes down instead of handing out more dead connections).
  bool wants_probe(bool down) const {
    return !down && total() < std::max(limits_.min_idle, 1) && total() < limits_.max;
  }

  bool can_open() const { return total() < limits_.max; }

  void open_started(slot_id slot, time_point expires) {
    require(total() < limits_.max, "open_started: the pool is at max");
    require(slots_.count(slot) == 0, "open_started: slot id in use");
    slots_.emplace(slot, slot_entry{slot_state::opening, expires, time_point{}, false});
    counts_[index(slot_state::opening)] += 1;
    check();
  }

  /// The connection opened: it serves the queue, idles or closes (release).
  release open_succeeded(slot_id slot, time_point now, bool down, bool reconnect = false) {
    expect_state(slot, slot_state::opening, "open_succeeded");
    counters_.opened += 1;
    if (reconnect)
      counters_.reconnects += 1;
    full_backoff_ = duration{0};
    set_state(slot, slot_state::returning);
    return release_slot(slot, now, down);
  }

  void open_failed(slot_id slot) {
    expect_state(slot, slot_state::opening, "open_failed");
    remove(slot);
    check();
  }

  /// The server refused a connect as full (53300): the pool opens no connection for a
  /// while, doubling from 250 ms up to 5 s. Returns that while.
  duration server_full(time_point now) {
    counters_.server_full += 1;
    full_backoff_ = full_backoff_.count() == 0
                        ? duration{std::chrono::milliseconds(250)}
                        : std::min(full_backoff_ * 2, duration{std::chrono::seconds(5)});
    full_until_ = now + full_backoff_;
    return full_backoff_;
  }

  // -- checkouts ----------------------------------------------------------------

  /// Takes the next usable idle connection, retiring expired ones. With `ping_after`,
  /// one idle for that long needs a ping first: it is then `pinging`.
  idle_take take_idle(time_point now, std::optional<duration> ping_after) {
    idle_take out;
    while (!idle_.empty()) {
      auto slot = idle_.back();
      idle_.pop_back();
      auto& entry = slots_.at(slot);
      if (entry.dead || now >= entry.expires) {
        counters_.recycled += 1;
        remove(slot);
        out.retired.push_back(slot);
        continue;
      }
      out.slot = slot;
      if (ping_after && now - entry.idle_since >= *ping_after) {
        set_state(slot, slot_state::pinging);
        out.what = idle_take::found::needs_ping;
      } else {
        set_state(slot, slot_state::returning);
        out.what = idle_take::found::ready;
      }
      break;
    }
    return out;
  }

  /// Leases a connection take_idle found ready to `holder`.
  void grant(slot_id slot, uint64_t lease_id, holder_id holder, time_point now, lease_terms terms,
             duration waited) {
    expect_state(slot, slot_state::returning, "grant");
    lease(slot, lease_id, holder, now, std::move(terms), waited);
    check();
  }

  /// Queues a checkout, then serves the queue from the idle connections (serve_queue).
  queue_progress enqueue(queued_checkout waiter, time_point now, std::optional<duration> ping_after,
                         bool down) {
    // Kept in id order (invariant 4): a waiter normally arrives last.
    auto at = std::upper_bound(checkouts_.begin(), checkouts_.end(), waiter.id,
                               [](uint64_t id, const queued_checkout& x) { return id < x.id; });
    checkouts_.insert(at, std::move(waiter));
    return serve_queue(now, ping_after, down);
  }

  /// Queues a read, then serves the queue from the idle connections (serve_queue).
  queue_progress enqueue(queued_read read, time_point now, std::optional<duration> ping_after,
                         bool down) {
    reads_.push(std::move(read));
    return serve_queue(now, ping_after, down);
  }

  /// Hands idle connections to queued work: each takes a lease or a batch, or is pinged
  /// first; no more pings than there is work waiting.
  queue_progress serve_queue(time_point now, std::optional<duration> ping_after, bool down) {
    queue_progress out;
    serve_more(out, now, ping_after, down);
    check();
    return out;
  }

  /// A pinged connection answered: it serves the queue (or idles, retires...); if it
  /// cannot serve (it expired or died meanwhile), the queue looks for the next.
  queue_progress ping_answered(slot_id slot, time_point now, std::optional<duration> ping_after,
                               bool down) {
    expect_state(slot, slot_state::pinging, "ping_answered");
    queue_progress out;
    out.released.push_back(place(slot, now, down));
    serve_more(out, now, ping_after, down);
    check();
    return out;
  }

  /// A pinged connection is dead: discarded (counted), and the queue looks for the next.
  queue_progress ping_failed(slot_id slot, time_point now, std::optional<duration> ping_after,
                             bool down) {
    expect_state(slot, slot_state::pinging, "ping_failed");
    counters_.ping_failures += 1;
    counters_.discarded += 1;
    remove(slot);
    queue_progress out;
    serve_more(out, now, ping_after, down);
    check();
    return out;
  }

  /// A queued checkout's pool_timeout passed: it leaves the queue (counted).
  std::optional<queued_checkout> expire_checkout(uint64_t id) {
    auto i = std::lower_bound(checkouts_.begin(), checkouts_.end(), id,
                              [](const queued_checkout& w, uint64_t x) { return w.id < x; });
    if (i == checkouts_.end() || i->id != id)
      return std::nullopt;
    auto out = std::move(*i);
    checkouts_.erase(i);
    counters_.timeouts += 1;
    check();
    return out;
  }

  /// Queued reads whose pool_timeout passed leave the queue (counted).
  std::vector<queued_read> expire_reads(time_point now) {
    auto out = reads_.expire(now);
    counters_.timeouts += static_cast<int64_t>(out.size());
    check();
    return out;
  }

  /// The soonest expiry of a queued read; max() when none waits.
  time_point next_read_expiry() const { return reads_.next_expiry(); }

  /// The first queued checkout or, if none, the first queued read leaves the queue:
  /// the engine answers it with why no connection can be opened.
  std::optional<std::pair<std::optional<queued_checkout>, std::optional<queued_read>>>
  take_first_waiting() {
    if (!checkouts_.empty()) {
      auto w = std::move(checkouts_.front());
      checkouts_.pop_front();
      check();
      return std::make_pair(std::optional<queued_checkout>{std::move(w)},
                            std::optional<queued_read>{});
    }
    if (auto r = reads_.pop_front()) {
      check();
      return std::make_pair(std::optional<queued_checkout>{}, std::move(r));
    }
    return std::nullopt;
  }

  /// Everything queued leaves (the engine went down or stops).
  std::pair<std::deque<queued_checkout>, std::deque<queued_read>> take_waiting() {
    auto out = std::make_pair(std::move(checkouts_), reads_.take_all());
    checkouts_.clear();
    check();
    return out;
  }

  // -- returning connections ------------------------------------------------------

  /// A lease ends: the slot is `returning` until the engine releases or discards it.
  std::optional<lease_info> checkin(uint64_t lease_id) { return take_returning(leases_, lease_id); }

  /// `holder` went down: its leases end (returned, to be reset) and its queued
  /// checkouts and reads are dropped unanswered.
  std::vector<std::pair<uint64_t, lease_info>> reclaim(holder_id holder) {
    std::vector<std::pair<uint64_t, lease_info>> out;
    for (auto i = leases_.begin(); i != leases_.end();) {
      if (i->second.holder != holder) {
        ++i;
        continue;
      }
      set_state(i->second.slot, slot_state::returning);
      out.emplace_back(i->first, std::move(i->second));
      i = leases_.erase(i);
    }
    checkouts_.erase(std::remove_if(checkouts_.begin(), checkouts_.end(),
                                    [&](const queued_checkout& w) { return w.holder == holder; }),
                     checkouts_.end());
    reads_.drop(holder);
    check();
    return out;
  }

  /// A running batch was answered: the slot is `returning`.
  std::optional<batch> finish_batch(uint64_t batch_id) {
    return take_returning(batches_, batch_id);
  }

  /// Running batches past their deadline end (the engine answers them with
  /// statement_timeout and cancels their connections): their slots are `returning`.
  std::vector<batch> overdue_batches(time_point now) {
    std::vector<batch> out;
    for (auto i = batches_.begin(); i != batches_.end();) {
      if (i->second.deadline > now) {
        ++i;
        continue;
      }
      set_state(i->second.slot, slot_state::returning);
      out.push_back(std::move(i->second));
      i = batches_.erase(i);
    }
    check();
    return out;
  }

  /// The soonest deadline of a running batch; max() when none runs.
  time_point next_batch_deadline() const {
    auto next = time_point::max();
    for (auto& [id, b] : batches_)
      next = std::min(next, b.deadline);
    return next;
  }

  /// A connection came free (opened, reset, answered its batch, checked in clean):
  /// decides where it goes.
  release release_slot(slot_id slot, time_point now, bool down) {
    expect_state(slot, slot_state::returning, "release: the slot is not on its way back");
    auto out = place(slot, now, down);
    check();
    return out;
  }

  /// A connection in an unknown state (or one whose reset failed) leaves the pool; it
  /// is counted as discarded.
  void discard(slot_id slot) {
    expect_state(slot, slot_state::returning,
                 "discard: only a connection on its way back can be discarded");
    counters_.discarded += 1;
    remove(slot);
    check();
  }

  /// A connection's actor died. An idle one leaves at once (true); any other is marked
  /// and leaves when it next comes back (release discards it).
  bool slot_died(slot_id slot) {
    auto i = slots_.find(slot);
    if (i == slots_.end())
      return false;
    if (i->second.state != slot_state::idle) {
      i->second.dead = true;
      return false;
    }
    idle_.erase(std::find(idle_.begin(), idle_.end(), slot));
    counters_.discarded += 1;
    remove(slot);
    check();
    return true;
  }

  /// Every idle connection leaves (the engine lost its server): the engine closes them.
  std::vector<slot_id> close_idle() {
    auto out = std::move(idle_);
    idle_.clear();
    for (auto slot : out)
      remove(slot);
    check();
    return out;
  }

  // -- the in-place shelf ---------------------------------------------------------

  /// How many shelved connections the engine should take back for queued work: the
  /// work no idle, opening or pinged connection will serve. With room to open, the
  /// engine opens connections for waiting work first (refill) and they count here; what
  /// is left is work the pool may not open for (at max, or the server said it is full):
  /// without a recall it would wait for pool_timeout beside shelved connections.
  int shelf_wanted_back() const {
    if (!idle_.empty())
      return 0;
    auto unserved = waiting_units() - count(slot_state::opening) - count(slot_state::pinging);
    return std::clamp(unserved, 0, count(slot_state::shelved));
  }

  /// A shelf that started empty opens (its first borrower on a thread of its own came:
  /// in_place_shelf::wanted): from now on up to `target` connections that come free go
  /// to it. The idle ones go now, and are returned for the engine to put there.
  std::vector<slot_id> open_shelf(int target) {
    require(target >= limits_.shelf, "open_shelf: the shelf's target only grows");
    limits_.shelf = target;
    std::vector<slot_id> out;
    while (!idle_.empty() && count(slot_state::shelved) < limits_.shelf) {
      auto slot = idle_.back();
      idle_.pop_back();
      set_state(slot, slot_state::shelved);
      out.push_back(slot);
    }
    check();
    return out;
  }

  /// A shelved connection is the engine's again (recalled while available, or its
  /// borrower gave it back after a recall): placed like any that came free.
  release unshelve(slot_id slot, time_point now, bool down) {
    expect_state(slot, slot_state::shelved, "unshelve");
    set_state(slot, slot_state::returning);
    return release_slot(slot, now, down);
  }

  /// A checkout that found no idle connection takes a shelved one the engine took off
  /// the shelf: `returning` until granted, like one take_idle found ready.
  void take_shelved(slot_id slot) {
    expect_state(slot, slot_state::shelved, "take_shelved");
    set_state(slot, slot_state::returning);
    check();
  }

  /// A shelved connection's borrower found it unusable: it leaves (counted as
  /// discarded); the engine closes it.
  void shelf_lost(slot_id slot) {
    expect_state(slot, slot_state::shelved, "shelf_lost");
    counters_.discarded += 1;
    remove(slot);
    check();
  }

  /// A shelved connection no one borrowed for idle_timeout leaves (counted as
  /// recycled); the engine closes it. How many may leave: spare_for_reaping.
  void retire_shelved(slot_id slot) {
    expect_state(slot, slot_state::shelved, "retire_shelved");
    require(total() > limits_.min_idle, "retire_shelved: the pool is at min_idle");
    counters_.recycled += 1;
    remove(slot);
    check();
  }

  /// How many connections idle_timeout may still close without going below min_idle.
  int spare_for_reaping() const { return std::max(0, total() - limits_.min_idle); }

  /// Shelved connections past pool_recycle, or whose actor died: the engine recalls them.
  std::vector<slot_id> shelved_to_recall(time_point now) const {
    std::vector<slot_id> out;
    for (auto& [slot, entry] : slots_)
      if (entry.state == slot_state::shelved && (entry.dead || now >= entry.expires))
        out.push_back(slot);
    return out;
  }

  /// Every shelved connection (the engine lost its server or stops).
  std::vector<slot_id> shelved() const {
    std::vector<slot_id> out;
    for (auto& [slot, entry] : slots_)
      if (entry.state == slot_state::shelved)
        out.push_back(slot);
    return out;
  }

  // -- housekeeping -------------------------------------------------------------

  /// Idle connections past pool_recycle, or idle past `idle_timeout` while the pool is
  /// above min_idle, leave (counted as recycled): the engine closes them.
  std::vector<slot_id> sweep_idle(time_point now, duration idle_timeout) {
    std::vector<slot_id> out;
    auto leave = [&](auto should_leave) {
      std::vector<slot_id> kept;
      for (auto slot : idle_) {
        if (should_leave(slots_.at(slot))) {
          counters_.recycled += 1;
          remove(slot);
          out.push_back(slot);
        } else {
          kept.push_back(slot);
        }
      }
      idle_ = std::move(kept);
    };
    // Expired ones first, so that reaping counts only the connections that stay.
    leave([&](const slot_entry& entry) { return entry.dead || now >= entry.expires; });
    if (idle_timeout.count() > 0)
      leave([&](const slot_entry& entry) {
        return total() > limits_.min_idle && now - entry.idle_since >= idle_timeout;
      });
    check();
    return out;
  }

  /// Leases held past leak_threshold (warned once each) or past lease_timeout (revoked
  /// once each, revocable ones only). Zero durations switch a check off.
  lease_watch watch_leases(time_point now, duration leak_threshold, duration lease_timeout) {
    lease_watch out;
    for (auto& [id, info] : leases_) {
      auto age = now - info.granted;
      if (leak_threshold.count() > 0 && !info.warned && age >= leak_threshold) {
        info.warned = true;
        counters_.leaks += 1;
        out.leaked.emplace_back(id, info);
      }
      if (lease_timeout.count() > 0 && info.terms.revocable && !info.revoking &&
          age >= lease_timeout) {
        info.revoking = true;
        counters_.reclaimed += 1;
        out.revoked.emplace_back(id, info);
      }
    }
    return out;
  }

  /// Statements the engine cancelled on a connection past its request's deadline.
  void count_cancelled(int64_t n = 1) { counters_.cancelled += n; }
  /// pool_pre_ping checks made by a connection's borrower (in_place_shelf) that found
  /// it dead: counted with the engine's own when the connection closes.
  void count_ping_failures(int64_t n) { counters_.ping_failures += n; }

  // -- invariants ---------------------------------------------------------------

  /// The first invariant that does not hold; nullopt when all hold.
  std::optional<std::string> check_invariants() const {
    std::array<int, slot_state_count> tally{};
    for (auto& [slot, entry] : slots_)
      tally[index(entry.state)] += 1;
    int sum = 0;
    for (size_t i = 0; i < slot_state_count; ++i) {
      if (tally[i] != counts_[i])
        return std::string{"(1) the count of "} + to_string(static_cast<slot_state>(i)) +
               " slots is " + std::to_string(counts_[i]) + " but " + std::to_string(tally[i]) +
               " are";
      sum += counts_[i];
    }
    if (sum != total())
      return "(1) total " + std::to_string(total()) + " is not the sum of the states " +
             std::to_string(sum);
    if (total() > limits_.max)
      return "(1) total " + std::to_string(total()) + " exceeds max " + std::to_string(limits_.max);
    if (count(slot_state::shelved) > limits_.shelf)
      return "(1) " + std::to_string(count(slot_state::shelved)) +
             " shelved slots exceed the shelf's target " + std::to_string(limits_.shelf);
    if (static_cast<int>(idle_.size()) != count(slot_state::idle))
      return "(2) the idle list holds " + std::to_string(idle_.size()) + " slots, " +
             std::to_string(count(slot_state::idle)) + " are idle";
    for (auto slot : idle_) {
      auto i = slots_.find(slot);
      if (i == slots_.end() || i->second.state != slot_state::idle)
        return "(2) slot " + std::to_string(slot) + " is on the idle list but not idle";
    }
    if (static_cast<int>(leases_.size()) != count(slot_state::leased))
      return "(3) " + std::to_string(leases_.size()) + " leases for " +
             std::to_string(count(slot_state::leased)) + " leased slots";
    for (auto& [id, info] : leases_) {
      auto i = slots_.find(info.slot);
      if (i == slots_.end() || i->second.state != slot_state::leased)
        return "(3) lease " + std::to_string(id) + " names a slot that is not leased";
    }
    if (static_cast<int>(batches_.size()) != count(slot_state::reading))
      return "(3) " + std::to_string(batches_.size()) + " running batches for " +
             std::to_string(count(slot_state::reading)) + " reading slots";
    for (auto& [id, b] : batches_) {
      auto i = slots_.find(b.slot);
      if (i == slots_.end() || i->second.state != slot_state::reading)
        return "(3) batch " + std::to_string(id) + " names a slot that is not reading";
    }
    for (size_t i = 1; i < checkouts_.size(); ++i)
      if (checkouts_[i - 1].id >= checkouts_[i].id)
        return std::string{"(4) queued checkouts out of id order"};
    if (auto broken = reads_.check())
      return "(4) " + *broken;
    if (!idle_.empty() && waiting_units() > count(slot_state::pinging))
      return "(5) " + std::to_string(idle_.size()) + " idle connections while " +
             std::to_string(waiting()) + " wait and " + std::to_string(count(slot_state::pinging)) +
             " pings are out";
    return std::nullopt;
  }

  /// Aborts with the broken invariant.
  void assert_invariants() const {
    if (auto broken = check_invariants()) {
      std::fprintf(stderr, "cafdb: pool '%s' broke an invariant: %s\n", limits_.name.c_str(),
                   broken->c_str());
      std::abort();
    }
  }

 private:
  struct slot_entry {
    slot_state state = slot_state::opening;
    /// Past this the connection is retired (pool_recycle); max() when it lives forever.
    time_point expires;
    /// When it last went idle (pool_pre_ping, idle_timeout).
    time_point idle_since;
    /// Its actor died while it was away: discarded when it comes back.
    bool dead = false;
  };

  static size_t index(slot_state state) { return static_cast<size_t>(state); }

  /// Queued reads want one connection: it takes a batch of them.
  int waiting_units() const {
    return static_cast<int>(checkouts_.size()) + (reads_.empty() ? 0 : 1);
  }

  void check() const {
#if defined(CAFDB_CHECK_INVARIANTS)
    assert_invariants();
#endif
  }

  void require(bool condition, const char* what) const {
    if (!condition) {
      std::fprintf(stderr, "cafdb: pool '%s' was asked for a transition it cannot make: %s\n",
                   limits_.name.c_str(), what);
      std::abort();
    }
  }

  void expect_state(slot_id slot, slot_state state, const char* what) const {
    auto i = slots_.find(slot);
    require(i != slots_.end() && i->second.state == state, what);
  }

  void set_state(slot_id slot, slot_state state) {
    auto& entry = slots_.at(slot);
    counts_[index(entry.state)] -= 1;
    entry.state = state;
    counts_[index(state)] += 1;
  }

  void remove(slot_id slot) {
    auto i = slots_.find(slot);
    counts_[index(i->second.state)] -= 1;
    slots_.erase(i);
  }

  /// Takes a lease or a batch out of its table; its slot is `returning`.
  template <class Table>
  std::optional<typename Table::mapped_type> take_returning(Table& table, uint64_t id) {
    auto i = table.find(id);
    if (i == table.end())
      return std::nullopt;
    auto out = std::move(i->second);
    table.erase(i);
    set_state(out.slot, slot_state::returning);
    check();
    return out;
  }

  release place(slot_id slot, time_point now, bool down) {
    auto& entry = slots_.at(slot);
    release out;
    out.slot = slot;
    if (entry.dead) {
      counters_.discarded += 1;
      remove(slot);
      out.where = release::to::discarded;
    } else if (now >= entry.expires) {
      counters_.recycled += 1;
      remove(slot);
      out.where = release::to::retired;
    } else if (!reads_.empty() && (checkouts_.empty() || reads_turn_)) {
      reads_turn_ = false;
      out.where = release::to::reads;
      out.batch_id = start_batch(slot, now);
    } else if (!checkouts_.empty()) {
      reads_turn_ = true;
      auto w = std::move(checkouts_.front());
      checkouts_.pop_front();
      lease(slot, w.id, w.holder, now, w.terms, now - w.enqueued);
      out.where = release::to::waiter;
      out.waiter = std::move(w);
    } else if (total() > limits_.size || down) {
      remove(slot);
      out.where = release::to::closed;
    } else if (count(slot_state::shelved) < limits_.shelf) {
      set_state(slot, slot_state::shelved);
      out.where = release::to::shelf;
    } else {
      entry.idle_since = now;
      set_state(slot, slot_state::idle);
      idle_.push_back(slot);
    }
    return out;
  }

  void serve_more(queue_progress& out, time_point now, std::optional<duration> ping_after,
                  bool down) {
    while (!idle_.empty() && waiting_units() > count(slot_state::pinging)) {
      auto taken = take_idle(now, ping_after);
      out.retired.insert(out.retired.end(), taken.retired.begin(), taken.retired.end());
      if (taken.what == idle_take::found::needs_ping) {
        out.pings.push_back(taken.slot);
      } else if (taken.what == idle_take::found::ready) {
        out.released.push_back(place(taken.slot, now, down));
      }
    }
  }

  void lease(slot_id slot, uint64_t lease_id, holder_id holder, time_point now, lease_terms terms,
             duration waited) {
    set_state(slot, slot_state::leased);
    counters_.checkouts += 1;
    waits_.add(waited);
    leases_.emplace(lease_id, lease_info{slot, holder, now, std::move(terms)});
  }

  uint64_t start_batch(slot_id slot, time_point now) {
    auto b = reads_.take_batch(slot, now);
    for (auto& r : b.reads)
      waits_.add(now - r.enqueued);
    counters_.checkouts += static_cast<int64_t>(b.reads.size());
    set_state(slot, slot_state::reading);
    auto id = b.id;
    batches_.emplace(id, std::move(b));
    return id;
  }

  pool_limits limits_;
  std::unordered_map<slot_id, slot_entry> slots_;
  std::array<int, slot_state_count> counts_{};
  /// Idle slots; the most recently used last (taken first: its link is warmest).
  std::vector<slot_id> idle_;
  std::deque<queued_checkout> checkouts_;
  read_queue<Read> reads_;
  /// When both checkouts and reads wait, a freed connection goes to them in turn.
  bool reads_turn_ = false;
  std::unordered_map<uint64_t, lease_info> leases_;
  std::unordered_map<uint64_t, batch> batches_;
  time_point full_until_;
  duration full_backoff_{0};
  pool_counters counters_;
  wait_samples waits_;
};

} // namespace cafdb::pool

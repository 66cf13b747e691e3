// Running in place: the access mode of a pool in which a borrower takes a connection
// and runs an autocommit statement on its own thread, with no message to the engine or
// the connection (docs/architecture.md). A SQLite reader pool lends to sessions and
// blocking callers, for reads; a PostgreSQL engine's one pool (pool_kind::shared) only
// to blocking callers, for any statement, and fills its shelf once one wants it. The
// shelf holds the connections the pool has put out for this mode; the pool model counts
// them as `shelved` slots, so one pool_size bounds every connection, and recycling,
// discarding and stats treat them like the others.
//
// An entry's life (the engine puts, recalls and learns of returns; sessions borrow):
//
//   put ──► available ── borrow ──► lent ── give_back, usable ─────────► available
//              │                     │  ── give_back, unusable ─────────► gone, reported
//              │ recall: true        │ recall: false (marked)
//              ▼                     ▼ ── give_back (any) ──────────────► gone, reported
//           the engine's        recalled
//
// "Reported" means the engine's `returned` callback runs (outside the lock, on the
// borrower's thread): the slot is the engine's again, usable or not.
//
// Thread-safe (one mutex, never held across a read, a callback or a connection's
// close). Invariants (1 and 3 checked after every change in debug and sanitizer builds):
// 1. Every entry holds a connection and is available or lent; only a lent one can be
//    recalled; no more entries than the target.
// 2. While stopping, nothing is lent out anew. At most `scheduler_limit` connections
//    are lent to borrowers on scheduler threads (sessions): a read in place blocks its
//    thread, and the engine and the database must always have one to run on. Callers on
//    threads of their own (the blocking client) may borrow every entry.
// 3. Entries of an earlier owner (before `attach`) are lent already: never lent again,
//    never reported.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "backend/driver.hpp"
#include "pool/read_batching.hpp"

namespace cafdb::pool {

class in_place_shelf {
 public:
  /// The engine learns that a shelved slot came back through its borrower: recalled
  /// while lent, or found unusable (`usable` false: close it).
  using returned_fn = std::function<void(slot_id slot, bool usable)>;

  /// A borrowed connection: give it back with give_back, exactly once.
  struct loan {
    slot_id slot = 0;
    std::shared_ptr<driver> handle;
    /// Which entry: slot ids restart with each engine, keys never repeat.
    uint64_t key = 0;
    /// Lent to a borrower on a scheduler thread (counted against scheduler_limit).
    bool scheduler = true;
    /// When it was put on the shelf or last given back (pool_pre_ping).
    std::chrono::steady_clock::time_point since;
    explicit operator bool() const { return handle != nullptr; }
  };

  /// Who borrows: a session on a scheduler thread, or a caller on a thread of its own.
  enum class borrower { scheduler, own_thread };

  /// Whose connections the shelf holds: a SQLite reader pool's, which only read, or
  /// the one pool of a PostgreSQL engine, whose borrowers run any autocommit statement
  /// and whose shelf fills only once it is wanted (read_router::read_plan::shared_pool).
  enum class pool_kind { readers, shared };

  /// At most `target` connections on the shelf, at most `scheduler_limit` of them lent
  /// to scheduler threads at once (the read router's plan).
  in_place_shelf(size_t target, size_t scheduler_limit, pool_kind kind = pool_kind::readers)
      : target_(target), scheduler_limit_(scheduler_limit), kind_(kind) {}
  explicit in_place_shelf(size_t target) : in_place_shelf(target, target) {}

  size_t target() const { return target_; }
  size_t scheduler_limit() const { return scheduler_limit_; }
  pool_kind kind() const { return kind_; }

  // -- the engine's side ----------------------------------------------------------

  /// A new engine owns the shelf: the previous engine's entries leave (available ones
  /// at once, lent ones when given back, unreported).
  void attach(returned_fn returned);

  /// Puts a connection of the pool on the shelf.
  void put(slot_id slot, std::shared_ptr<driver> handle);

  /// Takes `slot` back: true when it was available (the engine has it now); false when
  /// it is lent (it is reported when given back) or not on the shelf.
  bool recall(slot_id slot);

  /// idle_timeout: takes back up to `n` available connections that no one borrowed for
  /// `unused_for` (the engine closes them), the longest unused first.
  std::vector<slot_id> take_unused(std::chrono::nanoseconds unused_for, size_t n);

  /// For a checkout that found no idle connection: the least recently used available
  /// connection, taken back; nullopt when none is available.
  std::optional<slot_id> take_available();

  /// For work queued in the engine: recalls up to `n` connections, available ones first
  /// (returned: the engine has them now), then lent ones (reported when given back);
  /// lent ones recalled earlier count towards `n`.
  std::vector<slot_id> recall_some(size_t n);

  // -- the sessions' side ---------------------------------------------------------

  /// An available connection, lent out; empty when none is (the caller sends its read
  /// to the engine instead: no one waits here) or the database is stopping. A borrower
  /// on its own thread marks the shelf wanted, even when it finds nothing. `preferred`:
  /// the key of the loan this caller had last, taken again when available (a thread
  /// that keeps its connection keeps its server process on the same core: on
  /// PostgreSQL, taking any one cost about twice the CPU per statement at 8 threads).
  loan borrow(borrower who = borrower::scheduler, uint64_t preferred = 0);

  /// Whether a borrower on its own thread has asked for a connection: a pool whose
  /// shelf starts empty (PostgreSQL's, which sessions never borrow from) fills it only
  /// from then on, so that an application of actors alone never pays for it.
  bool wanted() const { return wanted_.load(std::memory_order_relaxed); }

  /// Returns a loan; `usable` false (its state is unknown) takes it off the shelf.
  void give_back(loan lent, bool usable);

  /// Returns a loan its borrower did not use (the statement might write: it goes to the
  /// writer instead); it does not count as a loan.
  void give_back_unused(loan lent);

  /// The database is stopping: every lent connection's statement is cancelled
  /// (driver::cancel_for_shutdown, which never blocks) and nothing more is lent.
  void cancel_for_shutdown();

  // -- counts -----------------------------------------------------------------------

  size_t available() const;
  size_t lent() const;
  /// Loans since start, those given back unused not counted.
  uint64_t loans() const;

 private:
  struct entry {
    uint64_t key = 0;
    slot_id slot = 0;
    std::shared_ptr<driver> handle;
    bool lent = false;
    /// Recalled while lent: reported when given back.
    bool recalled = false;
    /// When it was put on the shelf or last given back.
    std::chrono::steady_clock::time_point since;
  };

  void check() const;

  const size_t target_;
  const size_t scheduler_limit_;
  const pool_kind kind_;
  /// Loans to scheduler threads now.
  size_t scheduler_lent_ = 0;
  mutable std::mutex mtx_;
  /// The current owner's entries, available ones last-used last (taken first).
  std::vector<entry> entries_;
  /// An earlier owner's entries still lent: dropped when given back, never reported.
  std::vector<entry> orphans_;
  returned_fn returned_;
  uint64_t next_key_ = 1;
  uint64_t loans_ = 0;
  bool stopping_ = false;
  std::atomic<bool> wanted_{false};
};

} // namespace cafdb::pool

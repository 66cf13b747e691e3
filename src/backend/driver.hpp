// The backend-neutral driver interface: one object owns one database handle.
//
// Drivers are CAF-free and never throw: every call returns an `outcome`. A driver is
// used by exactly one thread (its connection actor), except `cancel()`, which any
// thread may call to cancel the statement that is running and the rest of its batch.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cafdb/core/config.hpp"
#include "cafdb/core/errc.hpp"
#include "cafdb/core/tx_options.hpp"
#include "cafdb/core/value.hpp"
#include "sql_text.hpp"

namespace cafdb {

/// What a connection is for, inside its engine.
enum class connection_role : uint8_t {
  /// Takes write transactions (SQLite file databases have exactly one).
  writer,
  /// Read-only: the driver refuses writes.
  reader,
  /// Serves both (SQLite `:memory:`, and PostgreSQL connections).
  shared,
};

std::string to_string(connection_role x);

class driver {
 public:
  virtual ~driver() = default;

  /// Opens the handle. Blocks for at most the configured connect timeout.
  virtual outcome<done> open() = 0;

  /// Runs one statement (SQLite also accepts a parameterless multi-statement script).
  virtual outcome<result_set> execute(const statement& stmt) = 0;

  /// Starts a transaction with `options` (checked by refuse_tx_options): a read-only one
  /// when `read_only`; on SQLite a write transaction takes the write lock at once unless
  /// `options.lock` says otherwise.
  virtual outcome<done> begin(bool read_only, const tx_options& options) = 0;

  virtual outcome<done> commit() = 0;

  /// Rolls back whatever is open; succeeds if nothing is open.
  virtual outcome<done> rollback() = 0;

  /// Runs `statements` as one transaction, all-or-nothing, and leaves no transaction
  /// open whatever happens. On failure `failed_at` is the index of the failing
  /// statement, or `statements.size()` when BEGIN or COMMIT failed. This version takes
  /// a round trip per statement; PostgreSQL sends the whole transaction at once.
  virtual outcome<std::vector<result_set>>
  execute_transaction(const std::vector<statement>& statements, bool read_only, size_t& failed_at);

  /// Runs `bulk.sql` once per row of `bulk` (each row binds its placeholders) inside
  /// whatever transaction is open, and sums the runs (`add_run`). On failure
  /// `failed_at` is the failing row. This version builds one statement per row; SQLite
  /// binds each row to one prepared statement.
  virtual outcome<result_set> execute_many(const bulk_statement& bulk, size_t& failed_at);

  /// `execute_many` as one transaction, all-or-nothing (see `execute_transaction`;
  /// `failed_at` is the row count when BEGIN or COMMIT failed). This version hands the
  /// rows to `execute_transaction` as statements, so PostgreSQL pipelines them.
  virtual outcome<result_set> execute_many_transaction(const bulk_statement& bulk, bool read_only,
                                                       size_t& failed_at);

  /// Runs independent autocommit statements (several sessions' reads), each with its
  /// own outcome: one failing does not affect the others. This version runs them one
  /// by one; PostgreSQL sends them all at once.
  virtual std::vector<outcome<result_set>> execute_each(const std::vector<statement>& statements);

  /// `name` must already be a valid identifier (see `is_identifier`). The SQL is the
  /// same on every engine, so it is written once here, on top of `run_control`.
  virtual outcome<done> savepoint(const std::string& name) {
    return run_control("SAVEPOINT " + quote_identifier(name));
  }
  virtual outcome<done> release(const std::string& name) {
    return run_control("RELEASE SAVEPOINT " + quote_identifier(name));
  }
  virtual outcome<done> rollback_to(const std::string& name) {
    return run_control("ROLLBACK TO SAVEPOINT " + quote_identifier(name));
  }

  /// Runs `body` inside savepoint `name`: a failure rolls back to it, so that
  /// whatever was open before stays as it was (outside a transaction SQLite makes the
  /// savepoint a transaction of its own).
  template <class Body>
  auto in_savepoint(const std::string& name, Body body) -> decltype(body()) {
    if (auto saved = savepoint(name); !saved)
      return saved.error();
    auto result = body();
    if (!result) {
      rollback_to(name);
      release(name);
      return result;
    }
    if (auto released = release(name); !released)
      return released.error();
    return result;
  }

  /// A round trip to the server: fails if the connection is dead.
  virtual outcome<done> ping() { return run_control("SELECT 1"); }

  /// False for a driver whose calls never wait (the scripted driver of the unit
  /// tests): its connection actor then runs on the scheduler, so that a deterministic
  /// test scheduler runs it too. Real drivers wait on a network or a file lock.
  virtual bool may_block() const { return true; }

  /// Makes statements outside explicit transactions read-only (or not). Called before
  /// every request; drivers only talk to the server when the mode changes.
  virtual outcome<done> set_read_only(bool read_only) = 0;

  /// True when `sql` is one statement that certainly changes nothing, in the database
  /// or in the connection's session, holds no transaction control and asks nothing of
  /// the connection's own state, so that any reader connection may run it; false when
  /// the driver cannot tell. Prepares the statement (the driver may cache it, and what
  /// it learns with it) but runs nothing.
  virtual bool certainly_reads(const std::string& sql) {
    (void)sql;
    return false;
  }

  /// From now on a statement still running at `deadline` is cancelled (it fails with
  /// statement_timeout, as `cancel()` does, if the server confirms it);
  /// `time_point::max()` lifts the limit. The driver checks it on its own thread: no
  /// other thread needs to call `cancel()` at the deadline.
  virtual void set_deadline(std::chrono::steady_clock::time_point deadline) { (void)deadline; }

  /// True while a transaction is open on the handle.
  virtual bool in_transaction() const = 0;

  /// True when a statement run since the last reset may have changed the session
  /// beyond its transaction (see session_changes): the next user of the handle would
  /// inherit it.
  virtual bool session_changed() const { return session_changes_ != 0; }

  /// Undoes what statements changed in the session (settings, role, temporary objects,
  /// pragmas, ...) and restores the driver's own settings; nothing when nothing
  /// changed. Call with no transaction open. On failure the handle must not be used
  /// again.
  virtual outcome<done> reset_session() = 0;

  /// Cancels the running statement and the statements of its batch not yet run (they
  /// fail with statement_timeout), until `clear_cancel`. The only call that is safe
  /// from another thread; it never blocks.
  void cancel() noexcept {
    cancel_requested_.store(true);
    interrupt();
  }

  /// Ends a cancel: the connection is quiet again and being reset.
  void clear_cancel() noexcept { cancel_requested_.store(false); }

  /// `cancel()` because the database is stopping: what it cancels answers
  /// shutting_down. Any thread.
  void cancel_for_shutdown() noexcept {
    stopping_.store(true);
    cancel();
  }

  /// True once `cancel_for_shutdown` was called.
  bool stopping() const noexcept { return stopping_.load(std::memory_order_relaxed); }

  /// Statements cancelled at their request's deadline (set_deadline) and confirmed:
  /// counted by the caller that set the deadline; read from any thread (statistics).
  void count_deadline_cancel() noexcept { deadline_cancels_.fetch_add(1); }
  int64_t deadline_cancels() const noexcept { return deadline_cancels_.load(); }

  /// pool_pre_ping checks that found the connection dead, made by a caller that borrowed
  /// it from the in-place shelf: counted there; read from any thread (statistics).
  void count_ping_failure() noexcept { ping_failures_.fetch_add(1); }
  int64_t ping_failures() const noexcept { return ping_failures_.load(); }

  /// A short description for logs: engine, target and role. Never contains secrets.
  virtual std::string describe() const = 0;

 protected:
  /// Cancels the running statement on the handle (any thread, never blocking). A
  /// cancel that reaches the server late must not hit a later statement.
  virtual void interrupt() noexcept = 0;

  /// Runs `stmt`, unless its batch was cancelled: then it fails without starting.
  outcome<result_set> execute_unless_cancelled(const statement& stmt);

  /// True from `cancel` to `clear_cancel`.
  bool cancelled() const noexcept { return cancel_requested_.load(std::memory_order_relaxed); }

  /// The error of a statement that did not start because its batch was cancelled.
  static db_error cancelled_error();

  /// BEGIN, `body()`, COMMIT; a failure of any of them rolls back. Leaves no
  /// transaction open, except when even the rollback failed (the engine then resets).
  template <class Body>
  auto all_or_nothing(bool read_only, Body body) -> decltype(body()) {
    if (auto began = begin(read_only, tx_options{}); !began)
      return began.error();
    auto result = body();
    if (!result) {
      rollback();
      return result;
    }
    if (auto committed = commit(); !committed) {
      rollback();
      auto err = committed.error();
      err.message = "COMMIT failed, the transaction was rolled back: " + err.message;
      return err;
    }
    return result;
  }

  /// Runs a parameterless control statement (transaction and savepoint SQL).
  virtual outcome<done> run_control(const std::string& sql) = 0;

  /// session_change bits of the statements run since the last reset_session.
  unsigned session_changes_ = 0;

 private:
  /// True from `cancel` to `clear_cancel`: a batch stops starting statements.
  std::atomic<bool> cancel_requested_{false};
  std::atomic<bool> stopping_{false};
  std::atomic<int64_t> deadline_cancels_{0};
  std::atomic<int64_t> ping_failures_{0};
};

/// Adds one run of a bulk statement to the sum of the runs before it: affected rows
/// add up, returned rows are appended, the last insert id is the latest one.
void add_run(result_set& total, result_set&& run);

/// Makes the driver for one connection of the given role.
using driver_factory = std::function<std::unique_ptr<driver>(connection_role)>;

/// What to tell the user to do about an error: the second half of driver messages.
const char* hint_for(errc code);

/// Compares the connection's real transaction state with `expected` after a request
/// (state is checked, not assumed). On a mismatch the request fails: a transaction left open is
/// rolled back now; one that was ended behind the session may have committed.
std::optional<db_error> check_transaction_state(driver& drv, bool expected);

/// Runs `request` with the driver cancelling it at `deadline` (zero: none). A
/// statement the server confirms cancelled then says why, in cafdb's words; what it
/// did is gone (an autocommit statement rolled back, its savepoint undone, or its
/// transaction failed).
template <class Request>
auto within_deadline(driver& drv, std::chrono::nanoseconds deadline, bool in_savepoint,
                     Request request) {
  using clock = std::chrono::steady_clock;
  if (deadline.count() <= 0)
    return request();
  auto until = clock::now() + std::chrono::duration_cast<clock::duration>(deadline);
  drv.set_deadline(until);
  auto out = request();
  drv.set_deadline(clock::time_point::max());
  if (clock::now() < until || drv.stopping())
    return out;
  // The driver cancelled it itself: nothing else will clear the cancel.
  drv.clear_cancel();
  if (!out && out.error().code == errc::statement_timeout) {
    drv.count_deadline_cancel();
    out.error().message =
        "no answer within the request deadline (" +
        std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(deadline).count()) +
        " ms): the statement was cancelled on the server" +
        (!drv.in_transaction() ? ", and nothing it did was kept"
         : in_savepoint        ? ", and its savepoint undid it: the transaction goes on"
                               : ", and its transaction failed: roll back") +
        ". Raise request_timeout / statement_timeout, or make it cheaper [" + out.error().message +
        "]";
  }
  return out;
}

} // namespace cafdb

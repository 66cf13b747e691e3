// PostgreSQL driver: one `PGconn*` with a prepared-statement cache (libpq).
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "backend/driver.hpp"

struct pg_conn;
struct pg_cancel;
struct pg_result;

namespace cafdb {

struct cancels_in_flight;

/// Why a connection attempt failed: the message to show, and its SQLSTATE.
struct connect_failure {
  std::string message;
  std::string sqlstate;
};

/// Reads libpq's error message of a failed connection attempt, made with
/// PQERRORS_VERBOSE: the server's SQLSTATE, whatever language its messages are in, and
/// the message without codes and source locations. Failures libpq found itself (no
/// server message) are classified from their text.
connect_failure read_connect_failure(const std::string& verbose);

struct pg_options {
  /// libpq keyword=value string. Contains the password: never log or show it.
  std::string conninfo;
  /// What logs and errors may show: "postgresql://user@host:port/db".
  std::string display;
  /// Enforced by the server on every statement; 0 disables.
  std::chrono::milliseconds statement_timeout{0};
  /// How long opening a connection may take, whatever the network does.
  std::chrono::milliseconds connect_timeout{10'000};
  /// How long the server may stay silent past statement_timeout, or after a cancel,
  /// before the link counts as lost.
  std::chrono::milliseconds silence_grace{5'000};
  size_t statement_cache_size = 256;
};

/// Bound parameters always (text format, blobs binary), prepared statements cached
/// per connection, SQLSTATE mapped to cafdb errors, `cancel()` through PQcancel.
///
/// Never blocks without a deadline: libpq runs non-blocking and the driver waits in
/// poll() on the socket and on a wake-up descriptor that `cancel()` signals. Opening
/// waits at most connect_timeout; a statement at most statement_timeout plus
/// silence_grace, and after a cancel at most silence_grace for the server to confirm
/// it. A server silent past its deadline is a lost link: the handle is closed and the
/// request fails with connection_lost (commit_in_doubt where it may have committed),
/// never with a claim the server did not make.
///
/// A cancel is sent from a thread of its own and may reach the server after the
/// statement it was meant for has ended; the server would then cancel whatever runs
/// next. So no request starts while a cancel is still on its way: it waits (at most
/// silence_grace) until the server has acted on it, or the handle is closed.
class pg_driver final : public driver {
 public:
  pg_driver(pg_options options, connection_role role);
  ~pg_driver() override;

  pg_driver(const pg_driver&) = delete;
  pg_driver& operator=(const pg_driver&) = delete;

  outcome<done> open() override;
  outcome<result_set> execute(const statement& stmt) override;
  outcome<done> begin(bool read_only, const tx_options& options) override;
  outcome<done> commit() override;
  outcome<done> rollback() override;
  outcome<std::vector<result_set>> execute_transaction(const std::vector<statement>& statements,
                                                       bool read_only, size_t& failed_at) override;
  std::vector<outcome<result_set>> execute_each(const std::vector<statement>& statements) override;
  outcome<done> set_read_only(bool read_only) override;
  void set_deadline(std::chrono::steady_clock::time_point deadline) override;
  bool in_transaction() const override;
  /// Also true when a setting the server reports (TimeZone, DateStyle, the session's
  /// user, default_transaction_read_only, ...) differs from what the connection
  /// started with: a function or DO block can change one where no SQL text shows it.
  bool session_changed() const override;
  outcome<done> reset_session() override;
  std::string describe() const override;

 protected:
  void interrupt() noexcept override;
  outcome<done> run_control(const std::string& sql) override {
    start_request();
    return run_simple(sql);
  }

 private:
  struct prepared {
    std::string name;
    int params = 0;
    /// Taken from the cache, not prepared for this use: its types may be stale.
    bool reused = false;
    /// Parameter types, 0, result column types (OIDs): what a change of the tables
    /// can change under a prepared statement.
    std::vector<unsigned int> signature;
    /// What running it changes in the session (session_changes).
    unsigned changes = 0;
  };

  outcome<done> run_simple(const std::string& sql);
  outcome<result_set> run_script(const std::string& sql);
  outcome<prepared> prepare(const std::string& sql);
  /// `prepare`, then checks that the statement has one parameter per placeholder.
  outcome<prepared> prepare_checked(const statement& stmt);
  /// The error of a failed statement; forgets a prepared statement the server lost,
  /// and a `reused` one that may have outlived a change of its tables (maybe_stale).
  db_error statement_error(pg_result* res, const statement& stmt, bool reused);
  /// True if a cached statement failing so may only have outlived a change of its
  /// tables, and would run if prepared again: 26000, 0A000, classes 22 and 42.
  static bool maybe_stale(const db_error& err);
  /// Drops `sql` from the cache; its server-side statement is DEALLOCATEd later.
  void forget(const std::string& sql);
  /// True if the cached statement of `sql`, failing with `err`, outlived a change of
  /// its tables: `err` says so (26000, 0A000), or the text prepared anew has other
  /// parameter or column types. Outside a transaction only (it prepares).
  bool outgrown(const std::string& sql, const db_error& err);
  /// DEALLOCATEs the statements forgotten by statement_error, outside a transaction.
  void drop_stale_statements();
  /// One statement through the statement cache; `reused` if it came from the cache.
  outcome<result_set> execute_prepared(const statement& stmt, bool& reused);
  /// BEGIN, the statements and COMMIT as one pipeline; `stale` if a reused statement
  /// failed in a way maybe_stale explains.
  outcome<std::vector<result_set>> pipeline_transaction(const std::vector<statement>& statements,
                                                        bool read_only, size_t& failed_at,
                                                        bool& stale);
  outcome<std::vector<prepared>> prepare_all(const std::vector<statement>& statements,
                                             size_t& failed_at);
  /// True if every statement can go into a pipeline (no scripts, none empty).
  static bool pipelinable(const std::vector<statement>& statements);
  /// Sends `before`, the statements, `after` and a sync as one pipeline and hands each
  /// result to the callbacks. False if the link broke (the state is then unknown).
  bool run_pipeline(const std::vector<statement>& statements, const std::vector<prepared>& preps,
                    const char* before, const char* after,
                    const std::function<void(pg_result*)>& on_control,
                    const std::function<bool(size_t, pg_result*)>& on_statement);
  db_error error_from(pg_result* res, const std::string& context) const;
  db_error connection_error(const std::string& context) const;
  /// The settings every connection starts with: the server's statement_timeout, UTC.
  std::string session_setup() const;
  /// The server-reported settings, as `reported_settings` lists them.
  std::vector<std::string> reported_settings() const;
  /// `conninfo` with its host names looked up within the connect deadline and given as
  /// hostaddr, so that libpq never waits on DNS without a deadline; nothing (and
  /// `silent_` set) when the DNS did not answer in time or the driver is cancelled.
  std::optional<std::string> with_resolved_hosts(const std::string& conninfo);
  void close() noexcept;

  // -- waiting with deadlines ------------------------------------------------------

  /// Sends what libpq has buffered; false if the link broke or went silent.
  bool flush();
  /// Waits in poll() until the socket is ready for `events`, a cancel wakes the wait,
  /// or the deadline passes (the handle is then closed: went_silent).
  bool await_socket(short events);
  /// Waits until a result can be read without blocking; false if the link broke or
  /// went silent (the handle is then closed and `silent_` says which).
  bool await_input();
  /// The next result of the query in flight (null at its end, or when `await_input`
  /// failed: see `link_failed`).
  pg_result* next_result();
  /// Runs what `send` sends (one query) and returns its last result, as PQexec does.
  /// Null if the link broke or went silent.
  template <class Send>
  pg_result* exec_sent(Send send);
  /// The deadline of the request in flight, from `start_request`, once every cancel
  /// sent earlier was delivered.
  void start_request();
  /// Waits until the server acted on every cancel sent so far, so that none can hit the
  /// request about to start; closes the handle if one is not delivered within
  /// silence_grace. Does not wait while stopping.
  void await_cancels_delivered();
  /// True when the link broke or went silent during the request in flight.
  bool link_failed() const;
  /// The error for a request whose link broke or went silent.
  db_error link_error(const std::string& context) const;
  /// Closes the handle because the server stopped answering.
  void went_silent(std::chrono::milliseconds waited);

  pg_options options_;
  connection_role role_;
  pg_conn* conn_ = nullptr;
  mutable std::mutex cancel_mtx_;
  /// Shared with the thread that sends a cancel, which may outlive the handle.
  std::shared_ptr<pg_cancel> cancel_;
  /// Cancels sent to this connection's backend and not yet acted on by the server;
  /// shared with the threads sending them. Guarded by cancel_mtx_, written only by the
  /// connection's thread.
  std::shared_ptr<cancels_in_flight> in_flight_;
  /// An eventfd: `interrupt` writes it so that a wait in poll() wakes at once.
  int wake_fd_ = -1;
  /// The request in flight must be answered by then, or the link is silent.
  std::chrono::steady_clock::time_point deadline_;
  std::chrono::steady_clock::time_point started_;
  /// A cancel was sent for the request in flight (its deadline is then near).
  bool cancel_sent_ = false;
  /// From set_deadline: the request in flight is cancelled at this time.
  std::chrono::steady_clock::time_point cancel_at_ = std::chrono::steady_clock::time_point::max();
  /// The last request failed because the server stopped answering.
  bool silent_ = false;
  std::string silence_;
  std::unordered_map<std::string, prepared> cache_;
  /// Server-side statements forgotten by the cache, to DEALLOCATE outside a transaction.
  std::vector<std::string> stale_;
  uint64_t next_statement_ = 0;
  bool read_only_ = false;
  /// reported_settings() right after the session was set up (open, reset).
  std::vector<std::string> started_with_;
};

/// Maps a SQLSTATE (five characters) to a cafdb error code.
errc pg_errc(const std::string& sqlstate);

} // namespace cafdb

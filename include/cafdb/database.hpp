// The public entry points: start a database, talk to it from actors or plain code.
//
//   cafdb::runtime rt{*cafdb::config_from_url("sqlite:///app.db")};
//   rt.client().await_ready(5s);
//   auto s = rt.client().open_session();       // RAII: rolls back unless committed
//   s->begin(); s->exec({"INSERT INTO t VALUES ($1)", {42}}); s->commit();
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <type_traits>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/expected.hpp>
#include <caf/scoped_actor.hpp>
#include <nlohmann/json.hpp>

#include "cafdb/core/config.hpp"
#include "cafdb/core/value.hpp"
#include "cafdb/error.hpp"
#include "cafdb/messages/interfaces.hpp"

namespace cafdb {

/// Registers every cafdb message type and the `cafdb` error renderer. Call on the
/// config of any actor system that talks to a cafdb database (both ends of a link).
void add_types(caf::actor_system_config& cfg);

/// Spawns a database in `sys` and starts it; it becomes ready in the background.
/// The caller must `stop` it (or send it an exit) before `sys` is destroyed.
database_actor spawn_database(caf::actor_system& sys, config cfg);

class session;

namespace detail {

/// What the blocking client learns once from its database to read in place on the
/// caller's thread (src/facade/client.cpp); shared by a client's copies.
struct in_place_route;
/// The same for a blocking session, learned from its session actor.
struct session_route;

/// What the blocking and the asynchronous facades hold: the actor system, the database
/// and the caller's own timeout (zero or less: no limit).
class client_base {
 public:
  database_actor handle() const { return db_; }
  caf::actor_system& system() const { return *sys_; }
  caf::timespan request_timeout() const { return timeout_; }

 protected:
  client_base(caf::actor_system& sys, database_actor db, caf::timespan request_timeout);

  caf::actor_system* sys_;
  database_actor db_;
  caf::timespan timeout_;
};

} // namespace detail

/// A blocking facade for code that is not an actor. Each call waits for its reply,
/// at most `request_timeout` (zero or less: no limit; any duration, even
/// timespan::max(), means what it says). Thread-safe: calls from many threads at once
/// each wait on their own (a `session` it opens belongs to one thread at a time). For
/// code that must not block a thread per request, see cafdb/async.hpp.
class client : public detail::client_base {
 public:
  client(caf::actor_system& sys, database_actor db,
         caf::timespan request_timeout = std::chrono::minutes(10));

  /// Waits until the database is ready; `not_ready` after `timeout`.
  caf::expected<readiness_snapshot> await_ready(caf::timespan timeout);

  /// Opens a session owned by the returned object (waits for readiness first).
  caf::expected<session> open_session(session_options options = {});

  /// One autocommit statement.
  caf::expected<result_set> exec(statement stmt, session_options options = {});

  /// Statements in one transaction, all-or-nothing.
  caf::expected<std::vector<result_set>> transact(std::vector<statement> stmts,
                                                  session_options options = {});

  /// One statement run once per row of parameters, in one transaction, all-or-nothing:
  /// affected rows summed, returned rows (RETURNING) appended. The bulk insert.
  caf::expected<result_set> exec_many(bulk_statement bulk, session_options options = {});

  /// Runs `fn(session&)` in a transaction of a new session, the way SQLAlchemy's
  /// `async with session.begin():` does: commits when `fn` answers success, rolls back
  /// when it answers an error or throws (and rethrows), and answers what `fn` answered,
  /// or the commit's error. `fn` answers `caf::error` or `caf::expected<T>`. `tx` sets
  /// the transaction's isolation level and mode (see session::begin(tx_options)).
  template <class F>
  auto in_transaction(F&& fn, session_options options = {}, tx_options tx = {})
      -> std::invoke_result_t<F&, class session&>;

  caf::expected<status_report> status();

  /// Subscribes `subscriber` to readiness events; returns the current state.
  caf::expected<readiness_snapshot> subscribe(caf::actor subscriber);

  /// Creates the declared tables (config `schema_file` / `schema`) that do not exist
  /// yet, in dependency order, in one transaction. Idempotent.
  caf::error create_all();
  caf::error create_all(schema_def schema);
  /// Drops the declared tables that exist, in reverse dependency order, in one transaction.
  caf::error drop_all();
  caf::error drop_all(schema_def schema);
  /// The live schema of the writer's database: tables, columns, keys, indexes.
  caf::expected<schema_def> reflect();

  // -- operations (docs/operations.md): answers are JSON ------------------------
  // Errors are typed; with the `json_errors` option they come back as the answer
  // `{"error": kind, "details": message}` instead.

  /// Any operation, spelled out (the calls below fill one in).
  caf::expected<nlohmann::json> run(operation op);

  /// The number of rows `query` (one SELECT) gives.
  caf::expected<nlohmann::json> count(statement query, session_options options = {});
  /// Page `page` (from 1) of `query`: {items, total, page, page_size, pages}, read in
  /// one snapshot. Order the query (ORDER BY) for stable pages.
  caf::expected<nlohmann::json> paginate(statement query, int64_t page, int64_t page_size,
                                         session_options options = {});
  /// The first row of `query` as an object, or null.
  caf::expected<nlohmann::json> read_one(statement query, session_options options = {});
  /// Every row of `query`, as objects.
  caf::expected<nlohmann::json> read_query(statement query, session_options options = {});
  /// Named queries read in one snapshot: {name: rows, ...}.
  caf::expected<nlohmann::json> read_multi(std::vector<std::pair<std::string, statement>> queries,
                                           session_options options = {});
  /// One statement: {rowcount, last_insert_id, rows (RETURNING)}.
  caf::expected<nlohmann::json> execute_one(statement stmt, session_options options = {});
  /// Statements in one transaction, all-or-nothing: one summary each.
  caf::expected<nlohmann::json> execute_many(std::vector<statement> stmts,
                                             session_options options = {});
  /// Inserts a row (an object of column values); answers the stored row.
  caf::expected<nlohmann::json> create_one(const std::string& table, const nlohmann::json& row);
  /// Inserts rows (an array of objects) in one transaction; answers the stored rows.
  caf::expected<nlohmann::json> create_many(const std::string& table, const nlohmann::json& rows);
  /// Changes the row with primary key `key` (a value, or an object for composite keys);
  /// answers the stored row, `not_found` if there is none.
  caf::expected<nlohmann::json> update_one(const std::string& table, const nlohmann::json& key,
                                           const nlohmann::json& changes);
  /// Deletes the row with primary key `key`: {deleted: 1}, `not_found` if there is none.
  caf::expected<nlohmann::json> delete_one(const std::string& table, const nlohmann::json& key);
  /// Deletes the rows whose keys are in `keys` (an array), in one transaction: {deleted: n}.
  caf::expected<nlohmann::json> delete_many(const std::string& table, const nlohmann::json& keys);
  /// Inserts `row`, or updates the row it conflicts with on `conflict_columns` (default:
  /// the primary key); answers the stored row.
  caf::expected<nlohmann::json> upsert(const std::string& table, const nlohmann::json& row,
                                       std::vector<std::string> conflict_columns = {});

  /// Stops the database gracefully: open sessions roll back.
  caf::error stop();

 private:
  /// A database in this process: `exec` runs on the caller's thread, on a connection
  /// borrowed from the pool's in-place shelf: an autocommit read on a SQLite reader
  /// connection (as a session does), any autocommit statement on PostgreSQL
  /// (docs/architecture.md). Nothing when it cannot: the request goes to the database.
  std::optional<caf::expected<result_set>> exec_in_place(const statement& stmt,
                                                         const session_options& options);

  std::shared_ptr<detail::in_place_route> in_place_;
};

/// A session for plain code. Its destructor rolls back an open transaction and
/// closes the session; commit is always explicit. Move-only.
///
/// The session is bound to an owner actor that lives exactly as long as this object,
/// so a session whose object is destroyed (by its owner, or by unwinding when an
/// exception ends its scope) rolls back. A session object leaked on the heap keeps its
/// transaction until the idle timeout or the database's stop.
class session {
 public:
  session(session&&) noexcept;
  session& operator=(session&&) noexcept;
  ~session();

  caf::expected<result_set> exec(statement stmt);
  caf::expected<std::vector<result_set>> transact(std::vector<statement> stmts);
  /// See client::exec_many; inside a transaction it acts as a savepoint, like transact.
  caf::expected<result_set> exec_many(bulk_statement bulk);
  caf::error begin();
  /// Begins with an isolation level, read only, deferrable or SQLite's lock; an option
  /// the engine cannot honour is refused with `invalid_argument` before anything begins.
  caf::error begin(const tx_options& options);
  caf::error commit();
  caf::error rollback();
  caf::error savepoint(const std::string& name);
  caf::error release(const std::string& name);
  caf::error rollback_to(const std::string& name);
  caf::expected<session_info> info();
  /// Rolls back if a transaction is open, gives the connection back, ends the actor.
  caf::error close();

  session_actor handle() const { return actor_; }

 private:
  friend class client;
  session(std::unique_ptr<caf::scoped_actor> owner, session_actor actor, caf::timespan timeout,
          session_options options);

  template <class T, class... Ts>
  caf::expected<T> call(Ts&&... xs);

  /// Like client::exec's: an autocommit call runs on the caller's thread, on a
  /// connection borrowed from the pool's in-place shelf, while no transaction is open
  /// and the session actor has answered every earlier call. Nothing when it cannot.
  std::optional<caf::expected<result_set>> exec_in_place(const statement& stmt);
  /// Notes whether a call ended at the caller's own timeout (the session actor may
  /// still be running it: no call runs in place until it answers another).
  template <class T>
  T tracked(T answer);

  std::unique_ptr<caf::scoped_actor> owner_;
  session_actor actor_;
  caf::timespan timeout_{};
  std::shared_ptr<detail::session_route> route_;
};

namespace detail {

inline bool failed(const caf::error& x) {
  return static_cast<bool>(x);
}

template <class T>
bool failed(const caf::expected<T>& x) {
  return !x;
}

} // namespace detail

template <class F>
auto client::in_transaction(F&& fn, session_options options, tx_options tx)
    -> std::invoke_result_t<F&, class session&> {
  using answer_type = std::invoke_result_t<F&, class session&>;
  static_assert(std::is_same_v<answer_type, caf::error> ||
                    std::is_constructible_v<answer_type, caf::error>,
                "in_transaction: fn must answer caf::error or caf::expected<T>");
  auto s = open_session(std::move(options));
  if (!s)
    return answer_type{s.error()};
  if (auto err = s->begin(tx))
    return answer_type{std::move(err)};
  auto answer = [&]() -> answer_type {
    try {
      return fn(*s);
    } catch (...) {
      // The session's destructor would roll back too; saying it keeps the order plain.
      static_cast<void>(s->rollback());
      throw;
    }
  }();
  if (detail::failed(answer)) {
    // fn's error is the answer; a failing rollback still ends the transaction, since
    // the session drops a connection whose state it does not know.
    static_cast<void>(s->rollback());
    return answer;
  }
  if (auto err = s->commit())
    return answer_type{std::move(err)};
  return answer;
}

/// Owns an actor system and one database: the one-call start for applications that
/// do not run CAF themselves. Its destructor stops the database, then the system.
class runtime {
 public:
  explicit runtime(config cfg);
  ~runtime();

  runtime(const runtime&) = delete;
  runtime& operator=(const runtime&) = delete;

  caf::actor_system& system() { return *system_; }
  database_actor database() const { return client_->handle(); }
  class client& client() {
    return *client_;
  }

  /// Stops the database now (the destructor does it otherwise).
  caf::error stop();

 private:
  std::unique_ptr<caf::actor_system_config> system_config_;
  std::unique_ptr<caf::actor_system> system_;
  std::unique_ptr<class client> client_;
  bool stopped_ = false;
};

} // namespace cafdb

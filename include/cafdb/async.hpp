// The asynchronous facade, for code that is not an actor and must not block a thread
// per request: a thread pool, an event loop, a server's I/O threads.
//
//   cafdb::async_client db{rt.system(), rt.database()};   // must not outlive rt
//   db.exec({"SELECT 1"}).then([](caf::expected<cafdb::result_set> r) { ... });  // callback
//   auto answer = db.exec({"SELECT 2"}).future();                 // std::future
//
// Every call returns at once with an `async_result`: `.then(fn)` runs `fn` with the
// answer on a cafdb (CAF scheduler) thread, `.future()` hands out a std::future. A
// request is sent when one of them is called. Each request is carried by a small
// actor of its own, never by a thread, and nothing polls.
#pragma once

#include <functional>
#include <future>
#include <memory>
#include <utility>

#include "cafdb/database.hpp"

namespace cafdb {

namespace detail {

/// True while this thread runs an async callback: a blocking cafdb call here would hold
/// a scheduler thread until an answer that may need that very thread.
bool in_async_callback() noexcept;

/// The answer of a blocking call made inside an async callback.
caf::error blocking_in_callback();

} // namespace detail

/// An answer on its way. Use it once: `.then(fn)`, `.future()` or `.get()`. Dropping it
/// unused sends nothing.
///
/// `fn` runs on a cafdb thread: keep it short and never wait in it for another cafdb
/// answer: with every scheduler thread waiting, nothing would answer. A blocking
/// `client` or `session` call and `get()` made inside a callback answer
/// `invalid_argument` at once instead; `future().get()` cannot be caught, so don't.
/// An exception that leaves `fn` ends only that request's actor.
template <class Answer>
class [[nodiscard]] async_result {
 public:
  using answer_type = Answer;
  using callback = std::function<void(Answer)>;

  explicit async_result(std::function<void(callback)> start) : start_(std::move(start)) {}
  async_result(async_result&&) noexcept = default;
  async_result& operator=(async_result&&) noexcept = default;
  async_result(const async_result&) = delete;
  async_result& operator=(const async_result&) = delete;

  /// Sends the request; `fn(answer)` runs once, on a cafdb thread.
  void then(callback fn) && {
    auto start = std::exchange(start_, nullptr);
    if (start)
      start(std::move(fn));
  }

  /// Sends the request; the future holds the answer.
  std::future<Answer> future() && {
    auto promise = std::make_shared<std::promise<Answer>>();
    auto out = promise->get_future();
    std::move(*this).then([promise](Answer x) { promise->set_value(std::move(x)); });
    return out;
  }

  /// Sends the request and waits for the answer (what the blocking client does). Inside
  /// an async callback it sends nothing and answers `invalid_argument` at once: waiting
  /// there could stop the database (see above).
  Answer get() && {
    if (detail::in_async_callback())
      return Answer{detail::blocking_in_callback()};
    return std::move(*this).future().get();
  }

 private:
  std::function<void(callback)> start_;
};

class async_session;

/// A non-blocking facade for any number of threads at once: every call of the blocking
/// `client`, answering an `async_result`. Copyable and thread-safe: it holds only the
/// actor system, the database handle and the timeout. Each request waits at most
/// `request_timeout` (zero or less: no limit) and then answers `request_timeout`.
class async_client : public detail::client_base {
 public:
  async_client(caf::actor_system& sys, database_actor db,
               caf::timespan request_timeout = std::chrono::minutes(10));

  async_result<caf::expected<readiness_snapshot>> await_ready(caf::timespan timeout);
  /// A session owned by the returned object (see async_session).
  async_result<caf::expected<async_session>> open_session(session_options options = {});

  async_result<caf::expected<result_set>> exec(statement stmt, session_options options = {});
  async_result<caf::expected<std::vector<result_set>>> transact(std::vector<statement> stmts,
                                                                session_options options = {});
  async_result<caf::expected<result_set>> exec_many(bulk_statement bulk,
                                                    session_options options = {});

  /// The work of an asynchronous transaction: starts requests on the session and answers
  /// when they are done (an error means roll back).
  using transaction_body = std::function<async_result<caf::error>(async_session&)>;

  /// `client::in_transaction` without blocking: opens a session, begins (with `tx`),
  /// runs `fn`, commits when `fn` answers no error and rolls back when it answers one;
  /// answers `fn`'s error or the commit's. If `fn` throws, the transaction rolls back and
  /// the answer is `transaction_failed` naming the exception.
  async_result<caf::error> in_transaction(transaction_body fn, session_options options = {},
                                          tx_options tx = {});

  async_result<caf::error> create_all();
  async_result<caf::error> create_all(schema_def schema);
  async_result<caf::error> drop_all();
  async_result<caf::error> drop_all(schema_def schema);
  async_result<caf::expected<schema_def>> reflect();

  // The JSON operations (docs/operations.md), as on `client`.
  async_result<caf::expected<nlohmann::json>> run(operation op);
  async_result<caf::expected<nlohmann::json>> count(statement query, session_options options = {});
  async_result<caf::expected<nlohmann::json>>
  paginate(statement query, int64_t page, int64_t page_size, session_options options = {});
  async_result<caf::expected<nlohmann::json>> read_one(statement query,
                                                       session_options options = {});
  async_result<caf::expected<nlohmann::json>> read_query(statement query,
                                                         session_options options = {});
  async_result<caf::expected<nlohmann::json>>
  read_multi(std::vector<std::pair<std::string, statement>> queries, session_options options = {});
  async_result<caf::expected<nlohmann::json>> execute_one(statement stmt,
                                                          session_options options = {});
  async_result<caf::expected<nlohmann::json>> execute_many(std::vector<statement> stmts,
                                                           session_options options = {});
  async_result<caf::expected<nlohmann::json>> create_one(const std::string& table,
                                                         const nlohmann::json& row);
  async_result<caf::expected<nlohmann::json>> create_many(const std::string& table,
                                                          const nlohmann::json& rows);
  async_result<caf::expected<nlohmann::json>>
  update_one(const std::string& table, const nlohmann::json& key, const nlohmann::json& changes);
  async_result<caf::expected<nlohmann::json>> delete_one(const std::string& table,
                                                         const nlohmann::json& key);
  async_result<caf::expected<nlohmann::json>> delete_many(const std::string& table,
                                                          const nlohmann::json& keys);
  async_result<caf::expected<nlohmann::json>>
  upsert(const std::string& table, const nlohmann::json& row,
         std::vector<std::string> conflict_columns = {});

  async_result<caf::expected<status_report>> status();
  async_result<caf::expected<readiness_snapshot>> subscribe(caf::actor subscriber);
  /// Stops the database gracefully: open sessions roll back.
  async_result<caf::error> stop();
};

/// A session for asynchronous code, owned by this object: when it is destroyed (or
/// `close` answers), the session rolls back what is open and ends, as a blocking
/// `session` does. Move-only. Requests may come from any thread. The session runs them
/// one after another: those sent from one thread in the order they were sent (when
/// `.then`, `.future` or `.get` was called), so `begin`, statements and `commit` may all
/// be sent before the first answer comes. Requests in flight when the object is
/// destroyed still answer; then the session rolls back what is open and ends.
class async_session {
 public:
  async_session(async_session&&) noexcept = default;
  async_session& operator=(async_session&& other) noexcept;
  ~async_session();

  async_result<caf::expected<result_set>> exec(statement stmt);
  async_result<caf::expected<std::vector<result_set>>> transact(std::vector<statement> stmts);
  async_result<caf::expected<result_set>> exec_many(bulk_statement bulk);
  async_result<caf::error> begin();
  async_result<caf::error> begin(const tx_options& options);
  async_result<caf::error> commit();
  async_result<caf::error> rollback();
  async_result<caf::error> savepoint(const std::string& name);
  async_result<caf::error> release(const std::string& name);
  async_result<caf::error> rollback_to(const std::string& name);
  async_result<caf::expected<session_info>> info();
  /// Rolls back if a transaction is open and ends the session; later calls answer
  /// `session_closed`.
  async_result<caf::error> close();

  session_actor handle() const { return actor_; }

 private:
  friend class async_client;
  async_session(caf::actor_system& sys, caf::actor owner, session_actor actor,
                caf::timespan timeout);
  void end_owner();

  caf::actor_system* sys_ = nullptr;
  /// Lives as long as this object; the session watches it and rolls back when it ends.
  caf::actor owner_;
  session_actor actor_;
  caf::timespan timeout_{};
};

} // namespace cafdb

// The blocking facade: one request, one reply, each bounded by a timeout.
#include <algorithm>
#include <mutex>

#include <caf/all.hpp>

#include "cafdb/async.hpp"
#include "cafdb/database.hpp"
#include "facade/requests.hpp"
#include "log.hpp"
#include "pool/in_place_shelf.hpp"
#include "session/in_place_read.hpp"
#include "sql_text.hpp"
#include "timeouts.hpp"

namespace cafdb {

namespace {

/// One request, one answer. CAF's own errors never reach the caller (see
/// facade::caller_error). The caller's thread waits on its own mailbox with a deadline
/// instead of giving CAF a request timeout: a timeout on CAF's clock costs two wake-ups
/// of the clock's thread per call (set, then cancel), as much as the request itself
/// (docs/benchmarks.md). A late answer is left in the mailbox of `self`, which skips it
/// (its request id matches no later call).
template <class T, class Handle, class... Ts>
caf::expected<T> ask_or(caf::scoped_actor& self, const Handle& dest, caf::timespan timeout,
                        const caf::error& gone, Ts&&... xs) {
  // Waiting here inside an async callback could hold the thread its answer needs.
  if (detail::in_async_callback())
    return detail::blocking_in_callback();
  caf::expected<T> out{caf::error{}};
  auto handle = self->request(dest, caf::infinite, std::forward<Ts>(xs)...);
  auto on_value = [&](T& value) { out = std::move(value); };
  auto on_error = [&](caf::error& err) { out = std::move(err); };
  if (timeout >= no_limit) {
    handle.receive(on_value, on_error);
  } else {
    caf::blocking_actor::accept_one_cond one;
    self->varargs_receive(
        one, handle.id(), on_value, on_error,
        caf::after(timeout) >> [&] { out = caf::make_error(caf::sec::request_timeout); });
  }
  if (out)
    return out;
  return facade::caller_error(std::move(out.error()), timeout, gone);
}

template <class T, class Handle, class... Ts>
caf::expected<T> ask(caf::scoped_actor& self, const Handle& dest, caf::timespan timeout,
                     Ts&&... xs) {
  return ask_or<T>(self, dest, timeout, facade::database_gone(), std::forward<Ts>(xs)...);
}

caf::error as_error(caf::expected<caf::ok_atom> x) {
  return x ? caf::error{} : std::move(x.error());
}

} // namespace

// -- client ---------------------------------------------------------------------

// A timeout of zero or less is no limit of the client's own.
detail::client_base::client_base(caf::actor_system& sys, database_actor db,
                                 caf::timespan request_timeout)
    : sys_(&sys), db_(std::move(db)),
      timeout_(request_timeout.count() > 0 ? bounded(request_timeout) : no_limit) {}

namespace detail {

/// The blocking actors a client's calls wait on, kept between calls. A scoped_actor per
/// call spawned and tore down an actor each time, and CAF 0.17 takes its global logger
/// lock (`logger::thread_local_aid`, a spinlock, even with logging off) on every
/// construction and destruction: 50 threads calling at once starved a new thread that
/// needed that lock exclusively (a connection opened after an outage), and under
/// ThreadSanitizer the test of a server restart under load stalled for minutes. The
/// actors are hidden: an idle one does not hold up the actor system's shutdown (the
/// client, as before, must not outlive its actor system).
class caller_pool {
 public:
  std::unique_ptr<caf::scoped_actor> take(caf::actor_system& sys) {
    {
      std::lock_guard<std::mutex> guard{mtx_};
      if (!idle_.empty()) {
        auto self = std::move(idle_.back());
        idle_.pop_back();
        return self;
      }
    }
    return std::make_unique<caf::scoped_actor>(sys, true);
  }

  /// Not after a call that ended at the caller's own timeout: its late answer would
  /// wait in the actor's mailbox for ever. Any other answer, an error too, was taken
  /// from the mailbox (a server outage must not bring back an actor per call).
  void give_back(std::unique_ptr<caf::scoped_actor> self) {
    std::unique_lock<std::mutex> guard{mtx_};
    if (idle_.size() < max_idle) {
      idle_.push_back(std::move(self));
      return;
    }
    guard.unlock();
    self.reset();
  }

 private:
  /// As many as threads that call at once, up to this.
  static constexpr size_t max_idle = 64;
  std::mutex mtx_;
  std::vector<std::unique_ptr<caf::scoped_actor>> idle_;
};

struct in_place_route {
  /// Not only the in-place route: the blocking actors of the client's calls too
  /// (shared by the client's copies, as the route is).
  caller_pool callers;
  std::once_flag asked;
  /// A null shelf: this client never reads in place (not SQLite, read_in_place off,
  /// or a database in another process).
  in_place_access access;
  std::shared_ptr<spdlog::logger> sql_log;
};

/// What a blocking session learns once from its session actor, and what it knows of
/// the session's transaction from the calls it made.
struct session_route {
  session_options options;
  bool asked = false;
  /// A null shelf: this session never runs a call in place.
  in_place_access access;
  std::shared_ptr<spdlog::logger> sql_log;
  /// A transaction may be open: begin was sent, and no commit or rollback succeeded
  /// since (a failed commit or a revoked lease leave the session to say what it is).
  bool maybe_in_tx = false;
  /// A call ended at the caller's own timeout: the session actor may still run it, and
  /// a call in place would overtake it. Until the actor answers a later call.
  bool behind = false;
};

} // namespace detail

client::client(caf::actor_system& sys, database_actor db, caf::timespan request_timeout)
    : client_base(sys, std::move(db), request_timeout),
      in_place_(std::make_shared<detail::in_place_route>()) {}

namespace {

/// `ask` on a blocking actor of the client's pool.
template <class T, class... Ts>
caf::expected<T> ask_pooled(const std::shared_ptr<detail::in_place_route>& route,
                            caf::actor_system& sys, const database_actor& db, caf::timespan timeout,
                            Ts&&... xs) {
  if (!route) { // a moved-from client
    caf::scoped_actor self{sys};
    return ask<T>(self, db, timeout, std::forward<Ts>(xs)...);
  }
  auto self = route->callers.take(sys);
  auto out = ask<T>(*self, db, timeout, std::forward<Ts>(xs)...);
  if (out || describe(out.error()).code != errc::request_timeout)
    route->callers.give_back(std::move(self));
  return out;
}

} // namespace

namespace {

/// Runs `stmt` in place on a connection of `access`'s shelf, on the caller's thread
/// (session/in_place_read.hpp), with the request deadline a session would give it and
/// never past the caller's `timeout`. Nothing when it cannot run there: the caller
/// sends the request on.
std::optional<caf::expected<result_set>>
run_in_place(const in_place_access& access, spdlog::logger& sql_log, const statement& stmt,
             const session_options& options, caf::timespan timeout) {
  auto& shelf = *access.shelf;
  auto& cfg = *access.cfg;
  // SQLite: what the prepared statement learned (no write, no session change, no
  // transaction control) is cached with it, so every call is verified, read-only ones
  // too, and scans no text; anything else goes to the database, which answers it as
  // before (a write in a read-only call: read_only_violation). PostgreSQL: the
  // connection runs any statement; the text is checked as a session checks it.
  bool shared = shelf.kind() == pool::in_place_shelf::pool_kind::shared;
  if (shared) {
    if (auto refused = refused_sql_here(stmt.sql, cfg.engine, options.read_only))
      return caf::expected<result_set>{to_caf_error(std::move(*refused))};
  } else if (stmt.sql.find('\0') != std::string::npos) {
    return std::nullopt; // the session refuses it
  }
  // The session's request deadline (actors/session.cpp), and never past the caller's.
  caf::timespan deadline = request_deadline(options.request_timeout, cfg);
  bool callers_bound = timeout < deadline;
  deadline = std::min(deadline, timeout);
  auto rows = in_place::exec(shelf, cfg, sql_log, stmt, deadline,
                             in_place::how{!shared, options.read_only, true});
  if (!rows)
    return std::nullopt; // none free, or it may write: the database decides
  if (*rows)
    return caf::expected<result_set>{std::move(**rows)};
  // Stopped at the caller's own timeout: the code a request past it gets, but this
  // statement was cancelled, where a request's goes on until its own deadline.
  if (callers_bound && rows->error().code == errc::statement_timeout)
    return caf::expected<result_set>{make_error(
        errc::request_timeout, "no answer within the client's request timeout (" +
                                   facade::shown_timeout(timeout) +
                                   "); the statement was cancelled and changed nothing: raise "
                                   "the timeout, or make it cheaper")};
  return caf::expected<result_set>{to_caf_error(std::move(rows->error()))};
}

} // namespace

std::optional<caf::expected<result_set>> client::exec_in_place(const statement& stmt,
                                                               const session_options& options) {
  // The request path answers these as it must (an async callback is refused there).
  if (detail::in_async_callback() || !db_ || !in_place_)
    return std::nullopt;
  // Held for the call: an application that destroys its runtime while calls still run
  // must not take the shelf from under them.
  auto held = in_place_;
  auto& route = *held;
  std::call_once(route.asked, [&] {
    if (db_->node() != sys_->node())
      return; // the shelf's connections live in the database's process
    caf::scoped_actor self{*sys_};
    auto access = ask<in_place_access>(self, db_, std::chrono::seconds(10), in_place_atom::value);
    if (!access || !access->shelf)
      return;
    route.access = std::move(*access);
    route.sql_log = log::get("sql");
  });
  // Not serving (starting, degraded, stopping): the database answers as it must.
  if (!route.access.shelf || !route.access.serving->load(std::memory_order_relaxed))
    return std::nullopt;
  return run_in_place(route.access, *route.sql_log, stmt, options, timeout_);
}

caf::expected<readiness_snapshot> client::await_ready(caf::timespan timeout) {
  timeout = bounded(timeout);
  return ask_pooled<readiness_snapshot>(in_place_, *sys_, db_, timeout + std::chrono::seconds(5),
                                        await_atom::value, timeout);
}

caf::expected<session> client::open_session(session_options options) {
  auto owner = std::make_unique<caf::scoped_actor>(*sys_);
  auto actor = ask<session_actor>(*owner, db_, timeout_, caf::open_atom::value, std::move(options));
  if (!actor)
    return std::move(actor.error());
  return session{std::move(owner), std::move(*actor), timeout_, std::move(options)};
}

caf::expected<result_set> client::exec(statement stmt, session_options options) {
  if (auto rows = exec_in_place(stmt, options))
    return std::move(*rows);
  return ask_pooled<result_set>(in_place_, *sys_, db_, timeout_, exec_atom::value, std::move(stmt),
                                std::move(options));
}

caf::expected<std::vector<result_set>> client::transact(std::vector<statement> stmts,
                                                        session_options options) {
  return ask_pooled<std::vector<result_set>>(in_place_, *sys_, db_, timeout_, transact_atom::value,
                                             std::move(stmts), std::move(options));
}

caf::expected<result_set> client::exec_many(bulk_statement bulk, session_options options) {
  return ask_pooled<result_set>(in_place_, *sys_, db_, timeout_, exec_many_atom::value,
                                std::move(bulk), std::move(options));
}

caf::expected<status_report> client::status() {
  return ask_pooled<status_report>(in_place_, *sys_, db_, timeout_, status_atom::value);
}

caf::expected<readiness_snapshot> client::subscribe(caf::actor subscriber) {
  return ask_pooled<readiness_snapshot>(in_place_, *sys_, db_, timeout_, caf::subscribe_atom::value,
                                        std::move(subscriber));
}

caf::error client::create_all() {
  return as_error(
      ask_pooled<caf::ok_atom>(in_place_, *sys_, db_, timeout_, create_all_atom::value));
}

caf::error client::create_all(schema_def schema) {
  return as_error(ask_pooled<caf::ok_atom>(in_place_, *sys_, db_, timeout_, create_all_atom::value,
                                           std::move(schema)));
}

caf::error client::drop_all() {
  return as_error(ask_pooled<caf::ok_atom>(in_place_, *sys_, db_, timeout_, drop_all_atom::value));
}

caf::error client::drop_all(schema_def schema) {
  return as_error(ask_pooled<caf::ok_atom>(in_place_, *sys_, db_, timeout_, drop_all_atom::value,
                                           std::move(schema)));
}

caf::expected<schema_def> client::reflect() {
  return ask_pooled<schema_def>(in_place_, *sys_, db_, timeout_, reflect_atom::value);
}

// -- operations ----------------------------------------------------------------------

namespace facade {

const caf::error& database_gone() {
  static const auto gone = make_error(
      errc::shutting_down, "the database has stopped (or was never started); start a new one");
  return gone;
}

const caf::error& session_gone() {
  static const auto gone =
      make_error(errc::session_closed, "the session has ended (closed, idle timeout, or the "
                                       "database stopped); open a new one");
  return gone;
}

std::string shown_timeout(caf::timespan timeout) {
  // Milliseconds, unless that would read "0 ms".
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(timeout).count();
  return ms > 0 ? std::to_string(ms) + " ms" : std::to_string(timeout.count()) + " ns";
}

caf::error caller_error(caf::error err, caf::timespan timeout, const caf::error& gone) {
  if (err == caf::sec::request_timeout)
    return make_error(errc::request_timeout,
                      "no answer within the client's request timeout (" + shown_timeout(timeout) +
                          "); the request may still complete: check before retrying a write, or "
                          "raise the timeout");
  if (err == caf::sec::request_receiver_down)
    return gone;
  return err;
}

operation query_op(op_kind kind, std::vector<statement> stmts, session_options options) {
  operation op;
  op.kind = kind;
  op.statements = std::move(stmts);
  op.options = std::move(options);
  return op;
}

operation table_op(op_kind kind, const std::string& table, const nlohmann::json* data,
                   const nlohmann::json* key) {
  operation op;
  op.kind = kind;
  op.table = table;
  if (data)
    op.data = data->dump();
  if (key)
    op.key = key->dump();
  return op;
}

} // namespace facade

using facade::query_op;
using facade::table_op;

caf::expected<nlohmann::json> client::run(operation op) {
  auto text =
      ask_pooled<std::string>(in_place_, *sys_, db_, timeout_, op_atom::value, std::move(op));
  if (!text)
    return std::move(text.error());
  return nlohmann::json::parse(*text);
}

caf::expected<nlohmann::json> client::count(statement query, session_options options) {
  return run(query_op(op_kind::count, {std::move(query)}, std::move(options)));
}

caf::expected<nlohmann::json> client::paginate(statement query, int64_t page, int64_t page_size,
                                               session_options options) {
  auto op = query_op(op_kind::paginate, {std::move(query)}, std::move(options));
  op.page = page;
  op.page_size = page_size;
  return run(std::move(op));
}

caf::expected<nlohmann::json> client::read_one(statement query, session_options options) {
  return run(query_op(op_kind::read_one, {std::move(query)}, std::move(options)));
}

caf::expected<nlohmann::json> client::read_query(statement query, session_options options) {
  return run(query_op(op_kind::read_query, {std::move(query)}, std::move(options)));
}

caf::expected<nlohmann::json>
client::read_multi(std::vector<std::pair<std::string, statement>> queries,
                   session_options options) {
  auto op = query_op(op_kind::read_multi, {}, std::move(options));
  for (auto& [name, query] : queries) {
    op.names.push_back(std::move(name));
    op.statements.push_back(std::move(query));
  }
  return run(std::move(op));
}

caf::expected<nlohmann::json> client::execute_one(statement stmt, session_options options) {
  return run(query_op(op_kind::execute_one, {std::move(stmt)}, std::move(options)));
}

caf::expected<nlohmann::json> client::execute_many(std::vector<statement> stmts,
                                                   session_options options) {
  return run(query_op(op_kind::execute_many, std::move(stmts), std::move(options)));
}

caf::expected<nlohmann::json> client::create_one(const std::string& table,
                                                 const nlohmann::json& row) {
  return run(table_op(op_kind::create_one, table, &row, nullptr));
}

caf::expected<nlohmann::json> client::create_many(const std::string& table,
                                                  const nlohmann::json& rows) {
  return run(table_op(op_kind::create_many, table, &rows, nullptr));
}

caf::expected<nlohmann::json> client::update_one(const std::string& table,
                                                 const nlohmann::json& key,
                                                 const nlohmann::json& changes) {
  return run(table_op(op_kind::update_one, table, &changes, &key));
}

caf::expected<nlohmann::json> client::delete_one(const std::string& table,
                                                 const nlohmann::json& key) {
  return run(table_op(op_kind::delete_one, table, nullptr, &key));
}

caf::expected<nlohmann::json> client::delete_many(const std::string& table,
                                                  const nlohmann::json& keys) {
  return run(table_op(op_kind::delete_many, table, nullptr, &keys));
}

caf::expected<nlohmann::json> client::upsert(const std::string& table, const nlohmann::json& row,
                                             std::vector<std::string> conflict_columns) {
  auto op = table_op(op_kind::upsert, table, &row, nullptr);
  op.conflict_columns = std::move(conflict_columns);
  return run(std::move(op));
}

caf::error client::stop() {
  return as_error(ask_pooled<caf::ok_atom>(in_place_, *sys_, db_, timeout_, stop_atom::value));
}

// -- session --------------------------------------------------------------------

session::session(std::unique_ptr<caf::scoped_actor> owner, session_actor actor,
                 caf::timespan timeout, session_options options)
    : owner_(std::move(owner)), actor_(std::move(actor)), timeout_(timeout),
      route_(std::make_shared<detail::session_route>()) {
  route_->options = std::move(options);
}

session::session(session&&) noexcept = default;

session& session::operator=(session&& other) noexcept {
  if (this != &other) {
    close();
    owner_ = std::move(other.owner_);
    actor_ = std::move(other.actor_);
    timeout_ = other.timeout_;
    route_ = std::move(other.route_);
  }
  return *this;
}

session::~session() {
  close();
}

template <class T, class... Ts>
caf::expected<T> session::call(Ts&&... xs) {
  if (!owner_ || !actor_)
    return make_error(errc::session_closed, "this session object was closed or moved from");
  return ask_or<T>(*owner_, actor_, timeout_, facade::session_gone(), std::forward<Ts>(xs)...);
}

template <class T>
T session::tracked(T answer) {
  if (route_)
    route_->behind = !answer && is(answer.error(), errc::request_timeout);
  return answer;
}

std::optional<caf::expected<result_set>> session::exec_in_place(const statement& stmt) {
  if (!owner_ || !actor_ || !route_ || detail::in_async_callback())
    return std::nullopt;
  auto& route = *route_;
  if (route.maybe_in_tx || route.behind)
    return std::nullopt;
  if (!route.asked) {
    route.asked = true;
    auto& self = *owner_;
    if (actor_->node() != self->home_system().node())
      return std::nullopt; // the shelf's connections live in the session's process
    auto access = ask_or<in_place_access>(self, actor_, std::chrono::seconds(10),
                                          facade::session_gone(), in_place_atom::value);
    if (!access || !access->shelf || !access->pulse)
      return std::nullopt;
    route.access = std::move(*access);
    route.sql_log = log::get("sql");
  }
  // Closed (idle timeout, the database's stop): the session answers as it must.
  if (!route.access.shelf || route.access.pulse->closed.load(std::memory_order_relaxed))
    return std::nullopt;
  // A request for the session's idle clock, run or not: the session sweeps it.
  route.access.pulse->calls.fetch_add(1, std::memory_order_relaxed);
  return run_in_place(route.access, *route.sql_log, stmt, route.options, timeout_);
}

caf::expected<result_set> session::exec(statement stmt) {
  if (auto rows = exec_in_place(stmt))
    return std::move(*rows);
  return tracked(call<result_set>(exec_atom::value, std::move(stmt)));
}

caf::expected<std::vector<result_set>> session::transact(std::vector<statement> stmts) {
  return tracked(call<std::vector<result_set>>(transact_atom::value, std::move(stmts)));
}

caf::expected<result_set> session::exec_many(bulk_statement bulk) {
  return tracked(call<result_set>(exec_many_atom::value, std::move(bulk)));
}

// Whatever begin answers, a transaction may be open until a commit or rollback succeeds.
caf::error session::begin() {
  if (route_)
    route_->maybe_in_tx = true;
  return as_error(tracked(call<caf::ok_atom>(begin_atom::value)));
}

caf::error session::begin(const tx_options& options) {
  if (route_)
    route_->maybe_in_tx = true;
  return as_error(tracked(call<caf::ok_atom>(begin_atom::value, options)));
}

caf::error session::commit() {
  auto err = as_error(tracked(call<caf::ok_atom>(commit_atom::value)));
  if (!err && route_)
    route_->maybe_in_tx = false;
  return err;
}

caf::error session::rollback() {
  auto err = as_error(tracked(call<caf::ok_atom>(rollback_atom::value)));
  if (!err && route_)
    route_->maybe_in_tx = false;
  return err;
}

caf::error session::savepoint(const std::string& name) {
  return as_error(tracked(call<caf::ok_atom>(savepoint_atom::value, name)));
}

caf::error session::release(const std::string& name) {
  return as_error(tracked(call<caf::ok_atom>(release_atom::value, name)));
}

caf::error session::rollback_to(const std::string& name) {
  return as_error(tracked(call<caf::ok_atom>(rollback_to_atom::value, name)));
}

caf::expected<session_info> session::info() {
  return call<session_info>(caf::get_atom::value);
}

caf::error session::close() {
  if (!owner_ || !actor_)
    return {};
  auto err = as_error(call<caf::ok_atom>(caf::close_atom::value));
  if (is(err, errc::session_closed))
    err = caf::error{}; // closing twice is fine
  actor_ = nullptr;
  // Destroying the owner also tells the session (down_msg) if close did not arrive.
  owner_.reset();
  return err;
}

} // namespace cafdb

// The asynchronous facade: each request is carried by an event-based actor of its own
// that sends it, hands the answer to the caller's callback and quits. No thread waits.
#include "cafdb/async.hpp"

#include <type_traits>

#include <caf/all.hpp>

#include "cafdb/settled.hpp"
#include "facade/requests.hpp"
#include "timeouts.hpp"

namespace cafdb {

namespace {

// What a caller gets for a reply of type T: `ok_atom` replies become a plain error.
template <class T>
using answer_of = std::conditional_t<std::is_same_v<T, caf::ok_atom>, caf::error, caf::expected<T>>;

template <class T>
answer_of<T> as_answer(T&& x) {
  if constexpr (std::is_same_v<std::decay_t<T>, caf::ok_atom>)
    return caf::error{};
  else
    return answer_of<std::decay_t<T>>{std::forward<T>(x)};
}

// Sends `xs...` to `dest` from an actor of its own and gives the answer to the
// callback; CAF's errors become cafdb's (facade::caller_error), a missing `dest`
// answers `gone` at once.
template <class T, class Handle, class... Ts>
async_result<answer_of<T>> ask_async(caf::actor_system* sys, Handle dest, caf::timespan timeout,
                                     const caf::error& gone, Ts... xs) {
  using answer = answer_of<T>;
  using callback = typename async_result<answer>::callback;
  return async_result<answer>{[=](callback done) {
    if (!dest || !sys) {
      done(answer{gone});
      return;
    }
    sys->spawn([=](caf::event_based_actor* self) {
      then_settled(
          self->request(dest, timeout, xs...),
          [self, done](T& x) {
            self->quit();
            done(as_answer(std::move(x)));
          },
          [self, done, timeout, gone](caf::error& err) {
            self->quit();
            done(answer{facade::caller_error(std::move(err), timeout, gone)});
          });
    });
  }};
}

// The JSON operations answer text; the caller gets it parsed.
async_result<caf::expected<nlohmann::json>>
ask_json(caf::actor_system* sys, const database_actor& db, caf::timespan timeout, operation op) {
  using answer = caf::expected<nlohmann::json>;
  return async_result<answer>{[=](async_result<answer>::callback done) {
    ask_async<std::string>(sys, db, timeout, facade::database_gone(), op_atom::value, op)
        .then([done](caf::expected<std::string> text) {
          if (!text)
            done(answer{std::move(text.error())});
          else
            done(answer{nlohmann::json::parse(*text)});
        });
  }};
}

} // namespace

// -- async_client -----------------------------------------------------------------

async_client::async_client(caf::actor_system& sys, database_actor db, caf::timespan request_timeout)
    : client_base(sys, std::move(db), request_timeout) {}

async_result<caf::expected<readiness_snapshot>> async_client::await_ready(caf::timespan timeout) {
  timeout = bounded(timeout);
  return ask_async<readiness_snapshot>(sys_, db_, timeout + std::chrono::seconds(5),
                                       facade::database_gone(), await_atom::value, timeout);
}

async_result<caf::expected<async_session>> async_client::open_session(session_options options) {
  using answer = caf::expected<async_session>;
  auto sys = sys_;
  auto db = db_;
  auto timeout = timeout_;
  return async_result<answer>{[=](async_result<answer>::callback done) {
    if (!db) {
      done(answer{facade::database_gone()});
      return;
    }
    // The actor that asks for the session owns it: the session watches its requester and
    // rolls back when it ends. It lives until the async_session ends it.
    sys->spawn([=](caf::event_based_actor* self) -> caf::behavior {
      then_settled(
          self->request(db, timeout, caf::open_atom::value, options),
          [self, done, sys, timeout](session_actor& actor) {
            done(answer{
                async_session{*sys, caf::actor_cast<caf::actor>(self), std::move(actor), timeout}});
          },
          [self, done, timeout](caf::error& err) {
            self->quit();
            done(answer{facade::caller_error(std::move(err), timeout, facade::database_gone())});
          });
      return {[](caf::ok_atom) {}};
    });
  }};
}

async_result<caf::expected<result_set>> async_client::exec(statement stmt,
                                                           session_options options) {
  return ask_async<result_set>(sys_, db_, timeout_, facade::database_gone(), exec_atom::value,
                               std::move(stmt), std::move(options));
}

async_result<caf::expected<std::vector<result_set>>>
async_client::transact(std::vector<statement> stmts, session_options options) {
  return ask_async<std::vector<result_set>>(sys_, db_, timeout_, facade::database_gone(),
                                            transact_atom::value, std::move(stmts),
                                            std::move(options));
}

async_result<caf::expected<result_set>> async_client::exec_many(bulk_statement bulk,
                                                                session_options options) {
  return ask_async<result_set>(sys_, db_, timeout_, facade::database_gone(), exec_many_atom::value,
                               std::move(bulk), std::move(options));
}

async_result<caf::error> async_client::create_all() {
  return ask_async<caf::ok_atom>(sys_, db_, timeout_, facade::database_gone(),
                                 create_all_atom::value);
}

async_result<caf::error> async_client::create_all(schema_def schema) {
  return ask_async<caf::ok_atom>(sys_, db_, timeout_, facade::database_gone(),
                                 create_all_atom::value, std::move(schema));
}

async_result<caf::error> async_client::drop_all() {
  return ask_async<caf::ok_atom>(sys_, db_, timeout_, facade::database_gone(),
                                 drop_all_atom::value);
}

async_result<caf::error> async_client::drop_all(schema_def schema) {
  return ask_async<caf::ok_atom>(sys_, db_, timeout_, facade::database_gone(), drop_all_atom::value,
                                 std::move(schema));
}

async_result<caf::expected<schema_def>> async_client::reflect() {
  return ask_async<schema_def>(sys_, db_, timeout_, facade::database_gone(), reflect_atom::value);
}

async_result<caf::expected<nlohmann::json>> async_client::run(operation op) {
  return ask_json(sys_, db_, timeout_, std::move(op));
}

async_result<caf::expected<nlohmann::json>> async_client::count(statement query,
                                                                session_options options) {
  return run(facade::query_op(op_kind::count, {std::move(query)}, std::move(options)));
}

async_result<caf::expected<nlohmann::json>>
async_client::paginate(statement query, int64_t page, int64_t page_size, session_options options) {
  auto op = facade::query_op(op_kind::paginate, {std::move(query)}, std::move(options));
  op.page = page;
  op.page_size = page_size;
  return run(std::move(op));
}

async_result<caf::expected<nlohmann::json>> async_client::read_one(statement query,
                                                                   session_options options) {
  return run(facade::query_op(op_kind::read_one, {std::move(query)}, std::move(options)));
}

async_result<caf::expected<nlohmann::json>> async_client::read_query(statement query,
                                                                     session_options options) {
  return run(facade::query_op(op_kind::read_query, {std::move(query)}, std::move(options)));
}

async_result<caf::expected<nlohmann::json>>
async_client::read_multi(std::vector<std::pair<std::string, statement>> queries,
                         session_options options) {
  auto op = facade::query_op(op_kind::read_multi, {}, std::move(options));
  for (auto& [name, query] : queries) {
    op.names.push_back(std::move(name));
    op.statements.push_back(std::move(query));
  }
  return run(std::move(op));
}

async_result<caf::expected<nlohmann::json>> async_client::execute_one(statement stmt,
                                                                      session_options options) {
  return run(facade::query_op(op_kind::execute_one, {std::move(stmt)}, std::move(options)));
}

async_result<caf::expected<nlohmann::json>> async_client::execute_many(std::vector<statement> stmts,
                                                                       session_options options) {
  return run(facade::query_op(op_kind::execute_many, std::move(stmts), std::move(options)));
}

async_result<caf::expected<nlohmann::json>> async_client::create_one(const std::string& table,
                                                                     const nlohmann::json& row) {
  return run(facade::table_op(op_kind::create_one, table, &row, nullptr));
}

async_result<caf::expected<nlohmann::json>> async_client::create_many(const std::string& table,
                                                                      const nlohmann::json& rows) {
  return run(facade::table_op(op_kind::create_many, table, &rows, nullptr));
}

async_result<caf::expected<nlohmann::json>>
async_client::update_one(const std::string& table, const nlohmann::json& key,
                         const nlohmann::json& changes) {
  return run(facade::table_op(op_kind::update_one, table, &changes, &key));
}

async_result<caf::expected<nlohmann::json>> async_client::delete_one(const std::string& table,
                                                                     const nlohmann::json& key) {
  return run(facade::table_op(op_kind::delete_one, table, nullptr, &key));
}

async_result<caf::expected<nlohmann::json>> async_client::delete_many(const std::string& table,
                                                                      const nlohmann::json& keys) {
  return run(facade::table_op(op_kind::delete_many, table, nullptr, &keys));
}

async_result<caf::expected<nlohmann::json>>
async_client::upsert(const std::string& table, const nlohmann::json& row,
                     std::vector<std::string> conflict_columns) {
  auto op = facade::table_op(op_kind::upsert, table, &row, nullptr);
  op.conflict_columns = std::move(conflict_columns);
  return run(std::move(op));
}

async_result<caf::expected<status_report>> async_client::status() {
  return ask_async<status_report>(sys_, db_, timeout_, facade::database_gone(), status_atom::value);
}

async_result<caf::expected<readiness_snapshot>> async_client::subscribe(caf::actor subscriber) {
  return ask_async<readiness_snapshot>(sys_, db_, timeout_, facade::database_gone(),
                                       caf::subscribe_atom::value, std::move(subscriber));
}

async_result<caf::error> async_client::stop() {
  return ask_async<caf::ok_atom>(sys_, db_, timeout_, facade::database_gone(), stop_atom::value);
}

// -- async_session ----------------------------------------------------------------

async_session::async_session(caf::actor_system& sys, caf::actor owner, session_actor actor,
                             caf::timespan timeout)
    : sys_(&sys), owner_(std::move(owner)), actor_(std::move(actor)), timeout_(timeout) {}

async_session& async_session::operator=(async_session&& other) noexcept {
  if (this != &other) {
    end_owner();
    sys_ = other.sys_;
    owner_ = std::move(other.owner_);
    actor_ = std::move(other.actor_);
    timeout_ = other.timeout_;
  }
  return *this;
}

async_session::~async_session() {
  end_owner();
}

void async_session::end_owner() {
  // The session sees its owner end and rolls back what is open (its down handler).
  if (owner_)
    caf::anon_send_exit(owner_, caf::exit_reason::user_shutdown);
  owner_ = nullptr;
  actor_ = nullptr;
}

async_result<caf::expected<result_set>> async_session::exec(statement stmt) {
  return ask_async<result_set>(sys_, actor_, timeout_, facade::session_gone(), exec_atom::value,
                               std::move(stmt));
}

async_result<caf::expected<std::vector<result_set>>>
async_session::transact(std::vector<statement> stmts) {
  return ask_async<std::vector<result_set>>(sys_, actor_, timeout_, facade::session_gone(),
                                            transact_atom::value, std::move(stmts));
}

async_result<caf::expected<result_set>> async_session::exec_many(bulk_statement bulk) {
  return ask_async<result_set>(sys_, actor_, timeout_, facade::session_gone(),
                               exec_many_atom::value, std::move(bulk));
}

async_result<caf::error> async_session::begin() {
  return ask_async<caf::ok_atom>(sys_, actor_, timeout_, facade::session_gone(), begin_atom::value);
}

async_result<caf::error> async_session::begin(const tx_options& options) {
  return ask_async<caf::ok_atom>(sys_, actor_, timeout_, facade::session_gone(), begin_atom::value,
                                 options);
}

async_result<caf::error> async_session::commit() {
  return ask_async<caf::ok_atom>(sys_, actor_, timeout_, facade::session_gone(),
                                 commit_atom::value);
}

async_result<caf::error> async_session::rollback() {
  return ask_async<caf::ok_atom>(sys_, actor_, timeout_, facade::session_gone(),
                                 rollback_atom::value);
}

async_result<caf::error> async_session::savepoint(const std::string& name) {
  return ask_async<caf::ok_atom>(sys_, actor_, timeout_, facade::session_gone(),
                                 savepoint_atom::value, name);
}

async_result<caf::error> async_session::release(const std::string& name) {
  return ask_async<caf::ok_atom>(sys_, actor_, timeout_, facade::session_gone(),
                                 release_atom::value, name);
}

async_result<caf::error> async_session::rollback_to(const std::string& name) {
  return ask_async<caf::ok_atom>(sys_, actor_, timeout_, facade::session_gone(),
                                 rollback_to_atom::value, name);
}

async_result<caf::expected<session_info>> async_session::info() {
  return ask_async<session_info>(sys_, actor_, timeout_, facade::session_gone(),
                                 caf::get_atom::value);
}

async_result<caf::error> async_session::close() {
  // From here on this object is closed; the owner ends once the close is answered (or,
  // if the result is dropped unsent, when its last reference goes).
  auto owner = std::exchange(owner_, nullptr);
  auto actor = std::exchange(actor_, nullptr);
  auto sys = sys_;
  auto timeout = timeout_;
  return async_result<caf::error>{[=](async_result<caf::error>::callback done) {
    ask_async<caf::ok_atom>(sys, actor, timeout, facade::session_gone(), caf::close_atom::value)
        .then([owner, done](caf::error err) {
          if (owner)
            caf::anon_send_exit(owner, caf::exit_reason::user_shutdown);
          if (is(err, errc::session_closed))
            err = caf::error{}; // closing twice is fine
          done(std::move(err));
        });
  }};
}

} // namespace cafdb

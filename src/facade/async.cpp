// The asynchronous facade: each request is carried by an event-based actor of its own
// that sends it, hands the answer to the caller's callback and quits. No thread waits.
#include "cafdb/async.hpp"

#include <exception>
#include <optional>
#include <type_traits>

#include <caf/all.hpp>

#include "cafdb/settled.hpp"
#include "facade/requests.hpp"
#include "timeouts.hpp"

namespace cafdb::detail {

// The actor that owns an async_session's session (see async_client::open_session).
struct session_owner_state {
  static inline const char* name = "cafdb.async_session_owner";
  /// Requests sent to the session and not answered yet.
  int outstanding = 0;
  /// The session has ended: quit once nothing is outstanding.
  bool session_gone = false;
  /// The owner keeps itself alive until it quits (a closing job, or the session's end):
  /// its async_session lets go of it before the last answers have come.
  caf::actor keep_alive;
};

using session_owner = caf::stateful_actor<session_owner_state>*;

// Work for a session's owner actor: a request to send to the session. The owner sends
// the jobs it is given in the order they came, so a session sees one thread's calls in
// the order they were made. A job dropped unrun (its owner ended first) answers with
// `dropped`, so no answer is ever lost.
class session_job {
 public:
  session_job(std::function<void(session_owner)> run, std::function<void()> dropped)
      : run_(std::move(run)), dropped_(std::move(dropped)) {}
  session_job(session_job&&) noexcept = default;
  session_job& operator=(session_job&&) noexcept = default;
  session_job(const session_job&) = delete;
  session_job& operator=(const session_job&) = delete;
  ~session_job() {
    if (dropped_)
      dropped_();
  }

  void run(session_owner owner) {
    dropped_ = nullptr;
    run_(owner);
  }

 private:
  std::function<void(session_owner)> run_;
  std::function<void()> dropped_;
};

} // namespace cafdb::detail

// Local only: a session's owner lives in the same process as its async_session.
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::shared_ptr<cafdb::detail::session_job>)

namespace cafdb {

namespace detail {

namespace {

thread_local bool running_callback = false;

} // namespace

bool in_async_callback() noexcept {
  return running_callback;
}

caf::error blocking_in_callback() {
  return make_error(errc::invalid_argument,
                    "a blocking cafdb call (client, session or async_result::get) inside an "
                    "async callback would hold a cafdb thread until an answer that may need "
                    "that thread; start the request with .then() and go on in its callback");
}

} // namespace detail

namespace {

using detail::session_job;

// Runs a caller's callback, marking the thread (see detail::in_async_callback).
template <class F, class Answer>
void deliver(F& done, Answer&& answer) {
  auto outer = std::exchange(detail::running_callback, true);
  done(std::forward<Answer>(answer));
  detail::running_callback = outer;
}
using detail::session_owner;

// A request the owner sent has its answer: the owner may go if the session has ended.
void settle(session_owner self) {
  if (--self->state.outstanding == 0 && self->state.session_gone)
    self->quit();
}

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

// Sends `xs...` to `dest` from `self`, then runs `settled` and gives the answer to the
// callback; CAF's errors become cafdb's (facade::caller_error, `gone` when `dest` went).
template <class T, class Self, class Handle, class Settled, class... Ts>
void request_answer(Self self, const Handle& dest, caf::timespan timeout, const caf::error& gone,
                    typename async_result<answer_of<T>>::callback done, Settled settled, Ts... xs) {
  using answer = answer_of<T>;
  then_settled(
      self->request(dest, timeout, xs...),
      [done, settled](T& x) {
        settled();
        deliver(done, as_answer(std::move(x)));
      },
      [done, settled, timeout, gone](caf::error& err) {
        settled();
        deliver(done, answer{facade::caller_error(std::move(err), timeout, gone)});
      });
}

// Sends `xs...` to `dest` from an actor of its own and gives the answer to the
// callback; a missing `dest` answers `gone` at once.
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
    // One spawn argument, unused: CAF 0.17 starts an actor function without arguments
    // through a null tuple (UBSan reports it).
    sys->spawn(
        [=](caf::event_based_actor* self, int) {
          request_answer<T>(
              self, dest, timeout, gone, done, [self] { self->quit(); }, xs...);
        },
        0);
  }};
}

// Hands a request for `session` to its owner, which sends it after every earlier one.
template <class T, class... Ts>
async_result<answer_of<T>> ask_in_order(const caf::actor& owner, const session_actor& session,
                                        caf::timespan timeout, Ts... xs) {
  using answer = answer_of<T>;
  using callback = typename async_result<answer>::callback;
  return async_result<answer>{[=](callback done) {
    if (!owner || !session) {
      done(answer{facade::session_gone()});
      return;
    }
    auto job = std::make_shared<session_job>(
        [=](session_owner self) {
          ++self->state.outstanding;
          request_answer<T>(
              self, session, timeout, facade::session_gone(), done, [self] { settle(self); },
              xs...);
        },
        [done] { done(answer{facade::session_gone()}); });
    caf::anon_send(owner, std::move(job));
  }};
}

// The job that ends a session's owner: closes the session (rolling back what is open)
// after every request sent before it, then the owner quits. Answers to those requests
// reach the owner first: the session answers in order.
std::shared_ptr<session_job> closing_job(const session_actor& session, caf::timespan timeout,
                                         std::function<void(caf::error)> done) {
  auto finish = std::make_shared<std::function<void(caf::error)>>(std::move(done));
  auto answer = [finish](caf::error err) {
    if (*finish)
      deliver(*finish, std::move(err));
  };
  return std::make_shared<session_job>(
      [=](session_owner self) {
        // Outstanding like any request: the owner goes once every answer is handed on,
        // whatever comes first (the session's down message may overtake this answer).
        ++self->state.outstanding;
        then_settled(
            self->request(session, timeout, caf::close_atom::value),
            [self, answer](caf::ok_atom) {
              self->state.session_gone = true;
              settle(self);
              answer(caf::error{});
            },
            [self, answer, timeout](caf::error& err) {
              self->state.session_gone = true;
              settle(self);
              auto out = facade::caller_error(std::move(err), timeout, facade::session_gone());
              if (is(out, errc::session_closed))
                out = caf::error{}; // closing twice is fine
              answer(std::move(out));
            });
      },
      [answer] { answer(caf::error{}); });
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
    // rolls back when it ends. It sends the session's requests in the order it is given
    // them, and lives until the async_session ends it (a closing job) or the session
    // ends (the database stopped): never past the actor system.
    // One spawn argument, unused (see ask_async).
    sys->spawn(
        [=](session_owner self, int) -> caf::behavior {
          self->state.keep_alive = caf::actor_cast<caf::actor>(self);
          then_settled(
              self->request(db, timeout, caf::open_atom::value, options),
              [self, done, sys, timeout](session_actor& actor) {
                self->monitor(actor);
                deliver(done, answer{async_session{*sys, caf::actor_cast<caf::actor>(self),
                                                   std::move(actor), timeout}});
              },
              [self, done, timeout](caf::error& err) {
                self->quit();
                deliver(done, answer{facade::caller_error(std::move(err), timeout,
                                                          facade::database_gone())});
              });
          // Requests in flight when the session ends still answer (with errors) before the
          // owner goes.
          self->set_down_handler([self](caf::down_msg&) {
            self->state.session_gone = true;
            if (self->state.outstanding == 0)
              self->quit();
          });
          return {[self](const std::shared_ptr<session_job>& job) { job->run(self); }};
        },
        0);
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

async_result<caf::error> async_client::in_transaction(transaction_body fn, session_options options,
                                                      tx_options tx) {
  using callback = async_result<caf::error>::callback;
  auto db = *this;
  return async_result<caf::error>{[=](callback done) mutable {
    db.open_session(options).then([=](caf::expected<async_session> opened) {
      if (!opened) {
        done(std::move(opened.error()));
        return;
      }
      // Shared along the chain; the last step drops it, which ends the session.
      auto s = std::make_shared<async_session>(std::move(*opened));
      s->begin(tx).then([=](caf::error began) {
        if (began) {
          done(std::move(began));
          return;
        }
        auto finish = [=](caf::error err) {
          if (err)
            s->rollback().then([=](caf::error) { done(err); });
          else
            s->commit().then([=](caf::error committed) { done(std::move(committed)); });
        };
        std::optional<async_result<caf::error>> work;
        try {
          work.emplace(fn(*s));
        } catch (const std::exception& e) {
          finish(make_error(errc::transaction_failed,
                            std::string{"in_transaction: the body threw ("} + e.what() +
                                "); the transaction was rolled back"));
          return;
        } catch (...) {
          finish(make_error(errc::transaction_failed,
                            "in_transaction: the body threw; the transaction was rolled back"));
          return;
        }
        std::move(*work).then(finish);
      });
    });
  }};
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
  // The owner closes the session (rolling back what is open) after the requests sent
  // before, and quits.
  if (owner_ && actor_)
    caf::anon_send(owner_, closing_job(actor_, timeout_, nullptr));
  owner_ = nullptr;
  actor_ = nullptr;
}

async_result<caf::expected<result_set>> async_session::exec(statement stmt) {
  return ask_in_order<result_set>(owner_, actor_, timeout_, exec_atom::value, std::move(stmt));
}

async_result<caf::expected<std::vector<result_set>>>
async_session::transact(std::vector<statement> stmts) {
  return ask_in_order<std::vector<result_set>>(owner_, actor_, timeout_, transact_atom::value,
                                               std::move(stmts));
}

async_result<caf::expected<result_set>> async_session::exec_many(bulk_statement bulk) {
  return ask_in_order<result_set>(owner_, actor_, timeout_, exec_many_atom::value, std::move(bulk));
}

async_result<caf::error> async_session::begin() {
  return ask_in_order<caf::ok_atom>(owner_, actor_, timeout_, begin_atom::value);
}

async_result<caf::error> async_session::begin(const tx_options& options) {
  return ask_in_order<caf::ok_atom>(owner_, actor_, timeout_, begin_atom::value, options);
}

async_result<caf::error> async_session::commit() {
  return ask_in_order<caf::ok_atom>(owner_, actor_, timeout_, commit_atom::value);
}

async_result<caf::error> async_session::rollback() {
  return ask_in_order<caf::ok_atom>(owner_, actor_, timeout_, rollback_atom::value);
}

async_result<caf::error> async_session::savepoint(const std::string& name) {
  return ask_in_order<caf::ok_atom>(owner_, actor_, timeout_, savepoint_atom::value, name);
}

async_result<caf::error> async_session::release(const std::string& name) {
  return ask_in_order<caf::ok_atom>(owner_, actor_, timeout_, release_atom::value, name);
}

async_result<caf::error> async_session::rollback_to(const std::string& name) {
  return ask_in_order<caf::ok_atom>(owner_, actor_, timeout_, rollback_to_atom::value, name);
}

async_result<caf::expected<session_info>> async_session::info() {
  return ask_in_order<session_info>(owner_, actor_, timeout_, caf::get_atom::value);
}

async_result<caf::error> async_session::close() {
  // From here on this object is closed. The close is sent when the result is used, and
  // if it is dropped unused, then: the session ends either way.
  struct pending_close {
    caf::actor owner;
    session_actor session;
    caf::timespan timeout{};
    bool sent = false;
    pending_close() = default;
    pending_close(const pending_close&) = delete;
    pending_close& operator=(const pending_close&) = delete;
    ~pending_close() {
      if (!sent && owner)
        caf::anon_send(owner, closing_job(session, timeout, nullptr));
    }
  };
  // Built in place: a copy's destructor would send a close of its own.
  auto pending = std::make_shared<pending_close>();
  pending->owner = std::exchange(owner_, nullptr);
  pending->session = std::exchange(actor_, nullptr);
  pending->timeout = timeout_;
  return async_result<caf::error>{[pending](async_result<caf::error>::callback done) {
    if (!pending->owner || !pending->session) {
      done(caf::error{}); // closed already: closing twice is fine
      return;
    }
    pending->sent = true;
    caf::anon_send(pending->owner,
                   closing_job(pending->session, pending->timeout, std::move(done)));
  }};
}

} // namespace cafdb

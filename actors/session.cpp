// The session actor: one client's unit of work.
//
// Its transaction state is a transition function without actors
// (src/session/transitions.hpp, with the diagram and the whole table): every handler
// asks `admit` whether its request may run in the current phase, runs it, classifies
// what came back (ok, refused, lost, in doubt) and applies `next`, which gives the new
// phase and what to do with the lease. No other code changes the phase.
//
//            begin                   statement fails
//   idle ──────────────► in_tx ─────────────────────► failed
//    ▲ ◄──── commit ────── │ ◄─── rollback_to(sp) ───── │
//    │ ◄──── rollback ─────┴─────── rollback ───────────┘
//    │                     │ an answer in doubt (commit_in_doubt)
//    └─ next work / ── in_doubt ◄─ an autocommit write in doubt
//       rollback
//   any ── close / client down / idle timeout / shutdown: ROLLBACK if open ──► closed
//
// Autocommit requests (from idle or in_doubt) take a lease and give it back; a
// read-only session's exec is a read, routed by src/session/read_router.hpp: in place
// on a SQLite reader connection borrowed from the pool's shelf (read_in_place), else the
// engine runs it without a lease (run_read).
//
// Stop: a graceful shutdown (from the database's stop) closes an idle session at once;
// a session in a transaction is `draining`: it serves its client until the transaction
// ends (commit or rollback), then closes. A forced shutdown (shutdown_timeout passed)
// rolls back and closes whatever is open.
//
// Facts per state:
//   idle:     no transaction; the session holds no lease between requests.
//   in_tx:    holds exactly one lease; the connection has a transaction open.
//   failed:   holds its lease, unless the connection was lost or reclaimed past
//             lease_timeout [revoke] (then the transaction is gone and rollback only
//             resets the phase); everything but rollback / rollback_to answers
//             transaction_failed (PostgreSQL semantics everywhere).
//   in_doubt: the last answer was commit_in_doubt; holds no lease, nothing is open.
//   closed:   holds no lease; every request answers session_closed; the actor quits.
//
// Invariants (checked by assert_invariants in debug builds):
// 1. phase is in_tx  =>  a lease is held; phase is in_doubt or closed  =>  none is.
// 2. savepoints are only open in in_tx or failed.
// 3. Requests are handled one at a time: every call to the engine or connection is
//    `await`ed, so a client that pipelines requests gets them in order.
// 4. A lease leaves the session exactly once, by check-in: clean when no transaction
//    is open, needs_rollback when one may be, running when a request passed its
//    deadline (the engine cancels it on the server and drains the connection), broken
//    when the connection's state is unknown (a request to it failed at the CAF level).
// 5. The only blocking call is a read in place (read_in_place): bounded by the request
//    deadline, and by the in-place shelf's size (all scheduler threads but one).
#include "actors/session.hpp"
#include "cafdb/settled.hpp"

#include <algorithm>
#include <cassert>
#include <chrono>
#include <optional>

#include <caf/all.hpp>

#include "backend/driver.hpp"
#include "cafdb/error.hpp"
#include "log.hpp"
#include "pool/in_place_shelf.hpp"
#include "session/in_place_read.hpp"
#include "session/read_classifier.hpp"
#include "session/read_router.hpp"
#include "session/transitions.hpp"
#include "sql_text.hpp"
#include "timeouts.hpp"
#include "tx_begin.hpp"

namespace cafdb {

namespace {

struct session_state {
  static inline const char* name = "cafdb.session";
  engine_actor engine;
  caf::actor_addr client;
  session_options options;
  std::shared_ptr<const config> cfg;
  bool one_shot = false;
  session_phase phase = session_phase::idle;
  std::optional<lease> held;
  std::vector<std::string> savepoints;
  /// The database is stopping: close as soon as no transaction is open.
  bool draining = false;
  /// Draining is over (the transaction ended) and the close is on its way: new
  /// requests are refused as if the session were closed already.
  bool drained = false;
  /// Idle timeout bookkeeping: when the last request came, how many came so far, and
  /// how many the last idle check saw.
  caf::timespan idle{0};
  caf::timestamp last_request;
  uint64_t requests = 0;
  uint64_t requests_checked = 0;
  /// The pool's in-place shelf, or null: the session reads in place itself only when
  /// it may borrow on a scheduler thread (`reads_in_place`: SQLite file databases);
  /// its blocking owner may on its own thread (in_place_atom, PostgreSQL too).
  std::shared_ptr<pool::in_place_shelf> shelf;
  bool reads_in_place = false;
  /// With the shelf: tells a read-write statement that only reads, when no reader
  /// connection is free on the shelf, so that it queues for the reader pool instead of
  /// holding up the writer.
  std::shared_ptr<read_router::read_classifier> classifier;
  /// Shared with the blocking owner that runs autocommit calls in place: the session
  /// says when it closed, the owner counts its calls (the idle clock).
  std::shared_ptr<in_place::session_pulse> pulse = std::make_shared<in_place::session_pulse>();
  uint64_t pulse_checked = 0;
  std::shared_ptr<spdlog::logger> log;
  std::shared_ptr<spdlog::logger> sql_log;

  // Whatever ends this actor (even a crash or a kill), a held connection goes back
  // to the engine for rollback. Keeps (4).
  ~session_state() {
    if (held)
      caf::anon_send(engine, checkin_atom::value, held->id, connection_condition::needs_rollback);
  }
};

using session_pointer = session_actor::stateful_pointer<session_state>;

void assert_invariants([[maybe_unused]] const session_state& st) {
  assert(st.phase != session_phase::in_tx || st.held);
  assert(st.savepoints.empty() || st.phase == session_phase::in_tx ||
         st.phase == session_phase::failed);
  assert(st.phase != session_phase::closed || !st.held);
  assert(st.phase != session_phase::in_doubt || !st.held);
}

bool in_transaction(const session_state& st) {
  return st.phase == session_phase::in_tx || st.phase == session_phase::failed;
}

caf::timespan request_deadline(const session_state& st) {
  return cafdb::request_deadline(st.options.request_timeout, *st.cfg);
}

/// How long a connection may take past a request's deadline to answer: it cancels the
/// statement at the deadline and waits at most this long for the server to confirm
/// (the PostgreSQL driver's grace), plus a margin for the answer's way back.
caf::timespan confirm_grace(const session_state& st) {
  return std::min(caf::timespan{st.cfg->connect_timeout}, caf::timespan{std::chrono::seconds(5)}) +
         std::chrono::seconds(1);
}

int64_t milliseconds(caf::timespan span) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(span).count();
}

// A failed request left its connection in an unknown state unless it was a refusal
// (classify in cafdb/error.hpp): an error from CAF itself (timeout, actor gone), a lost
// link, a commit in doubt; a connection that answers `unavailable` ran nothing and
// cannot be used (not open, its SQLite file gone).
bool connection_unknown(const caf::error& err) {
  return classify(err) != failure_kind::refused;
}

// Whether a batch can change data: a read-only session's cannot, nor statements that
// only read (may_change_data).
bool may_write(const exec_request& req, engine_kind dialect) {
  if (req.read_only)
    return false;
  auto writes = [dialect](const std::string& sql) { return may_change_data(sql, dialect); };
  if (req.bulk.row_count() > 0)
    return writes(req.bulk.sql);
  return std::any_of(req.statements.begin(), req.statements.end(),
                     [&](const statement& stmt) { return writes(stmt.sql); });
}

// The answer for a request whose connection failed or did not answer in time. It never
// claims what the server did not confirm: a request that may have committed (an
// autocommit write, a transact, an exec_many) is in doubt; one inside a transaction
// cannot commit (the session never sends COMMIT for it), so its transaction is lost.
caf::error explain_connection_failure(const session_state& st, const caf::error& err,
                                      bool may_have_committed) {
  bool lost = err.category() != error_category || is(err, errc::connection_lost);
  if (!lost)
    return err;
  auto timed_out = err == caf::sec::request_timeout;
  // In doubt, the driver's own advice ("retry the transaction") would contradict the
  // answer: only what happened is kept.
  auto info = describe(err);
  auto what = timed_out ? "no answer within the request deadline (" +
                              std::to_string(milliseconds(request_deadline(st))) + " ms)"
              : err.category() != error_category
                  ? "the connection went away during the request (" + to_string(err) + ")"
              : may_have_committed && !info.driver_message.empty()
                  ? "the connection failed during the request: " + info.driver_message
                  : info.message;
  if (may_have_committed)
    return make_error(errc::commit_in_doubt,
                      what + ": it may or may not have been applied; check before retrying. The "
                             "connection is cancelled on the server or discarded");
  if (timed_out)
    return make_error(errc::statement_timeout,
                      what + "; cafdb is cancelling it on the server" +
                          (in_transaction(st)     ? ", and the transaction is lost: roll back"
                           : st.options.read_only ? ", nothing was changed (a read-only session)"
                                                  : "") +
                          ". Raise request_timeout / statement_timeout, or make it cheaper");
  if (err.category() == error_category)
    return err;
  return make_error(errc::connection_lost, what + "; it was discarded, retry the request");
}

void check_in(session_pointer self, connection_condition condition) {
  auto& st = self->state;
  if (!st.held)
    return;
  self->send(st.engine, checkin_atom::value, st.held->id, condition);
  st.held.reset();
}

namespace sm = session_model;

/// Applies a transition: the new phase, and the lease's fate. `unknown` is how a lease
/// in an unknown state goes back (running when its request passed its deadline).
void settle(session_pointer self, const sm::transition& t,
            connection_condition unknown = connection_condition::broken) {
  auto& st = self->state;
  switch (t.lease) {
  case sm::lease_action::keep:
    break;
  case sm::lease_action::give_back_clean:
    check_in(self, connection_condition::clean);
    break;
  case sm::lease_action::give_back_rollback:
    check_in(self, connection_condition::needs_rollback);
    break;
  case sm::lease_action::give_back_unknown:
    check_in(self, unknown);
    break;
  case sm::lease_action::forget:
    st.held.reset();
    break;
  }
  if (st.phase != t.phase)
    st.log->debug("session '{}': {} -> {}: {}", st.options.label, to_string(st.phase),
                  to_string(t.phase), t.reason);
  st.phase = t.phase;
  if (t.clear_savepoints)
    st.savepoints.clear();
  assert_invariants(st);
}

/// The request's answer as the client will see it, and how it ended. A failure of the
/// connection is explained first (explain_connection_failure): only what the server
/// confirmed is claimed.
std::pair<caf::error, sm::outcome> answer_of(const session_state& st, caf::error err,
                                             bool may_have_committed) {
  if (!connection_unknown(err)) {
    // The connection says the server rolled back the whole open transaction with the
    // failed request (SQLite may): the transaction is over, not only the request.
    bool rolled_back = in_transaction(st) && is(err, errc::transaction_failed);
    return {std::move(err), rolled_back ? sm::outcome::rolled_back : sm::outcome::refused};
  }
  auto answer = explain_connection_failure(st, err, may_have_committed);
  auto result = is(answer, errc::commit_in_doubt) ? sm::outcome::in_doubt : sm::outcome::lost;
  return {std::move(answer), result};
}

/// Refuses a request the current phase does not admit.
std::optional<caf::error> refuse(const session_state& st, sm::request req) {
  if (st.drained)
    return make_error(errc::session_closed,
                      "the database is stopping and this session closed when its transaction "
                      "ended; nothing more runs in it");
  if (auto no = sm::admit(st.phase, req, st.held.has_value()))
    return make_error(no->code, std::move(no->message));
  return std::nullopt;
}

/// How long a checkout (or a read) may wait for a connection.
caf::timespan checkout_wait(const session_state& st) {
  return checkout_wait_of(st.options, *st.cfg);
}

/// How leak warnings name this session.
std::string owner_name(const session_state& st) {
  return st.options.label.empty() ? "a session" : "session '" + st.options.label + "'";
}

/// Runs `then` with a leased connection, checking one out first if needed.
template <class Promise, class F>
void with_lease(session_pointer self, Promise rp, F then) {
  auto& st = self->state;
  if (st.held) {
    then(st.held->connection);
    return;
  }
  auto wait = checkout_wait(st);
  // The engine answers pool_timeout at `wait`; our own deadline only guards against a
  // dead engine, so it is a little longer.
  await_settled(
      self->request(st.engine, wait + std::chrono::seconds(1), checkout_atom::value,
                    checkout_request{st.options.read_only, wait, owner_name(st), true}),
      [=, then = std::move(then)](lease& granted) mutable {
        self->state.held = std::move(granted);
        then(self->state.held->connection);
      },
      [=](caf::error& err) mutable { rp.deliver(explain_engine_failure(err, "a checkout")); });
}

/// Ends the session: roll back what is open, give the lease back, then run `then`.
template <class F>
void end_session(session_pointer self, const char* why, F then) {
  auto& st = self->state;
  st.pulse->closed = true;
  if (st.phase == session_phase::closed) {
    then();
    return;
  }
  st.log->debug("session closing ({}), phase {}", why, to_string(st.phase));
  auto finish = [=]() mutable {
    settle(self, sm::next(self->state.phase, sm::happening::closed));
    // A monitor lives in the client's list and keeps this actor's memory until the
    // client dies: a long-lived client actor sending a million one-shot requests
    // kept a million closed sessions.
    self->demonitor(self->state.client);
    then();
  };
  if (st.held && in_transaction(st)) {
    await_settled(
        self->request(st.held->connection, request_deadline(st), tx_atom::value,
                      tx_command{tx_op::rollback, {}, false}),
        [=](caf::ok_atom) mutable {
          settle(self, sm::next(self->state.phase, sm::request::rollback, sm::outcome::ok));
          finish();
        },
        [=](caf::error& err) mutable {
          settle(self, sm::next(self->state.phase, sm::request::rollback, sm::outcome::lost),
                 unknown_condition(classify(err)));
          finish();
        });
    return;
  }
  finish();
}

void close_and_quit(session_pointer self, const char* why) {
  end_session(self, why, [=] { self->quit(); });
}

/// A read without a lease ended: the phase settles (an answer in doubt before it is
/// over: the read is the next unit of work).
void settle_read(session_pointer self, sm::outcome result) {
  settle(self, sm::next(self->state.phase, sm::request::statement, result));
}

/// An autocommit read of a read-only session: the engine runs it on any reader
/// connection, batched with other sessions' reads when they wait together. The session
/// holds no lease for it, so nothing of the connection's state is its to settle.
void run_leased(session_pointer self, caf::typed_response_promise<result_set> rp, statement stmt);

void run_read(session_pointer self, caf::typed_response_promise<result_set> rp, statement stmt) {
  auto& st = self->state;
  // No timer of our own: the engine answers every read (its invariant 4: pool_timeout
  // at `wait`, statement_timeout at `deadline`, shutting_down if it quits). A timer per
  // read woke CAF's clock thread twice per statement (docs/benchmarks.md).
  self->request(st.engine, caf::duration{caf::infinite}, read_atom::value, std::move(stmt),
                checkout_wait(st), request_deadline(st))
      .await(
          [=](result_set& rows) mutable {
            settle_read(self, sm::outcome::ok);
            rp.deliver(std::move(rows));
            if (self->state.one_shot)
              close_and_quit(self, "one-shot request done");
          },
          [=](caf::error& err) mutable {
            settle_read(self, sm::outcome::refused);
            rp.deliver(explain_engine_failure(err, "a read"));
            if (self->state.one_shot)
              close_and_quit(self, "one-shot request failed");
          });
}

/// A read on a reader connection borrowed from the pool's in-place shelf, here in the
/// session: no message to the engine or a connection (session/in_place_read.hpp).
/// Nothing when none is free, or when `verify` (a read-write session's statement,
/// read_path::in_place_if_read) finds that SQLite cannot promise it changes nothing
/// (then `may_write` is set): the caller sends it on. The connection's deadline keeps
/// this thread blocked no longer than the request's deadline.
std::optional<outcome<result_set>> read_in_place(session_state& st, const statement& stmt,
                                                 bool verify, bool& may_write) {
  if (!st.reads_in_place)
    return std::nullopt;
  return in_place::exec(*st.shelf, *st.cfg, *st.sql_log, stmt, request_deadline(st),
                        in_place::how{verify, st.options.read_only, false}, &may_write);
}

/// While draining, a session whose transaction has ended closes (after its answer went
/// out: the close is a message to itself).
void close_if_drained(session_pointer self) {
  auto& st = self->state;
  if (st.draining && !st.drained && !in_transaction(st)) {
    st.drained = true;
    self->send(self, shutdown_atom::value, true);
  }
}

/// A client request arrived: the session is not idle.
void touch(session_state& st) {
  st.last_request = caf::make_timestamp();
  st.requests += 1;
}

// The idle timeout has no timer of its own: a timer (delayed_send) holds its actor
// until it fires, so a session that closed long before its idle timeout kept ~1.5 kB
// alive for that long; at 1,000 sessions/s that was gigabytes. The database sweeps its
// sessions instead (a tick every eighth of the shortest idle timeout), and a session
// closes at the first sweep that finds it idle for `idle` with no request since the
// sweep before: between `idle` and 1.25 x `idle` after its last request.
void check_idle(session_pointer self) {
  auto& st = self->state;
  if (st.idle.count() <= 0 || st.phase == session_phase::closed)
    return;
  if (st.requests != st.requests_checked) {
    // A request came since the last sweep (it may have run longer than the idle
    // timeout itself): not idle yet.
    st.requests_checked = st.requests;
    return;
  }
  if (auto calls = st.pulse->calls.load(); calls != st.pulse_checked) {
    // The owner ran calls in place since the last sweep: the last one counts as now.
    st.pulse_checked = calls;
    st.last_request = caf::make_timestamp();
    return;
  }
  if (caf::make_timestamp() >= st.last_request + st.idle)
    close_and_quit(self, "idle timeout");
}

// SQL the session refuses before it reaches a connection (refused_sql: a NUL,
// transaction control, a read-only session's escape).
std::optional<caf::error> refuse_sql(const session_state& st, const std::string& sql) {
  if (auto refused = refused_sql_here(sql, st.cfg->engine, st.options.read_only))
    return to_caf_error(std::move(*refused));
  return std::nullopt;
}

/// Runs a batch on the leased connection and settles the session's phase afterwards.
template <class Result, class Convert>
void run_batch(session_pointer self, caf::typed_response_promise<Result> rp, exec_request req,
               Convert convert) {
  // The batch is moved along, never copied: it may hold thousands of statements.
  auto kind = req.mode == batch_mode::plain ? sm::request::statement : sm::request::batch;
  auto writes = may_write(req, self->state.cfg->engine);
  // The connection cancels the batch at its deadline and answers what the server
  // confirms; CAF's timeout only catches a connection that cannot answer at all.
  req.deadline = request_deadline(self->state);
  auto batch = std::make_shared<exec_request>(std::move(req));
  with_lease(self, rp, [=](connection_actor conn) mutable {
    auto& st = self->state;
    await_settled(
        self->request(conn, request_deadline(st) + confirm_grace(st), exec_atom::value,
                      std::move(*batch)),
        [=](std::vector<result_set>& results) mutable {
          auto& st = self->state;
          settle(self, sm::next(st.phase, kind, sm::outcome::ok));
          rp.deliver(convert(std::move(results)));
          if (st.one_shot)
            close_and_quit(self, "one-shot request done");
        },
        [=](caf::error& err) mutable {
          auto& st = self->state;
          // What may have committed is in doubt: a write outside a transaction. One
          // inside cannot commit (the session never sends COMMIT for it): it is lost.
          auto [answer, result] = answer_of(st, err, writes && !in_transaction(st));
          settle(self, sm::next(st.phase, kind, result), unknown_condition(classify(err)));
          rp.deliver(std::move(answer));
          if (st.one_shot)
            close_and_quit(self, "one-shot request failed");
        });
  });
}

/// One statement on a leased connection (the writer, or any in a transaction).
void run_leased(session_pointer self, caf::typed_response_promise<result_set> rp, statement stmt) {
  run_batch(self, rp,
            exec_request{{std::move(stmt)}, batch_mode::plain, self->state.options.read_only, {}},
            [](std::vector<result_set>&& results) { return std::move(results.front()); });
}

/// Sends a transaction command; `on_ok` updates the savepoints, the transition table
/// the phase and the lease.
template <class OnOk>
caf::typed_response_promise<caf::ok_atom> run_tx(session_pointer self, tx_command cmd,
                                                 sm::request kind, OnOk on_ok) {
  auto rp = self->make_response_promise<caf::ok_atom>();
  with_lease(self, rp, [=](connection_actor conn) mutable {
    await_settled(
        self->request(conn, request_deadline(self->state), tx_atom::value, cmd),
        [=](caf::ok_atom) mutable {
          on_ok();
          settle(self, sm::next(self->state.phase, kind, sm::outcome::ok));
          rp.deliver(caf::ok_atom::value);
          close_if_drained(self);
        },
        [=](caf::error& err) mutable {
          auto& st = self->state;
          // Only a COMMIT whose answer never came may have committed.
          auto [answer, result] = answer_of(st, err, cmd.op == tx_op::commit);
          settle(self, sm::next(st.phase, kind, result), unknown_condition(classify(err)));
          rp.deliver(std::move(answer));
          close_if_drained(self);
        });
  });
  return rp;
}

std::optional<caf::error> check_savepoint_name(const std::string& name) {
  if (!is_identifier(name))
    return make_error(errc::invalid_argument,
                      "savepoint name '" + name.substr(0, 64) +
                          "' is not an identifier: use letters, digits and _ (at most 63)");
  return std::nullopt;
}

session_actor::behavior_type
session_behavior(session_pointer self, engine_actor engine, caf::strong_actor_ptr client,
                 session_options options, std::shared_ptr<const config> cfg, bool one_shot,
                 std::shared_ptr<pool::in_place_shelf> shelf,
                 std::shared_ptr<read_router::read_classifier> classifier) {
  auto& st = self->state;
  st.engine = std::move(engine);
  st.shelf = std::move(shelf);
  st.classifier = std::move(classifier);
  st.reads_in_place = st.shelf && st.shelf->scheduler_limit() > 0;
  st.client = caf::actor_cast<caf::actor_addr>(client);
  st.options = std::move(options);
  st.cfg = std::move(cfg);
  st.one_shot = one_shot;
  st.log = log::get("session");
  st.sql_log = log::get("sql");
  if (client)
    self->monitor(client);
  self->set_down_handler([=](caf::down_msg& dm) {
    if (dm.source == self->state.client)
      close_and_quit(self, "client down");
  });
  // A one-shot session closes after its one request: the database does not sweep it.
  st.idle = one_shot ? caf::timespan{0} : idle_timeout_of(st.options, *st.cfg);
  st.last_request = caf::make_timestamp();
  return {
      [=](exec_atom, statement& stmt) -> caf::result<result_set> {
        touch(self->state);
        if (auto err = refuse(self->state, sm::request::statement))
          return *err;
        if (auto err = refuse_sql(self->state, stmt.sql))
          return *err;
        auto rp = self->make_response_promise<result_set>();
        auto& st = self->state;
        read_router::read_request request{st.options.read_only, st.phase, st.held.has_value(),
                                          false};
        // Only a path without a lease can be changed by it (and only SQLite's
        // reader pool has a shelf): a leased connection is reset after its session.
        request.changes_session = (st.options.read_only || st.reads_in_place) &&
                                  session_changes_here(stmt.sql, st.cfg->engine) != 0;
        auto path = read_router::route(request, st.reads_in_place);
        bool verify = path == read_router::read_path::in_place_if_read;
        if (path == read_router::read_path::in_place || verify) {
          bool may_write = false;
          if (auto rows = read_in_place(st, stmt, verify, may_write)) {
            settle_read(self, *rows ? sm::outcome::ok : sm::outcome::refused);
            if (*rows)
              rp.deliver(std::move(**rows));
            else
              rp.deliver(to_caf_error(std::move(rows->error())));
            if (st.one_shot)
              close_and_quit(self, "one-shot request done");
            return rp;
          }
          // None free on the shelf: a read goes to the reader pool; so does a read-write
          // session's statement that SQLite says only reads (on the writer a long read
          // held up every write; the classifier is asked only when the shelf had no
          // connection to ask); anything else to the writer, which never waits behind
          // readers.
          bool reads =
              !verify || (!may_write && st.classifier && st.classifier->certainly_reads(stmt.sql));
          path = reads ? read_router::read_path::engine_read : read_router::read_path::leased;
        }
        if (path == read_router::read_path::engine_read) {
          run_read(self, rp, std::move(stmt));
          return rp;
        }
        run_leased(self, rp, std::move(stmt));
        return rp;
      },
      [=](transact_atom, std::vector<statement>& stmts) -> caf::result<std::vector<result_set>> {
        touch(self->state);
        if (auto err = refuse(self->state, sm::request::batch))
          return *err;
        if (stmts.empty())
          return make_error(errc::invalid_argument, "transact needs at least one statement");
        // A bulk batch repeats one statement: its text is checked once.
        for (size_t i = 0; i < stmts.size(); ++i)
          if (i == 0 || stmts[i].sql != stmts[i - 1].sql)
            if (auto err = refuse_sql(self->state, stmts[i].sql))
              return *err;
        auto& st = self->state;
        auto mode = in_transaction(st) ? batch_mode::savepoint : batch_mode::transaction;
        auto rp = self->make_response_promise<std::vector<result_set>>();
        run_batch(self, rp, exec_request{std::move(stmts), mode, st.options.read_only, {}},
                  [](std::vector<result_set>&& results) { return std::move(results); });
        return rp;
      },
      [=](exec_many_atom, bulk_statement& bulk) -> caf::result<result_set> {
        touch(self->state);
        if (auto err = refuse(self->state, sm::request::batch))
          return *err;
        if (bulk.row_count() == 0)
          return make_error(errc::invalid_argument,
                            "exec_many needs at least one row of parameters");
        if (!bulk.well_formed())
          return make_error(errc::invalid_argument,
                            "exec_many: the row ends do not fit the values; build the rows "
                            "with bulk_statement::add_row");
        if (auto err = refuse_sql(self->state, bulk.sql))
          return *err;
        auto& st = self->state;
        exec_request req;
        req.mode = in_transaction(st) ? batch_mode::savepoint : batch_mode::transaction;
        req.read_only = st.options.read_only;
        req.bulk = std::move(bulk);
        auto rp = self->make_response_promise<result_set>();
        run_batch(self, rp, std::move(req),
                  [](std::vector<result_set>&& results) { return std::move(results.front()); });
        return rp;
      },
      [=](begin_atom) -> caf::result<caf::ok_atom> {
        touch(self->state);
        if (auto err = refuse(self->state, sm::request::begin))
          return *err;
        return run_tx(self, tx_command{tx_op::begin, {}, self->state.options.read_only},
                      sm::request::begin, [] {});
      },
      [=](begin_atom, const tx_options& options) -> caf::result<caf::ok_atom> {
        touch(self->state);
        auto& st = self->state;
        if (auto err = refuse(st, sm::request::begin))
          return *err;
        // Refused before anything begins: an option the engine cannot honour is never
        // silently dropped.
        if (auto refused = refuse_tx_options(st.cfg->engine, options, st.options.read_only))
          return to_caf_error(std::move(*refused));
        // A read-only transaction says so in its BEGIN (PostgreSQL; SQLite allows it only in
        // read-only sessions): the connection's session-wide default stays as it is.
        tx_command cmd{tx_op::begin, {}, st.options.read_only, options};
        return run_tx(self, std::move(cmd), sm::request::begin, [] {});
      },
      [=](commit_atom) -> caf::result<caf::ok_atom> {
        touch(self->state);
        if (auto err = refuse(self->state, sm::request::commit))
          return *err;
        return run_tx(self, tx_command{tx_op::commit, {}, false}, sm::request::commit, [] {});
      },
      [=](rollback_atom) -> caf::result<caf::ok_atom> {
        touch(self->state);
        auto& st = self->state;
        if (auto err = refuse(st, sm::request::rollback))
          return *err;
        if (!sm::needs_server(st.phase, sm::request::rollback, st.held.has_value())) {
          // Nothing open, or the connection (and the transaction with it) is gone: only
          // the phase settles (an answer in doubt is acknowledged).
          settle(self, sm::next(st.phase, sm::request::rollback, sm::outcome::ok));
          close_if_drained(self);
          return caf::ok_atom::value;
        }
        return run_tx(self, tx_command{tx_op::rollback, {}, false}, sm::request::rollback, [] {});
      },
      [=](savepoint_atom, const std::string& name) -> caf::result<caf::ok_atom> {
        touch(self->state);
        if (auto err = refuse(self->state, sm::request::nested))
          return *err;
        if (auto err = check_savepoint_name(name))
          return *err;
        return run_tx(self, tx_command{tx_op::savepoint, name, false}, sm::request::nested,
                      [=] { self->state.savepoints.push_back(name); });
      },
      [=](release_atom, const std::string& name) -> caf::result<caf::ok_atom> {
        touch(self->state);
        if (auto err = refuse(self->state, sm::request::nested))
          return *err;
        auto& sps = self->state.savepoints;
        auto i = std::find(sps.rbegin(), sps.rend(), name);
        if (i == sps.rend())
          return make_error(errc::not_found,
                            "no open savepoint named '" + name.substr(0, 64) + "'");
        auto keep = static_cast<size_t>(std::distance(i, sps.rend()) - 1);
        return run_tx(self, tx_command{tx_op::release, name, false}, sm::request::nested,
                      [=] { self->state.savepoints.resize(keep); });
      },
      [=](rollback_to_atom, const std::string& name) -> caf::result<caf::ok_atom> {
        touch(self->state);
        auto& st = self->state;
        if (auto err = refuse(st, sm::request::rollback_to))
          return *err;
        auto i = std::find(st.savepoints.rbegin(), st.savepoints.rend(), name);
        if (i == st.savepoints.rend())
          return make_error(errc::not_found,
                            "no open savepoint named '" + name.substr(0, 64) + "'");
        // ROLLBACK TO keeps the savepoint itself open, as in SQL.
        auto keep = static_cast<size_t>(std::distance(i, st.savepoints.rend()));
        return run_tx(self, tx_command{tx_op::rollback_to, name, false}, sm::request::rollback_to,
                      [=] { self->state.savepoints.resize(keep); });
      },
      [=](caf::close_atom) -> caf::result<caf::ok_atom> {
        auto rp = self->make_response_promise<caf::ok_atom>();
        end_session(self, "closed by client", [=]() mutable {
          rp.deliver(caf::ok_atom::value);
          self->quit();
        });
        return rp;
      },
      [=](caf::get_atom) {
        touch(self->state);
        auto& st = self->state;
        return session_info{st.phase, st.held.has_value(),
                            static_cast<int32_t>(st.savepoints.size()), st.options.read_only};
      },
      [=](shutdown_atom, bool force) {
        auto& st = self->state;
        if (force || !in_transaction(st)) {
          close_and_quit(self, force ? "database stopping: shutdown_timeout passed"
                                     : "database stopping");
          return;
        }
        st.draining = true;
        st.log->info("session '{}': the database is stopping; finishing the open transaction",
                     st.options.label);
      },
      [=](revoke_atom, uint64_t lease_id) {
        // Held past lease_timeout: the engine cancelled the statement and takes the
        // connection back once it is checked in; the transaction is lost.
        auto& st = self->state;
        if (!st.held || st.held->id != lease_id)
          return; // checked in already
        st.log->warn("session '{}': its connection was reclaimed after lease_timeout ({} ms)",
                     st.options.label, st.cfg->lease_timeout.count());
        settle(self, sm::next(st.phase, sm::happening::lease_revoked));
      },
      [=](engine_atom, engine_actor& replacement) {
        // The old engine is gone, and the lease with it.
        auto& st = self->state;
        st.engine = std::move(replacement);
        if (st.held)
          settle(self, sm::next(st.phase, sm::happening::engine_replaced));
      },
      [=](tick_atom) { check_idle(self); }, // the database's idle sweep
      [=](in_place_atom) -> in_place_access {
        // Its owner runs autocommit calls in place only while the session is open and
        // no transaction is: the owner knows, since it sends begin and commit.
        auto& st = self->state;
        return in_place_access{st.shelf, st.cfg, nullptr, st.pulse};
      },
  };
}

} // namespace

std::string to_string(tx_op x) {
  switch (x) {
  case tx_op::begin:
    return "begin";
  case tx_op::commit:
    return "commit";
  case tx_op::rollback:
    return "rollback";
  case tx_op::savepoint:
    return "savepoint";
  case tx_op::release:
    return "release";
  default:
    return "rollback_to";
  }
}

caf::timespan checkout_wait_of(const session_options& options, const config& cfg) {
  return options.wait_timeout.count() > 0 ? bounded(options.wait_timeout)
                                          : caf::timespan{cfg.pool_timeout};
}

caf::error explain_engine_failure(caf::error err, const char* what) {
  if (err == caf::sec::request_timeout || err == caf::sec::request_receiver_down)
    return make_error(errc::unavailable, std::string{"the engine did not answer "} + what + " (" +
                                             to_string(err) + "); retry later");
  return err;
}

caf::timespan idle_timeout_of(const session_options& options, const config& cfg) {
  return options.idle_timeout.count() > 0 ? options.idle_timeout
                                          : caf::timespan{cfg.session_idle_timeout};
}

session_actor spawn_session(caf::actor_system& sys, engine_actor engine,
                            caf::strong_actor_ptr client, session_options options,
                            std::shared_ptr<const config> cfg, bool one_shot,
                            std::shared_ptr<pool::in_place_shelf> shelf,
                            std::shared_ptr<read_router::read_classifier> classifier) {
  return sys.spawn(session_behavior, std::move(engine), std::move(client), std::move(options),
                   std::move(cfg), one_shot, std::move(shelf), std::move(classifier));
}

} // namespace cafdb

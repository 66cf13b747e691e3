// The connection actor: the cafdb actor that blocks (on a thread of its own, or, for
// SQLite readers, on a scheduler thread the engine lends it: see spawn_connection). The
// one other blocking call is a SQLite read in place in a session (read_in_place).
//
// State machine (one driver handle, one request at a time):
//
//      connect ok        exec / tx / reset / ping
//   closed ─────────► open ◄───────────────────┐
//     ▲  ▲               │──────────────────────┘
//     │  └─ connect fail ┘ (driver error on open)
//     └──── exit (engine quits, or engine discards it) ── handle closed in the driver's dtor
//
// Transitions: closed -> open [connect]; open -> open [exec, read, tx, reset];
// any -> gone [exit from the engine].
//
// Invariants:
// 1. Only the engine and the session that holds this connection's lease send to it,
//    so the mailbox holds at most one request (sessions serialize their requests).
// 2. Every handler answers: a driver failure becomes a cafdb error, never an exception.
// 3. `exec` in transaction mode leaves no transaction open, whatever happens; in
//    savepoint mode it leaves the enclosing transaction as it found it. A bulk
//    statement follows the same modes.
// 4. The driver handle is closed when the actor's state is destroyed.
// 5. State is checked, not assumed (docs/architecture.md, rule 5): after every request the
//    driver's real transaction state must be what the request implies. A request that
//    left a transaction open fails and the transaction is rolled back here, before
//    anyone else holds the connection; one that ended its session's transaction fails
//    as commit_in_doubt (it may have committed).
// 6. What a request changed in the session beyond its transaction (SET, SET ROLE,
//    temporary tables, LISTEN, advisory locks, pragmas, ...) never reaches the next
//    holder: once no transaction is open, the driver resets the session. A connection
//    whose reset failed is closed, so the engine replaces it. Only a holder that keeps
//    its lease across requests may ask to keep the session (a migration's lock).
#include "actors/connection.hpp"

#include <caf/all.hpp>

#include "cafdb/error.hpp"
#include "log.hpp"

namespace cafdb {

namespace {

struct connection_state {
  static inline const char* name = "cafdb.connection";
  std::shared_ptr<driver> drv;
  std::shared_ptr<const config> cfg;
  std::shared_ptr<spdlog::logger> sql_log;
  bool open = false;
};

using connection_pointer = connection_actor::stateful_pointer<connection_state>;

// Prefixes an error with the position of the failing statement (or row of a bulk
// statement) in a batch; an index of `count` means none failed: BEGIN or COMMIT did.
db_error at_position(db_error err, const char* what, size_t index, size_t count) {
  if (count > 1 && index < count)
    err.message = std::string{what} + " " + std::to_string(index + 1) + " of " +
                  std::to_string(count) + " failed: " + err.message;
  return err;
}

void echo(connection_state& st, const statement& stmt) {
  log::echo(*st.sql_log, *st.cfg, stmt, *st.drv);
}

outcome<std::vector<result_set>> run_statements(connection_state& st,
                                                const std::vector<statement>& statements) {
  std::vector<result_set> results;
  results.reserve(statements.size());
  for (size_t i = 0; i < statements.size(); ++i) {
    echo(st, statements[i]);
    auto result = st.drv->execute(statements[i]);
    if (!result)
      return at_position(std::move(result.error()), "statement", i, statements.size());
    results.emplace_back(std::move(*result));
  }
  return results;
}

/// The savepoint a batch runs in inside an open transaction (batch_mode::savepoint).
const std::string batch_savepoint = "cafdb_transact";

// A bulk statement: one summed result. The rows are echoed as a count (a log line
// per row would cost more than the row).
outcome<result_set> run_bulk(connection_state& st, const exec_request& req) {
  auto& drv = *st.drv;
  auto& bulk = req.bulk;
  log::echo(*st.sql_log, bulk.sql, std::to_string(bulk.row_count()) + " rows", drv);
  size_t failed_at = bulk.row_count();
  auto sum = [&]() -> outcome<result_set> {
    switch (req.mode) {
    case batch_mode::plain:
      return drv.execute_many(bulk, failed_at);
    case batch_mode::transaction:
      return drv.execute_many_transaction(bulk, req.read_only, failed_at);
    case batch_mode::savepoint:
      return drv.in_savepoint(batch_savepoint, [&] { return drv.execute_many(bulk, failed_at); });
    }
    return db_error{errc::internal_error, "unknown batch mode", "", ""};
  }();
  if (!sum)
    return at_position(std::move(sum.error()), "row", failed_at, bulk.row_count());
  return sum;
}

outcome<std::vector<result_set>> run_batch(connection_state& st, const exec_request& req) {
  auto& drv = *st.drv;
  // Read-only or not applies to what follows (an enclosing transaction keeps its mode).
  if (req.mode != batch_mode::savepoint)
    if (auto mode = drv.set_read_only(req.read_only); !mode)
      return mode.error();
  if (req.bulk.row_count() > 0) {
    auto sum = run_bulk(st, req);
    if (!sum)
      return sum.error();
    std::vector<result_set> results;
    results.emplace_back(std::move(*sum));
    return results;
  }
  switch (req.mode) {
  case batch_mode::plain:
    return run_statements(st, req.statements);
  case batch_mode::transaction: {
    for (auto& stmt : req.statements)
      echo(st, stmt);
    size_t failed_at = 0;
    auto results = drv.execute_transaction(req.statements, req.read_only, failed_at);
    if (!results)
      return at_position(std::move(results.error()), "statement", failed_at, req.statements.size());
    return results;
  }
  case batch_mode::savepoint:
    return drv.in_savepoint(batch_savepoint, [&] { return run_statements(st, req.statements); });
  }
  return db_error{errc::internal_error, "unknown batch mode", "", ""};
}

/// Whether a transaction must be open after `req` ran, given whether one was before.
bool open_after(const exec_request& req, bool before) {
  return req.mode == batch_mode::transaction ? false : before;
}

bool open_after(const tx_command& cmd) {
  return cmd.op != tx_op::commit && cmd.op != tx_op::rollback;
}

/// Invariant 6: answers `request()`, after its transaction state was checked, and
/// resets the session if it changed and no transaction is open (unless the holder
/// asked to keep it: exec_request::keep_session).
template <class Request>
auto then_reset_session(connection_state& st, Request request, bool keep_session = false) {
  auto answer = request();
  auto& drv = *st.drv;
  if (!keep_session && st.open && drv.session_changed() && !drv.in_transaction() &&
      !drv.reset_session())
    st.open = false;
  return answer;
}

/// A failed request's answer: a statement cancelled because the database is stopping
/// answers shutting_down (it failed, so nothing it did is kept).
caf::error failed(const driver& drv, db_error err) {
  if (drv.stopping() && err.code == errc::statement_timeout)
    err = db_error{errc::shutting_down,
                   "the database is stopping (shutdown_timeout passed): the request was "
                   "cancelled and nothing it did was kept",
                   err.driver_code, err.driver_message};
  return to_caf_error(std::move(err));
}

/// A request failed and the server rolled back the open transaction with it: the answer
/// is transaction_failed, naming the first failure, so that the session knows its
/// transaction is over.
db_error transaction_rolled_back(db_error err) {
  return db_error{errc::transaction_failed,
                  to_string(err.code) + ": " + err.message +
                      "; the database rolled back the whole transaction with it, so nothing the "
                      "transaction did was kept: roll back the session and run the transaction "
                      "again",
                  std::move(err.driver_code), std::move(err.driver_message)};
}

outcome<done> run_tx(driver& drv, const tx_command& cmd) {
  switch (cmd.op) {
  case tx_op::begin: {
    if (auto mode = drv.set_read_only(cmd.read_only); !mode)
      return mode.error();
    return drv.begin(cmd.read_only, cmd.options);
  }
  case tx_op::commit:
    return drv.commit();
  case tx_op::rollback:
    return drv.rollback();
  case tx_op::savepoint:
    return drv.savepoint(cmd.name);
  case tx_op::release:
    return drv.release(cmd.name);
  case tx_op::rollback_to:
    return drv.rollback_to(cmd.name);
  }
  return db_error{errc::internal_error, "unknown transaction command", "", ""};
}

connection_actor::behavior_type connection_behavior(connection_pointer self,
                                                    std::shared_ptr<driver> drv,
                                                    std::shared_ptr<const config> cfg) {
  self->state.drv = std::move(drv);
  self->state.cfg = std::move(cfg);
  self->state.sql_log = log::get("sql");
  // Nothing was run: unavailable, which the holder answers as it is (never in doubt)
  // and which gets the connection discarded.
  auto not_open = [] {
    return make_error(errc::unavailable, "the connection is not open, nothing was run (the "
                                         "engine discards and replaces it); retry the request");
  };
  return {
      [=](caf::connect_atom) -> caf::result<caf::ok_atom> {
        auto opened = self->state.drv->open();
        if (!opened)
          return to_caf_error(std::move(opened.error()));
        self->state.open = true;
        return caf::ok_atom::value;
      },
      [=](exec_atom, const exec_request& req) -> caf::result<std::vector<result_set>> {
        auto& drv = *self->state.drv;
        if (!self->state.open)
          return not_open();
        bool expected = open_after(req, drv.in_transaction());
        return then_reset_session(
            self->state,
            [&]() -> caf::result<std::vector<result_set>> {
              auto results = within_deadline(drv, req.deadline, req.mode == batch_mode::savepoint,
                                             [&] { return run_batch(self->state, req); });
              if (!results) {
                // A failed statement may end a SQLite transaction (SQLITE_FULL, SQLITE_BUSY,
                // ...) and the session marks its transaction failed anyway: only a
                // transaction left open where none may be is settled, and the original
                // error kept.
                if (!expected)
                  if (auto mismatch = check_transaction_state(drv, false);
                      mismatch && mismatch->code == errc::connection_lost)
                    return to_caf_error(std::move(*mismatch));
                // SQLite rolls back the whole transaction on some failures (an interrupt,
                // a full disk, OR ROLLBACK, RAISE(ROLLBACK)), also inside a batch's
                // savepoint: the session must learn that its transaction is gone, or its
                // next statements would commit on their own (rule 5). A lost link is
                // answered as it is (the transaction went with the connection).
                if (expected && !drv.in_transaction() &&
                    classify(results.error().code) == failure_kind::refused)
                  return to_caf_error(transaction_rolled_back(std::move(results.error())));
                return failed(drv, std::move(results.error()));
              }
              if (auto mismatch = check_transaction_state(drv, expected))
                return to_caf_error(std::move(*mismatch));
              return std::move(*results);
            },
            req.keep_session);
      },
      [=](read_atom,
          const std::vector<statement>& stmts) -> caf::result<std::vector<read_outcome>> {
        auto& st = self->state;
        if (!st.open)
          return not_open();
        if (auto mode = st.drv->set_read_only(true); !mode)
          return to_caf_error(std::move(mode.error()));
        for (auto& stmt : stmts)
          echo(st, stmt);
        return then_reset_session(st, [&]() -> caf::result<std::vector<read_outcome>> {
          auto outcomes = st.drv->execute_each(stmts);
          if (auto mismatch = check_transaction_state(*st.drv, false))
            return to_caf_error(std::move(*mismatch));
          std::vector<read_outcome> out(outcomes.size());
          for (size_t i = 0; i < outcomes.size(); ++i) {
            if (outcomes[i])
              out[i].result = std::move(*outcomes[i]);
            else
              out[i].error = failed(*st.drv, std::move(outcomes[i].error()));
          }
          return out;
        });
      },
      [=](tx_atom, const tx_command& cmd) -> caf::result<caf::ok_atom> {
        if (!self->state.open)
          return not_open();
        return then_reset_session(self->state, [&]() -> caf::result<caf::ok_atom> {
          auto done = run_tx(*self->state.drv, cmd);
          if (!done)
            return failed(*self->state.drv, std::move(done.error()));
          if (auto mismatch = check_transaction_state(*self->state.drv, open_after(cmd)))
            return to_caf_error(std::move(*mismatch));
          return caf::ok_atom::value;
        });
      },
      [=](caf::reset_atom) -> caf::result<caf::ok_atom> {
        // The reset follows a cancel, if any, in the mailbox: what was cancelled is over.
        self->state.drv->clear_cancel();
        if (!self->state.open)
          return not_open();
        auto rolled_back = self->state.drv->rollback();
        if (!rolled_back || self->state.drv->in_transaction())
          return make_error(errc::connection_lost, "the connection could not be reset");
        then_reset_session(self->state, [] { return 0; });
        if (!self->state.open)
          return make_error(errc::connection_lost, "the connection's session could not be reset");
        return caf::ok_atom::value;
      },
      [=](ping_atom) -> caf::result<caf::ok_atom> {
        if (!self->state.open)
          return not_open();
        if (auto alive = self->state.drv->ping(); !alive)
          return to_caf_error(std::move(alive.error()));
        return caf::ok_atom::value;
      },
  };
}

} // namespace

connection_actor spawn_connection(caf::actor_system& sys, std::shared_ptr<driver> drv,
                                  std::shared_ptr<const config> cfg, connection_thread thread) {
  if (thread == connection_thread::scheduled)
    return sys.spawn(connection_behavior, std::move(drv), std::move(cfg));
  return sys.spawn<caf::detached>(connection_behavior, std::move(drv), std::move(cfg));
}

} // namespace cafdb

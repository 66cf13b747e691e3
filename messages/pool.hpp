// Pool protocol between sessions, engines and connections.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/error.hpp>
#include <caf/meta/type_name.hpp>
#include <caf/timestamp.hpp>

#include "cafdb/core/config.hpp"
#include "cafdb/core/errc.hpp"
#include "session.hpp"
#include "values.hpp"

namespace cafdb {

namespace pool {
class in_place_shelf;
}

namespace in_place {
struct session_pulse;
}

/// A session asks its engine for a connection.
struct checkout_request {
  /// Read-only sessions use reader connections where the engine has them.
  bool read_only = false;
  /// How long to wait in the queue before `pool_timeout`.
  caf::timespan timeout{0};
  /// Who holds the lease, for leak warnings: "session 'label'", "schema". No secrets.
  std::string owner;
  /// The engine may reclaim the lease past `lease_timeout` (sessions, which handle
  /// `revoke_atom`); false for leases that must run to the end (migrations).
  bool revocable = false;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, checkout_request& x) {
  return f(caf::meta::type_name("cafdb::checkout_request"), x.read_only, x.timeout, x.owner,
           x.revocable);
}

/// How a session leaves a connection when it gives the lease back.
enum class connection_condition : uint8_t {
  /// No transaction open: straight back to the pool.
  clean,
  /// A transaction may be open (client died, timeout): ROLLBACK before pooling.
  needs_rollback,
  /// A request passed its deadline and may still be running: cancel it on the server,
  /// wait for the connection to answer, roll back, then pool (or discard if it stays silent).
  running,
  /// State unknown (link lost, commit in doubt, rollback failed): discard.
  broken,
};

/// How to give back a connection whose state a failed request left unknown: still
/// running when it timed out (the engine cancels it and drains the connection), else
/// broken (discarded).
inline connection_condition unknown_condition(failure_kind kind) {
  return kind == failure_kind::timed_out ? connection_condition::running
                                         : connection_condition::broken;
}

/// How to give back a connection after a request on it failed this way (outside a
/// transaction): as it is when the failure was a refusal, else as unknown_condition.
inline connection_condition condition_after(failure_kind kind) {
  return kind == failure_kind::refused ? connection_condition::clean : unknown_condition(kind);
}

/// A batch of statements for one connection (see `batch_mode`).
struct exec_request {
  std::vector<statement> statements;
  batch_mode mode = batch_mode::plain;
  /// For `transaction` mode: begin a read-only transaction.
  bool read_only = false;
  /// With rows (and no `statements`): the batch is this statement run once per row,
  /// answered by one summed result_set. The session has checked `well_formed()`.
  bulk_statement bulk;
  /// What the request changes in the connection's session (a session-level advisory
  /// lock, a setting) lasts until a later request of the same lease without this flag,
  /// instead of being reset after it. For a holder that keeps its lease across requests
  /// (a migration run); sessions never set it.
  bool keep_session = false;
  /// How long the request may run (zero: no limit of its own). Past it the connection
  /// cancels the statement itself and answers what the server confirms: the result if
  /// it finished first, statement_timeout if the cancel took, connection_lost if the
  /// server stayed silent (the driver waits at most its grace for it).
  caf::timespan deadline{0};
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, exec_request& x) {
  return f(caf::meta::type_name("cafdb::exec_request"), x.statements, x.mode, x.read_only, x.bulk,
           x.keep_session, x.deadline);
}

/// What one statement of a batch of independent reads gave: its rows, or its error
/// (the other statements of the batch are not affected).
struct read_outcome {
  result_set result;
  caf::error error;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, read_outcome& x) {
  return f(caf::meta::type_name("cafdb::read_outcome"), x.result, x.error);
}

/// What the blocking client needs to run a call in place itself, on its caller's
/// thread, when the database lives in its process (database `in_place_atom`): the
/// in-place shelf (SQLite's reader pool's, or PostgreSQL's one pool's; null when there
/// is none), the database's configuration, and whether
/// the database serves one-shot requests now (ready and not stopping). Never leaves
/// the process: it holds pointers, and is not serialized.
struct in_place_access {
  std::shared_ptr<pool::in_place_shelf> shelf;
  std::shared_ptr<const config> cfg;
  std::shared_ptr<const std::atomic<bool>> serving;
  /// Asked of a session (session `in_place_atom`): what it shares with its blocking
  /// owner; null from the database.
  std::shared_ptr<in_place::session_pulse> pulse;
};

} // namespace cafdb

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(cafdb::in_place_access)

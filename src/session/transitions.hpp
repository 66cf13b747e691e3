// A session's transaction state as one transition function, without actors.
//
// The session actor (actors/session.cpp) asks `admit` whether a request may run in
// the current phase, runs it, classifies what came back into an event (which request,
// which outcome) and applies `next(phase, event)`: the new phase, what to do with the
// leased connection, and the reason, for logs and tests. No other code changes the
// phase. tests/unit/session_transitions_test.cpp walks the whole table.
//
//            begin ok              statement refused, nested refused,
//   idle ─────────────► in_tx ─────────────────────────────────────► failed
//    ▲ ◄── commit ok ──── │ ◄────────── rollback_to ok ────────────── │
//    │ ◄── rollback ──────┴──────────────── rollback ──────────────────┘
//    │                    │ commit (or any request) answered in doubt
//    │   next unit of     ▼
//    └─── work, or ─── in_doubt ◄── autocommit write answered in doubt (from idle)
//         rollback
//   any ── close / shutdown / client down / idle timeout ──► closed
//
// Invariants the actor keeps with it: in_tx and failed may hold a lease (in_tx always
// does); in_doubt and closed never do; savepoints exist only in in_tx and failed.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "cafdb/core/errc.hpp"
#include "cafdb/core/session_phase.hpp"

namespace cafdb::session_model {

/// What the client asked for.
enum class request : uint8_t {
  begin,
  commit,
  rollback,
  /// SAVEPOINT or RELEASE.
  nested,
  rollback_to,
  /// exec: one statement, in the open transaction or in autocommit.
  statement,
  /// transact / exec_many: atomic on its own (its own transaction, or a savepoint
  /// inside the open one).
  batch,
};

/// How it ended.
enum class outcome : uint8_t {
  ok,
  /// The server (or cafdb) refused it; the connection is fine.
  refused,
  /// The connection failed or went silent; nothing that may have committed was in it.
  lost,
  /// The answer never came while it may have committed (commit_in_doubt).
  in_doubt,
  /// Refused, and the server rolled back the whole open transaction with it (SQLite
  /// does on an interrupt, a full disk, OR ROLLBACK, RAISE(ROLLBACK)): nothing of the
  /// transaction is kept. The connection answers transaction_failed.
  rolled_back,
};

/// Things that happen to a session besides its requests' answers.
enum class happening : uint8_t {
  /// The engine reclaimed the lease past lease_timeout; its statement was cancelled.
  lease_revoked,
  /// The engine was replaced: the old lease is gone with it, unreturned.
  engine_replaced,
  /// close, shutdown, client down or idle timeout; any transaction was rolled back.
  closed,
};

/// What to do with the leased connection after a transition.
enum class lease_action : uint8_t {
  /// Keep it (a transaction is open on it).
  keep,
  /// Give it back as it is: no transaction is open.
  give_back_clean,
  /// Give it back to be rolled back first: a transaction may be open.
  give_back_rollback,
  /// Give it back in an unknown state: cancelled if it is still running, else discarded.
  give_back_unknown,
  /// It is gone already (its engine was replaced): forget it.
  forget,
};

struct transition {
  session_phase phase;
  lease_action lease;
  /// Why, in a few words: for debug logs and test failure messages.
  const char* reason;
  /// Open savepoints end with the transaction.
  bool clear_savepoints = false;
};

/// Why a request may not run in the current phase; nullopt when it may. A rollback
/// outside a transaction is admitted: it runs nothing (see `needs_server`).
struct refusal {
  errc code;
  std::string message;
};
std::optional<refusal> admit(session_phase phase, request req, bool holds_lease);

/// Whether a request admitted in this phase needs a round trip (a rollback with no
/// transaction open, or one whose connection is gone, only settles the phase).
bool needs_server(session_phase phase, request req, bool holds_lease);

/// The phase after `req` ended with `result` in `phase`.
transition next(session_phase phase, request req, outcome result);

/// The phase after something happened to the session.
transition next(session_phase phase, happening what);

const char* to_string(request x);
const char* to_string(outcome x);
const char* to_string(lease_action x);

} // namespace cafdb::session_model

// Running in place: one autocommit statement run on a connection borrowed from a pool's
// in-place shelf (pool/in_place_shelf.hpp), on the caller's own thread, with no message
// to the engine or the connection.
//
// Two pools have a shelf:
//   - a SQLite file database's reader pool: sessions read there (actors/session.cpp),
//     and so does the blocking client when the database lives in its process
//     (src/facade/client.cpp);
//   - a PostgreSQL engine's one pool: only the blocking client borrows there, and runs
//     any autocommit statement, as a caller of a classic pool does (a session would
//     block a scheduler thread on the network).
//
// Invariants:
//   - A borrowed connection goes back to the shelf exactly once, before this returns.
//   - A connection the statement left in a transaction is rolled back (and given back
//     unusable when that fails); one whose session it changed is reset (PostgreSQL) or
//     given back unusable (a SQLite reader): nothing of one caller reaches the next.
//   - With `verify`, a statement runs only if SQLite says the prepared statement changes
//     nothing (driver::certainly_reads); else nothing runs.
//   - An answer never claims what the server did not confirm: a statement that may
//     have written and whose connection failed is commit_in_doubt.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "cafdb/core/config.hpp"
#include "cafdb/core/errc.hpp"
#include "cafdb/core/value.hpp"

namespace spdlog {
class logger;
}

namespace cafdb::pool {
class in_place_shelf;
}

namespace cafdb::in_place {

/// What a session shares with its blocking owner (client::session), which runs the
/// session's autocommit calls in place on its own thread while no transaction is open.
struct session_pulse {
  /// The session closed (idle timeout, the database's stop, a revoked lease...): calls
  /// go to the session actor, which answers as it must.
  std::atomic<bool> closed{false};
  /// Calls run in place: each is a request, for the session's idle clock.
  std::atomic<uint64_t> calls{0};
};

/// How one statement runs in place.
struct how {
  /// Run it only if the prepared statement changes nothing (SQLite readers).
  bool verify = false;
  /// The call is read-only: a shared pool's connection is set so for it (a reader's
  /// always is).
  bool read_only = true;
  /// The caller runs on a thread of its own, not on the scheduler.
  bool own_thread = false;
};

/// Runs `stmt` on a connection borrowed from `shelf`, cancelled at `deadline` from now.
/// Nothing when it did not run: no connection free on the shelf, `verify` found that it
/// may write (then `*may_write` is set, when given), or a shared pool's connection
/// failed its pool_pre_ping. The caller then sends it on.
std::optional<outcome<result_set>> exec(pool::in_place_shelf& shelf, const config& cfg,
                                        spdlog::logger& sql_log, const statement& stmt,
                                        std::chrono::nanoseconds deadline, how mode,
                                        bool* may_write = nullptr);

} // namespace cafdb::in_place

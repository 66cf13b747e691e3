// Reading in place: one autocommit statement run on a SQLite reader connection borrowed
// from the reader pool's in-place shelf (pool/in_place_shelf.hpp), on the caller's own
// thread. A session runs it for its requests (actors/session.cpp); so does the
// blocking client, when the database lives in its process (src/facade/client.cpp):
// there a read costs no message at all.
//
// Invariants:
//   - A borrowed connection goes back to the shelf exactly once, before this returns.
//   - A connection the statement left in a transaction, or whose session it changed, is
//     given back unusable (the engine replaces it): nothing of one reader reaches the
//     next.
//   - With `verify`, a statement runs only if SQLite says the prepared statement changes
//     nothing (driver::certainly_reads); else nothing runs and the caller is told it
//     may write.
#pragma once

#include <chrono>
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

/// Why a statement did not run in place.
enum class declined {
  none_free, ///< No connection free on the shelf (or the database is stopping).
  may_write, ///< `verify`: the statement may change the database.
};

/// What reading in place answered: the statement's outcome, or why it did not run.
struct attempt {
  std::optional<outcome<result_set>> rows;
  declined why = declined::none_free;
};

/// Runs `stmt` on a connection borrowed from `shelf`, bounded by `deadline` from now;
/// `own_thread`: the caller runs on a thread of its own, not on the scheduler.
attempt read(pool::in_place_shelf& shelf, const config& cfg, spdlog::logger& sql_log,
             const statement& stmt, std::chrono::nanoseconds deadline, bool verify,
             bool own_thread = false);

} // namespace cafdb::in_place

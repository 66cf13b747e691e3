// Binds cafdb's error codes to `caf::error` (category `cafdb`).
#pragma once

#include "cafdb/errc.hpp"

#include <caf/atom.hpp>
#include <caf/error.hpp>
#include <caf/message.hpp>

namespace cafdb {

/// The error category atom of every cafdb error.
constexpr caf::atom_value error_category = caf::atom("cafdb");

/// Makes a `caf::error` from a code alone (lets `err == errc::x` compile).
caf::error make_error(errc code);

/// Makes a `caf::error` whose context holds the message and the driver's code and text.
caf::error make_error(errc code, std::string message, std::string driver_code = {},
                      std::string driver_message = {});

/// Converts a CAF-free `db_error` into a `caf::error`.
caf::error to_caf_error(db_error err);

/// Everything a client may want to know about an error, whatever its category.
struct error_info {
  /// The cafdb code, or `errc::none` for errors of another category (e.g. CAF's own).
  errc code = errc::none;
  std::string message;
  std::string driver_code;
  std::string driver_message;
};

/// Reads the parts of `err`; for non-cafdb errors the message is CAF's rendering.
error_info describe(const caf::error& err);

/// The CAF-free form of `err`. Errors of other categories (an actor gone, a request
/// timeout) become `unavailable` with CAF's rendering as the message.
db_error to_db_error(const caf::error& err);

/// `err` as a cafdb error, for actors that talk to the database with their own
/// requests: cafdb errors stay as they are; CAF's request_timeout becomes
/// `request_timeout`, request_receiver_down (the session or the database is gone)
/// `session_closed`, any other CAF error `unavailable`, each with a message that says
/// what to do. Call it in the error handlers of requests to cafdb actors.
caf::error as_cafdb_error(const caf::error& err);

/// What a failed request says about the work and the connection it ran on. One table
/// for every kind of error, cafdb's and CAF's own (classify); sessions, the engine, the
/// schema actor and applications that retry read it the same way.
enum class failure_kind : uint8_t {
  /// Refused by the server or by cafdb; nothing ran that a retry would repeat, and the
  /// connection it ran on is fine.
  refused,
  /// No answer within the caller's timeout (CAF's request_timeout): it may still run.
  timed_out,
  /// The connection failed or went silent, or the actor asked is gone: what ran is
  /// unknown, the connection is not reused.
  lost,
  /// It may or may not have committed (commit_in_doubt): check before retrying.
  in_doubt,
};

/// The failure_kind of `err`: commit_in_doubt is in_doubt; connection_lost and
/// unavailable are lost; every other cafdb code is refused; CAF's request_timeout is
/// timed_out, any other CAF error (an actor gone) lost.
failure_kind classify(const caf::error& err);

std::string to_string(failure_kind x);

/// Returns true if `err` is the cafdb error `code`.
bool is(const caf::error& err, errc code);

/// Renders `err` for humans: "cafdb.pool_timeout: <message> [driver: <code>: <text>]".
std::string render(const caf::error& err);

} // namespace cafdb

// Binds cafdb's error codes to `caf::error` (category `cafdb`).
#pragma once

#include "cafdb/core/errc.hpp"

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

/// The failure_kind of `err` (see cafdb/core/errc.hpp): cafdb errors by their code;
/// CAF's request_timeout is timed_out, any other CAF error (an actor gone) lost.
failure_kind classify(const caf::error& err);

/// Returns true if `err` is the cafdb error `code`.
bool is(const caf::error& err, errc code);

/// Renders `err` for humans: "cafdb.pool_timeout: <message> [driver: <code>: <text>]".
std::string render(const caf::error& err);

} // namespace cafdb

// What the blocking and the asynchronous facades share: how a request's CAF error
// becomes the cafdb error a caller sees, and how the JSON operations are spelled.
#pragma once

#include <string>
#include <vector>

#include <caf/error.hpp>
#include <caf/timestamp.hpp>
#include <nlohmann/json.hpp>

#include "cafdb/error.hpp"
#include "cafdb/messages/operations.hpp"
#include "cafdb/messages/session.hpp"

namespace cafdb::facade {

/// What a request to a database that is gone answers.
const caf::error& database_gone();

/// What a request to a session that has ended answers.
const caf::error& session_gone();

/// The error a caller sees for `err`: CAF's request timeout becomes `request_timeout`
/// (naming `timeout`), a receiver that is gone becomes `gone`, the rest stays.
caf::error caller_error(caf::error err, caf::timespan timeout, const caf::error& gone);

/// A timeout as a message shows it: milliseconds, or nanoseconds below one.
std::string shown_timeout(caf::timespan timeout);

/// The JSON operations that run statements (count, paginate, read_*, execute_*).
operation query_op(op_kind kind, std::vector<statement> stmts, session_options options);

/// The JSON operations on a table (create_*, update_one, delete_*, upsert).
operation table_op(op_kind kind, const std::string& table, const nlohmann::json* data,
                   const nlohmann::json* key);

} // namespace cafdb::facade

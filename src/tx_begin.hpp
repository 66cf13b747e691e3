// How a transaction begins on each engine: which tx_options it honours (the rest are
// refused before anything begins) and the BEGIN statement that asks for them.
#pragma once

#include <optional>
#include <string>

#include "cafdb/core/config.hpp"
#include "cafdb/core/errc.hpp"
#include "cafdb/core/tx_options.hpp"

namespace cafdb {

/// Why `options` cannot begin a transaction on `engine` in a session that is
/// `session_read_only` or not, or nothing if they can.
std::optional<db_error> refuse_tx_options(engine_kind engine, const tx_options& options,
                                          bool session_read_only);

/// PostgreSQL's BEGIN for `options` (checked), e.g. "BEGIN ISOLATION LEVEL SERIALIZABLE
/// READ ONLY DEFERRABLE".
std::string pg_begin_sql(const tx_options& options);

/// SQLite's BEGIN for `options` (checked) on a writer (`writer`) or a reader connection.
std::string sqlite_begin_sql(const tx_options& options, bool writer);

} // namespace cafdb

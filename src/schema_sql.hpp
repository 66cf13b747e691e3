// SQL for the schema model, per engine: DDL for create_all / drop_all, the catalog
// queries behind reflect, and the parser of their results. Pure functions, CAF-free.
#pragma once

#include <string>
#include <vector>

#include "cafdb/core/config.hpp"
#include "cafdb/core/schema.hpp"
#include "cafdb/core/value.hpp"

namespace cafdb {

/// The engine's type for a declared column, e.g. "VARCHAR(255)", "BYTEA".
std::string sql_type(const column_def& col, engine_kind dialect);

/// CREATE TABLE / CREATE INDEX ... IF NOT EXISTS, in dependency order: run them in
/// one transaction and create_all is idempotent.
std::vector<statement> create_statements(const std::vector<const table_def*>& ordered,
                                         engine_kind dialect);

/// DROP TABLE IF EXISTS in reverse dependency order.
std::vector<statement> drop_statements(const std::vector<const table_def*>& ordered);

/// The catalog queries whose answers `parse_reflection` reads (run them in one
/// read-only transaction, for one consistent snapshot).
std::vector<statement> reflect_statements(engine_kind dialect);

/// Builds the live schema (tables by name) from the answers of `reflect_statements`.
outcome<schema_def> parse_reflection(engine_kind dialect, const std::vector<result_set>& results);

} // namespace cafdb
